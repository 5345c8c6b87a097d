/*
 * nativequant.h — the one public C ABI of NativeQuant.
 *
 * Conventions (see ARCHITECTURE.md):
 *  - names are nq_<noun>_<verb>; every function returns nq_status and never aborts;
 *    on failure nq_last_error_message() holds a thread-local, human-readable message
 *    naming the offending argument and what was expected.
 *  - only plain C types cross the boundary: fixed-width integers, float, pointers,
 *    enums, and POD structs whose layout is fixed with static_assert in the sources.
 *  - the caller owns all memory; kernels never allocate in hot paths.
 *  - tensors are row-major and contiguous unless a function says otherwise.
 *
 * The C# bindings (managed/NativeQuant.Interop/Generated/NativeMethods.g.cs) are generated from this
 * file by libclang; never edit them by hand.
 */
#ifndef NATIVEQUANT_H
#define NATIVEQUANT_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(NQ_BUILDING_LIBRARY)
#    define NQ_API __declspec(dllexport)
#  else
#    define NQ_API __declspec(dllimport)
#  endif
#else
#  define NQ_API __attribute__((visibility("default")))
#endif

/* ABI version: the major changes on any incompatible change; bindings compare it on load. */
#define NQ_VERSION_MAJOR 0
#define NQ_VERSION_MINOR 1
#define NQ_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------
 * Status, errors, version
 * ---------------------------------------------------------------------------------- */

typedef enum nq_status {
  NQ_OK = 0,
  NQ_ERR_INVALID_ARGUMENT = 1, /* a value is out of its documented range */
  NQ_ERR_NULL_POINTER = 2,     /* a required pointer was NULL */
  NQ_ERR_SHAPE = 3,            /* sizes/shapes do not agree */
  NQ_ERR_ALIGNMENT = 4,        /* a pointer is not aligned as required */
  NQ_ERR_UNSUPPORTED = 5,      /* valid request this build/CPU cannot serve */
  NQ_ERR_OUT_OF_MEMORY = 6,
  NQ_ERR_IO = 7,               /* file or mapping failure */
  NQ_ERR_OVERLAP = 8,          /* input and output buffers overlap */
  NQ_ERR_NON_FINITE = 9,       /* NaN or Inf where finite values are required */
  NQ_ERR_INTERNAL = 10         /* a bug: please report */
} nq_status;

/* Message of the last failed call on this thread ("" if none). Valid until the next
 * failing call on the same thread. */
NQ_API const char* nq_last_error_message(void);

/* Static name of a status code, e.g. "NQ_ERR_SHAPE". */
NQ_API const char* nq_status_name(nq_status status);

/* ABI version; the managed layer refuses a library whose major differs. */
NQ_API nq_status nq_version_get(int32_t* major, int32_t* minor, int32_t* patch);

/* ------------------------------------------------------------------------------------
 * CPU features, dispatch, threads
 * ---------------------------------------------------------------------------------- */

/* Instruction-set levels, each implying the ones before it (as used by dispatch). */
typedef enum nq_isa {
  NQ_ISA_SCALAR = 0,      /* plain C++ reference kernels */
  NQ_ISA_AVX2 = 1,        /* AVX2 + FMA + F16C: the minimum supported CPU */
  NQ_ISA_AVX512 = 2,      /* AVX-512 F/BW/VL/DQ */
  NQ_ISA_AVX512_VNNI = 3, /* + VNNI (vpdpbusd) */
  NQ_ISA_AVX512_BF16 = 4  /* + BF16 (vdpbf16ps) */
} nq_isa;

/* Raw CPU feature bits as detected (cpuid + OS support for the register state). */
typedef enum nq_cpu_feature {
  NQ_CPU_AVX2 = 1u << 0,
  NQ_CPU_FMA = 1u << 1,
  NQ_CPU_F16C = 1u << 2,
  NQ_CPU_AVX512F = 1u << 3,
  NQ_CPU_AVX512BW = 1u << 4,
  NQ_CPU_AVX512VL = 1u << 5,
  NQ_CPU_AVX512DQ = 1u << 6,
  NQ_CPU_AVX512VNNI = 1u << 7,
  NQ_CPU_AVX512BF16 = 1u << 8,
  NQ_CPU_AVX512FP16 = 1u << 9  /* vfmadd231ph; used at the NQ_ISA_AVX512_BF16 level */
} nq_cpu_feature;

/* Bitwise OR of nq_cpu_feature values present on this CPU. */
NQ_API nq_status nq_cpu_features_get(uint32_t* out_features);

/* Highest ISA level this CPU supports. */
NQ_API nq_status nq_cpu_isa_supported(nq_isa* out_isa);

/* Cap run-time dispatch at `isa` (process-wide). Kernels use the best path at or below
 * the cap that the CPU supports; NQ_ISA_SCALAR forces the reference kernels. Asking for
 * more than the CPU supports is not an error: the effective level is the minimum. */
NQ_API nq_status nq_cpu_isa_set_max(nq_isa isa);

/* Effective ISA level kernels dispatch to now. */
NQ_API nq_status nq_cpu_isa_get(nq_isa* out_isa);

/* Threads used by parallel kernels (>= 1). Default: OMP_NUM_THREADS or all cores. */
NQ_API nq_status nq_threads_set(int32_t num_threads);
NQ_API nq_status nq_threads_get(int32_t* out_num_threads);

/* ------------------------------------------------------------------------------------
 * Native memory: 64-byte aligned buffers with live/peak accounting
 * ---------------------------------------------------------------------------------- */

typedef struct nq_memory_stats {
  uint64_t live_bytes;   /* bytes currently allocated through nq_buffer_alloc */
  uint64_t peak_bytes;   /* high-water mark of live_bytes since start or last reset */
  uint64_t live_buffers; /* number of buffers not yet freed */
  uint64_t total_allocs; /* allocations since process start */
} nq_memory_stats;

/* Allocate `bytes` (> 0) with 64-byte alignment; contents are uninitialised. */
NQ_API nq_status nq_buffer_alloc(uint64_t bytes, void** out_ptr);

/* Free a buffer from nq_buffer_alloc. NULL is accepted and ignored. A buffer of 4 MiB or more
 * may be kept (not returned to the OS) for a later allocation of the same size, which then skips
 * the page faults that zero fresh memory, but only while live_bytes + kept <= peak_bytes: native
 * memory never exceeds the reported high-water mark because of it. */
NQ_API nq_status nq_buffer_free(void* ptr);

NQ_API nq_status nq_memory_stats_get(nq_memory_stats* out_stats);

/* Reset peak_bytes to the current live_bytes (and release every kept buffer, see nq_buffer_free). */
NQ_API nq_status nq_memory_peak_reset(void);

/* Return every kept buffer (nq_buffer_free) to the OS; *out_released_bytes (may be NULL) gets
 * their total size. */
NQ_API nq_status nq_memory_cache_trim(uint64_t* out_released_bytes);

/* ------------------------------------------------------------------------------------
 * Quantization (bitsandbytes semantics and byte layout)
 *
 * Common rules:
 *  - n is the element count (> 0); x is contiguous fp32.
 *  - blockwise kernels split x into ceil(n / blocksize) blocks; the last block may be
 *    partial (as in bitsandbytes). absmax has one float per block.
 *  - inputs must be finite: a NaN/Inf returns NQ_ERR_NON_FINITE naming the element's
 *    block (outputs are then unspecified; callers must not use them).
 *  - output buffers must not overlap inputs (NQ_ERR_OVERLAP).
 *  - rounding is round-to-nearest-even (as torch.round / CUDA rintf); code lookups
 *    pick the nearest code value, ties to the lower index. Blockwise kernels normalise
 *    as bitsandbytes does, v = x * (1 / absmax) in fp32 (an all-zero block uses v = 0),
 *    and "nearest" means: v is compared with fp32 thresholds, v > threshold picks the
 *    upper code (8-bit: midpoints (code[i] + code[i+1]) * 0.5f as bnb's dQuantize,
 *    which on an exact midpoint may go up where ours goes down; 4-bit: the thresholds
 *    of bnb's dQuantizeNF4 / dQuantizeFP4 trees, so 4-bit codes equal bnb's bit for bit).
 *  - the SIMD paths are byte-identical to the scalar reference (NQ_ISA_SCALAR).
 *  - bad sizes / enum values: NQ_ERR_INVALID_ARGUMENT (odd n for 4-bit: NQ_ERR_SHAPE);
 *    dequantizers also reject NaN/Inf scales (absmax, scale, zero_point, offset).
 * ---------------------------------------------------------------------------------- */

/* int8 absmax, per tensor: absmax = max|x|, q = round(x * (127 / absmax)) in fp32 as bnb
 * (0 if absmax = 0). NaN/Inf: NQ_ERR_NON_FINITE naming the element. */
NQ_API nq_status nq_int8_absmax_quantize(const float* x, int64_t n, int8_t* q, float* out_absmax);
/* x = (q * absmax) * (1 / 127), fp32, as bnb's int8_vectorwise_dequant */
NQ_API nq_status nq_int8_absmax_dequantize(const int8_t* q, int64_t n, float absmax, float* x);

/* int8 absmax per row (vector-wise; bitsandbytes' SCB). x, q: (rows, cols); row_absmax: (rows).
 * Same formulas as per tensor; a NaN/Inf names its row. */
NQ_API nq_status nq_int8_rowwise_quantize(const float* x, int64_t rows, int64_t cols, int8_t* q,
                                          float* row_absmax);
NQ_API nq_status nq_int8_rowwise_dequantize(const int8_t* q, const float* row_absmax, int64_t rows,
                                            int64_t cols, float* x);

/* int8 absmax per column. x, q: (rows, cols); col_absmax: (cols). A NaN/Inf names its column. */
NQ_API nq_status nq_int8_colwise_quantize(const float* x, int64_t rows, int64_t cols, int8_t* q,
                                          float* col_absmax);
NQ_API nq_status nq_int8_colwise_dequantize(const int8_t* q, const float* col_absmax, int64_t rows,
                                            int64_t cols, float* x);

/* Asymmetric (zero-point) int8, per tensor (per_row = 0: scale/zero_point have 1 entry)
 * or per row (per_row = 1: `rows` entries). With lo = min(x, 0), hi = max(x, 0):
 * scale = (hi - lo) / 255, zero_point = round(-128 - lo / scale),
 * q = clamp(round(x / scale) + zero_point, -128, 127); dequant x = (q - zero_point) * scale.
 * scale and zero_point are fp32; x / scale is a true division. A group whose scale is 0
 * (all zeros) gets zero_point 0 and q 0, and dequantizes to 0. */
NQ_API nq_status nq_int8_zeropoint_quantize(const float* x, int64_t rows, int64_t cols, int32_t per_row,
                                            int8_t* q, float* scale, float* zero_point);
NQ_API nq_status nq_int8_zeropoint_dequantize(const int8_t* q, const float* scale, const float* zero_point,
                                              int64_t rows, int64_t cols, int32_t per_row, float* x);

/* bitsandbytes' create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): 256 sorted
 * floats in [-1, 1] (signed) or [0, 1] (unsigned), bit-identical to bnb on torch 1.13 CPU
 * (whose fp32 linspace rounding we reproduce). The signed map holds 0 and 1 but not -1
 * (its lowest code is -0.99296875); the unsigned map holds 0 and 1. is_signed: 0 or 1. */
NQ_API nq_status nq_dynamic_map_create(int32_t is_signed, float* code /* 256 */);

/* Blockwise 8-bit with any sorted 256-entry code (normally the dynamic map):
 * absmax[b] = max|x| over block b; q[i] = index of the code nearest x[i] / absmax[b].
 * blocksize: a power of two in 64..4096. code must be finite and ascending
 * (NQ_ERR_NON_FINITE / NQ_ERR_INVALID_ARGUMENT otherwise). */
NQ_API nq_status nq_blockwise8_quantize(const float* x, int64_t n, int32_t blocksize, const float* code,
                                        uint8_t* q, float* absmax);
/* x[i] = code[q[i]] * absmax[i / blocksize] */
NQ_API nq_status nq_blockwise8_dequantize(const uint8_t* q, const float* absmax, int64_t n, int32_t blocksize,
                                          const float* code, float* x);

/* 4-bit data types of bitsandbytes. */
typedef enum nq_quant4_type {
  NQ_QUANT4_NF4 = 0, /* NormalFloat4 (QLoRA) */
  NQ_QUANT4_FP4 = 1  /* 1 sign, 2 exponent, 1 mantissa bit (bitsandbytes' FP4 table) */
} nq_quant4_type;

/* The 16 code values of `type`, indexed by the 4-bit code. FP4 codes 0..7 are
 * {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 and bit 3 is the sign (code 8 is -0). */
NQ_API nq_status nq_quant4_code_get(nq_quant4_type type, float* code /* 16 */);

/* Blockwise 4-bit: absmax per block, nearest code of x / absmax, two codes per byte with
 * the FIRST element in the HIGH nibble. n must be even; packed holds n / 2 bytes.
 * blocksize: a power of two in 32..4096. FP4 sets the sign bit when x / absmax < 0, so
 * -0 and +0 both give code 0 (as bnb). */
NQ_API nq_status nq_quant4_quantize(nq_quant4_type type, const float* x, int64_t n, int32_t blocksize,
                                    uint8_t* packed, float* absmax);
NQ_API nq_status nq_quant4_dequantize(nq_quant4_type type, const uint8_t* packed, const float* absmax,
                                      int64_t n, int32_t blocksize, float* x);
/* Same, writing bf16 (round-to-nearest-even of the fp32 result) as uint16 bit patterns. */
NQ_API nq_status nq_quant4_dequantize_bf16(nq_quant4_type type, const uint8_t* packed, const float* absmax,
                                           int64_t n, int32_t blocksize, uint16_t* x);

/* Double quantization of per-block absmax (bitsandbytes' compress_statistics):
 * offset = mean(absmax); (q, nested_absmax) = blockwise8(absmax - offset, nested_blocksize,
 * code) with code normally the signed dynamic map and nested_blocksize 256.
 * nested_absmax has ceil(blocks / nested_blocksize) floats; nested_blocksize as blockwise8.
 * offset is accumulated in double and rounded once (bnb's fp32 torch mean may differ in the
 * last bit); absmax - offset is then formed in fp32 as bnb does. */
NQ_API nq_status nq_absmax_compress(const float* absmax, int64_t blocks, int32_t nested_blocksize,
                                    const float* code, uint8_t* q, float* nested_absmax, float* out_offset);
/* absmax[i] = code[q[i]] * nested_absmax[i / nested_blocksize] + offset */
NQ_API nq_status nq_absmax_decompress(const uint8_t* q, const float* nested_absmax, float offset,
                                      int64_t blocks, int32_t nested_blocksize, const float* code,
                                      float* absmax);

/* Error of an approximation against a reference, accumulated in double precision.
 * snr_db = 10 log10(sum ref^2 / sum (ref - approx)^2) (+inf when exact, -inf when the
 * reference is all zeros and approx is not). NaN/Inf in either input: NQ_ERR_NON_FINITE. */
typedef struct nq_error_stats {
  double mean_abs_error;
  double rmse;
  double max_abs_error;
  double snr_db;
} nq_error_stats;

NQ_API nq_status nq_error_stats_compute(const float* reference, const float* approx, int64_t n,
                                        nq_error_stats* out_stats);

/* ==== GEMM (issue: quantized matmul) ==== */

/* ------------------------------------------------------------------------------------
 * Matrix multiplication (row-major, contiguous, fp32 output)
 *
 * Common rules:
 *  - M, N, K >= 1; C/Y/dX are (M, N) (or the documented shape) and must not overlap inputs.
 *  - beta: 0 = overwrite (the output may hold garbage, even NaN), 1 = accumulate, any other
 *    value scales the old output first. bias: NULL or N floats added to every row.
 *  - kernels parallelise with OpenMP over output tiles (nq_threads_set) and use a per-thread
 *    scratch arena for packed panels that grows to the largest request and is then reused.
 *  - NQ_ISA_SCALAR runs the plain reference kernels (float accumulation in k order).
 * ---------------------------------------------------------------------------------- */

/* Precision of the multiply-accumulate: fp32, or inputs rounded to bf16 (nearest-even)
 * with fp32 accumulation (vdpbf16ps on AVX-512 BF16 CPUs), or int8 operands with int32
 * accumulation, or fp16 operands with short fp16 accumulation. NQ_COMPUTE_INT8 is accepted
 * only by nq_int8_matmul_backward, nq_quant4_gemm and nq_quant4_gemm_backward, and
 * NQ_COMPUTE_F16 only by nq_gemm_f32_compute, nq_quant4_gemm and nq_quant4_gemm_backward (see
 * there); every other kernel rejects them with NQ_ERR_INVALID_ARGUMENT. */
typedef enum nq_compute_type {
  NQ_COMPUTE_F32 = 0,
  NQ_COMPUTE_BF16 = 1,
  NQ_COMPUTE_INT8 = 2,
  NQ_COMPUTE_F16 = 3
} nq_compute_type;

/* C (M,N) = beta*C + op(A) op(B) + bias.
 * trans_a = 0: A is (M,K); 1: A is stored (K,M). trans_b = 0: B is (K,N); 1: B is stored (N,K).
 * Linear layer: Y = X W^T is (0,1); dX = dY W is (0,0); dW = dY^T X is (1,0). */
NQ_API nq_status nq_gemm_f32(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                             const float* a, const float* b, float beta, const float* bias, float* c);

/* Same with bf16 inputs (uint16 bit patterns), fp32 accumulation and fp32 output. */
NQ_API nq_status nq_gemm_bf16(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                              const uint16_t* a, const uint16_t* b, float beta, const float* bias,
                              float* c);

/* nq_gemm_f32 with the precision of the multiply chosen by `compute`:
 *  - NQ_COMPUTE_F32: identical bits to nq_gemm_f32.
 *  - NQ_COMPUTE_BF16: A and B rounded to bf16 (nearest-even), fp32 accumulation: the bits of
 *    nq_gemm_bf16 on the rounded inputs.
 *  - NQ_COMPUTE_F16: the reduction is cut into chunks of 64 k (counted from 0). Per chunk, each
 *    row of op(A) is scaled by a power of two so its largest |value| lies in [256, 512) and each
 *    column of op(B) so its largest |value| lies in [0.5, 1), both rounded to fp16; products are
 *    summed in fp16 (one rounding per fused multiply-add) over the chunk, so no chunk sum can
 *    overflow (|sum| <= 64 * 512), and each chunk sum is added to an fp32 accumulator times the
 *    two inverse scales. Relative error vs exact ~1.2e-3 on Gaussian data, bounded by 3e-3 in
 *    tests, independent of the rows' and columns' magnitudes (scale exponents are clamped to
 *    +-120: operands beyond 2^+-120 lose that guarantee). A NaN or Inf in a row of op(A)
 *    (column of op(B)) gives non-finite outputs in that row (column). Runs on AVX-512 FP16 CPUs
 *    at the NQ_ISA_AVX512_BF16 level; elsewhere it computes in fp32 (nq_gemm_f32), except
 *    NQ_ISA_SCALAR, which runs the fp16 reference (the same operations in scalar code). Every
 *    call packs all of op(B) into fp16 panels (no GEMV path): for M <= 4 NQ_COMPUTE_F32 is faster.
 * Any other `compute`: NQ_ERR_INVALID_ARGUMENT. */
NQ_API nq_status nq_gemm_f32_compute(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                     const float* a, const float* b, float beta, const float* bias,
                                     nq_compute_type compute, float* c);

/* A frozen 4-bit weight W (n, k) as produced by nq_quant4_quantize over the flattened
 * (n, k) tensor (blocks may straddle rows when k is not a multiple of blocksize).
 * Plain absmax: `absmax` holds ceil(n*k / blocksize) floats and absmax_q is NULL.
 * Double-quantized: absmax is NULL and absmax[i] = nested_code[absmax_q[i]] *
 * nested_absmax[i / nested_blocksize] + nested_offset (nq_absmax_compress). */
typedef struct nq_quant4_weight {
  const uint8_t* packed;        /* n*k/2 bytes, first element in the high nibble */
  const float* absmax;          /* plain absmax, or NULL */
  const uint8_t* absmax_q;      /* double quantization: one code per block, or NULL */
  const float* nested_absmax;   /* ceil(blocks / nested_blocksize) floats */
  const float* nested_code;     /* 256 floats (the signed dynamic map) */
  float nested_offset;
  int32_t nested_blocksize;     /* power of two in 64..4096 (normally 256) */
  int64_t n;                    /* output features (rows of W) */
  int64_t k;                    /* input features (columns of W); n*k must be even */
  int32_t blocksize;            /* power of two in 32..4096 */
  int32_t type;                 /* nq_quant4_type */
} nq_quant4_weight;

/* Y (M, w.n) = X (M, w.k) W^T + bias, dequantizing W tile by tile into packed panels (the
 * fp32 W is never materialised). M <= 4 with w.k % 32 == 0 on AVX-512 takes a GEMV path that
 * streams W once and accumulates in fp32 whatever `compute` says (it is memory-bound).
 *
 * NQ_COMPUTE_F16 (bitsandbytes' bnb_4bit_compute_dtype=float16), here and in the backward:
 * the reduction is cut into chunks of 64 (k for the forward, n for the backward, counted
 * from 0). Per chunk, each row of X (dY) is scaled by a power of two so its largest |value|
 * lies in [256, 512) and rounded to fp16; the weight is W's codes rounded to fp16 with the
 * block's absmax as the chunk's scale when the chunk lies in one quantization block, else
 * code*absmax scaled by a power of two into (-1, 1) and rounded to fp16. Products are
 * summed in fp16 (one rounding per fused multiply-add) over the chunk, so no chunk sum can
 * overflow (|sum| <= 64 * 512), and each chunk sum is added to an fp32 accumulator times
 * (weight scale / row scale). Relative error vs exact: ~1.2e-3 on Gaussian data (fp16
 * unit roundoff 2^-11 times ~sqrt(64/2) accumulated roundings), bounded by 3e-3 in tests.
 * A row of X with Inf/NaN gives non-finite outputs in that row (as fp32 compute would).
 * Runs on AVX-512 FP16 CPUs at the NQ_ISA_AVX512_BF16 level; elsewhere NQ_COMPUTE_F16
 * computes in fp32 (the NQ_COMPUTE_F32 kernels), except NQ_ISA_SCALAR, which runs the fp16
 * reference (the same operations in scalar code).
 *
 * NQ_COMPUTE_INT8 (SwitchBack's int8 matmuls, Wortsman et al. 2023, for a frozen 4-bit base),
 * here and in the backward: each row of X (dY) is quantized to int8 with its absmax, q =
 * round(x * 127 / absmax), as LLM.int8()'s X without an outlier split; W is requantized per
 * output column of the product (per W row forward, per W column backward) against that column's
 * scale s = the largest |code * absmax| its blocks can hold: q = round(code * absmax * 127 / s).
 * Sums are exact in int32 (w.k forward, w.n backward <= 65536) and each output is
 * float(sum) * (absmax_row / 127 * s / 127) + bias (or + beta * dX). Every element's error is
 * bounded by half a quantization step of each operand (absmax / 254, s / 254): ~1% relative on
 * Gaussian data, bounded by 3e-2 in tests; rows with a few large (outlier) features lose more, as
 * there is no outlier split (stories15M NLL +0.01-0.5% vs fp32). A row of X (dY) holding NaN or Inf gives NaN in its
 * whole output row. VNNI on AVX-512 VNNI CPUs, int16 pairs on AVX2, the same bits everywhere
 * (NQ_ISA_SCALAR runs the reference); M <= 4 on AVX-512 takes the fp32 GEMV as above. */
NQ_API nq_status nq_quant4_gemm(const float* x, int64_t m, const nq_quant4_weight* w, const float* bias,
                                nq_compute_type compute, float* y);

/* dX (M, w.k) = beta*dX + dY (M, w.n) W for the same stored 4-bit W. */
NQ_API nq_status nq_quant4_gemm_backward(const float* dy, int64_t m, const nq_quant4_weight* w,
                                         nq_compute_type compute, float beta, float* dx);

/* Columns [row0, row1) of Y (M, w.n) = X (M, w.k) W^T + bias (rows row0..row1-1 of W), fp32
 * compute, on the calling thread only (never an OpenMP region): for hosts that split one
 * decode-shaped product's rows over threads of their own. y is the whole (M, w.n) output and
 * only those columns are written; bias, when given, has w.n entries. row0 must be a multiple
 * of 4 and row1 a multiple of 4 or w.n; ranges need not align to absmax blocks. Same GEMV as
 * nq_quant4_gemm (AVX-512, w.k % 32 == 0; each output equal whatever the split), else the
 * scalar reference. */
NQ_API nq_status nq_quant4_gemv_rows(const float* x, int64_t m, const nq_quant4_weight* w, const float* bias,
                                     int64_t row0, int64_t row1, float* y);

/* LLM.int8() (Dettmers et al. 2022) Y (M,N) = X (M,K) W^T + bias with W int8 (N,K) row-wise
 * quantized (scb: (N) row absmax, W ~ q * scb / 127).
 * threshold > 0: columns j of X with any |X[i,j]| >= threshold are outliers; they are
 * multiplied in `outlier_compute` precision against W[:,j] * scb / 127 and the rest is
 * quantized per row (absmax over the non-outlier columns) and multiplied in int8 with int32
 * accumulation. threshold = 0 disables the decomposition (bitsandbytes' default is 6.0).
 * The outlier column indices (ascending) are written to outlier_cols (NULL allowed when
 * outlier_capacity = 0) and their number to *out_outlier_count; a capacity smaller than the
 * count is NQ_ERR_INVALID_ARGUMENT (pass k to be safe). k <= 65536 (int32 accumulation). */
NQ_API nq_status nq_int8_matmul(const float* x, int64_t m, int64_t k, const int8_t* w, const float* scb,
                                int64_t n, float threshold, const float* bias,
                                nq_compute_type outlier_compute, float* y, int32_t* outlier_cols,
                                int64_t outlier_capacity, int64_t* out_outlier_count);

/* Same with X given as bf16 bit patterns. */
NQ_API nq_status nq_int8_matmul_bf16(const uint16_t* x, int64_t m, int64_t k, const int8_t* w,
                                     const float* scb, int64_t n, float threshold, const float* bias,
                                     nq_compute_type outlier_compute, float* y, int32_t* outlier_cols,
                                     int64_t outlier_capacity, int64_t* out_outlier_count);

/* Backward of LLM.int8(): dX (M,K) = beta*dX + dY (M,N) (W * scb / 127) for the stored int8 W
 * (W is never re-quantized).
 * NQ_COMPUTE_F32 / NQ_COMPUTE_BF16: W is dequantized tile by tile and multiplied in that precision.
 * NQ_COMPUTE_INT8 (SwitchBack's input gradient, Wortsman et al. 2023): G = dY * scb / 127 is
 * quantized per row like X in the forward (absmax_i = max_n |G[i,n]|, q = round-half-even(G *
 * 127 / absmax_i)) and dX = beta*dX + absmax_i / 127 * sum_n q[i,n] W[n,k] with int32
 * accumulation: the forward's speed and int8-class error (~1% of the norm on randn data);
 * requires N <= 65536. */
NQ_API nq_status nq_int8_matmul_backward(const float* dy, int64_t m, int64_t n, const int8_t* w,
                                         const float* scb, int64_t k, nq_compute_type compute, float beta,
                                         float* dx);

/* ------------------------------------------------------------------------------------
 * Causal scaled-dot-product attention (training forward + backward, and decoding)
 *
 * Operands are (B, L, H, D) fp32 with explicit strides in floats: element (b, l, h, i) of q
 * is q[b * q_batch_stride + l * q_row_stride + h * D + i] (heads D apart, elements
 * contiguous), so q/k/v may be narrow views of a fused (B, T, 3C) projection (row stride 3C)
 * and k/v a KV-cache prefix (its own batch stride). o and do are contiguous (B, T, Hq, D);
 * lse is (B, Hq, T). Query head h reads kv head h / (Hq / Hkv) (grouped-query attention).
 * Query t sits at position query_offset + t and sees keys 0..query_offset + t:
 *   P[t, j] = softmax_j(scale * q_t . k_j),  o_t = sum_j P[t, j] v_j,
 *   lse[t] = log sum_j exp(scale * q_t . k_j)   (natural log, over the visible keys).
 * Masked blocks are skipped, not computed. The backward recomputes P from lse (O(T) saved
 * state instead of the O(T S) probabilities). AVX-512 and AVX2 CPUs run blocked kernels
 * (OpenMP: forward over (batch, head, 64-query chunk), backward over (batch, kv head), work
 * below ~2^18 multiply-adds on the calling thread); NQ_ISA_SCALAR runs the scalar reference.
 * Paths differ by float rounding only (~1e-6 relative); results do not depend on the thread
 * count. Outputs must not overlap the span of any input (NQ_ERR_OVERLAP).
 * ---------------------------------------------------------------------------------- */

typedef struct nq_attention_shape {
  int64_t batch;          /* B >= 1 */
  int64_t q_len;          /* T >= 1 */
  int64_t kv_len;         /* S >= query_offset + T */
  int64_t q_heads;        /* Hq >= 1, a multiple of kv_heads */
  int64_t kv_heads;       /* Hkv >= 1 */
  int64_t head_dim;       /* D >= 1 */
  int64_t query_offset;   /* >= 0 */
  int64_t q_batch_stride; /* q and dq: >= T * q_row_stride (any value when B = 1) */
  int64_t q_row_stride;   /* >= Hq * D */
  int64_t k_batch_stride; /* k and dk: >= S * k_row_stride (any value when B = 1) */
  int64_t k_row_stride;   /* >= Hkv * D */
  int64_t v_batch_stride; /* v and dv: as k */
  int64_t v_row_stride;
  float scale;            /* finite, > 0 (normally 1 / sqrt(D)) */
} nq_attention_shape;

/* o = attention(q, k, v) (overwritten); lse: (B, Hq, T) for the backward, or NULL. */
NQ_API nq_status nq_attention_forward(const nq_attention_shape* shape, const float* q, const float* k,
                                      const float* v, float* o, float* lse);

/* Gradients for d_o = dL/do, given the forward's lse: dq += dL/dq, dk += dL/dk, dv += dL/dv
 * (accumulated, with q's, k's and v's layouts; any of them NULL to skip it). dq, dk and dv
 * may interleave in one buffer (narrow views of a fused dqkv) but must not share elements. */
NQ_API nq_status nq_attention_backward(const nq_attention_shape* shape, const float* q, const float* k,
                                       const float* v, const float* d_o, const float* lse, float* dq,
                                       float* dk, float* dv);

/* ------------------------------------------------------------------------------------
 * Row kernels of training: cross-entropy rows and LayerNorm
 *
 * Row-major fp32 rows, contiguous. AVX-512 CPUs run vector kernels, others the scalar
 * reference; paths differ by float rounding only (cross-entropy: the polynomial exp, ~1 ulp).
 * ---------------------------------------------------------------------------------- */

/* logits (rows, v) -> gradient of the NLL in place, per row r with t = targets[r]:
 *   nll[r] = log sum_i exp(logits[r, i]) - logits[r, t]       (the sum in double)
 *   logits[r, :] = scale * (softmax(logits[r, :]) - onehot(t))
 * Rows with t == ignore_index become 0 with nll[r] = 0. Every target must be ignore_index or
 * in [0, v) (NQ_ERR_INVALID_ARGUMENT before any row is written); scale finite. Runs on the
 * calling thread (callers split rows over threads). */
NQ_API nq_status nq_cross_entropy_rows(float* logits, int64_t rows, int64_t v, const int32_t* targets,
                                       int32_t ignore_index, float scale, double* nll);

/* An output head and its cross-entropy in one pass over the vocabulary, for x (n, c) and
 * w (v, c) row-major, t = targets[r], logits = x w^T:
 *   nll[r] = log sum_i exp(logits[r, i]) - logits[r, t]            (sums in double)
 *   dx[r, :] = scale * (softmax(logits[r, :]) - onehot(t)) w        (overwritten; dx NULL skips it)
 * Rows with t == ignore_index get nll 0 and a zero dx row. The logits exist one (n, 384) block
 * at a time (an online softmax per segment of the vocabulary, merged in a fixed order: results
 * do not depend on the thread count) and w is read once. compute: precision of the two products
 * as in nq_gemm_f32_compute, or NQ_COMPUTE_INT8 (c <= 65536): exact int32 products on the int8
 * kernel (VNNI, AVX2 int16 pairs, plain loops on NQ_ISA_SCALAR; equal bits for equal softmax
 * weights) of x's rows quantized by their absmax and w's rows by theirs for the logits, and for
 * dx the softmax weights quantized per row and 384-entry block to 255 levels of [0, block max]
 * (a row-wide int8 scale would round every weight below 1/254 of the largest to 0) against w's
 * columns per block; error bound: half a quantization step of each operand.
 * Scratch ~ (16 c + 384 threads) n floats (int8: + (c + 96) n threads), from nq_buffer_alloc.
 * w_packed: NULL, or w as nq_linear_cross_entropy_pack left it for this v, c and compute (a
 * frozen head skips converting w for both products on every call; same results bit for bit).
 * Targets are checked as in nq_cross_entropy_rows; scale finite. */
NQ_API nq_status nq_linear_cross_entropy(const float* x, int64_t n, int64_t c, const float* w, const void* w_packed,
                                         int64_t v, const int32_t* targets, int32_t ignore_index, float scale,
                                         nq_compute_type compute, double* nll, float* dx);

/* Bytes of w (v, c) packed for nq_linear_cross_entropy under `compute`: 0 where packing does not
 * apply. NQ_COMPUTE_F16 on a CPU with AVX512-FP16 converts w (~2.1 bytes per weight);
 * NQ_COMPUTE_INT8 on AVX2 and up quantizes it (~2 bytes per weight, ~4 with AVX2's int16 pairs):
 * a pack serves only the kernel it was made for. */
NQ_API nq_status nq_linear_cross_entropy_pack_bytes(int64_t v, int64_t c, nq_compute_type compute, uint64_t* bytes);

/* Packs w (v, c) into `packed` (`bytes` >= nq_linear_cross_entropy_pack_bytes, 64-byte aligned):
 * both products' fp16 or int8 operands, each vocabulary block's together. Packing that does not apply
 * (0 bytes) is NQ_ERR_UNSUPPORTED. */
NQ_API nq_status nq_linear_cross_entropy_pack(const float* w, int64_t v, int64_t c, nq_compute_type compute,
                                              void* packed, uint64_t bytes);

/* y (rows, c) = (x - mean) * rstd * weight + bias per row, biased variance, statistics in
 * double: mean[r] and rstd[r] = 1 / sqrt(var + eps) (rows floats each) are what the backward
 * reads. Rows are split over threads from 2^17 elements on. */
NQ_API nq_status nq_layernorm_forward(const float* x, int64_t rows, int64_t c, const float* weight,
                                      const float* bias, float eps, float* y, float* mean, float* rstd);

/* Gradients for dy = dL/dy, given the forward's mean and rstd, all accumulated (+=):
 *   dx (rows, c) += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),  g = dy * weight,
 *   dweight (c) += sum_rows dy * xhat,  dbias (c) += sum_rows dy,  xhat = (x - mean) * rstd.
 * dx, dweight, dbias may each be NULL to skip it (weight may be NULL when dx is). Results do
 * not depend on the thread count. */
NQ_API nq_status nq_layernorm_backward(const float* x, const float* dy, int64_t rows, int64_t c,
                                       const float* weight, const float* mean, const float* rstd, float* dx,
                                       float* dweight, float* dbias);

/* ------------------------------------------------------------------------------------
 * GELU, tanh approximation (GPT-2 / HF "gelu_new")
 *
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 *
 * evaluated as x * sigmoid(2u) with a float exp (1 + tanh(u) = 2 sigmoid(2u), so no
 * cancellation for negative x): results are within a few ulp of float64 plus the
 * rounding of u (relative error <= (8 + 4 |2u|) 2^-24; see native/tests/test_gelu.cpp).
 * x, g, y and dx are contiguous fp32 of n > 0 elements. Outputs may be exactly their
 * inputs (in place) but must not partially overlap them (NQ_ERR_OVERLAP). NaN gives NaN;
 * gelu(+Inf) = +Inf, gelu(-Inf) = NaN and gelu'(+-Inf) = NaN (as the formula, and torch);
 * below x ~ -10, where exp(2u) < 2^-125, gelu and gelu' are flushed to (signed) zero
 * (their true values are below 2^-110; no denormal is produced).
 * The AVX-512, AVX2 and scalar paths give the same bits. Runs on the calling thread:
 * hosts split large tensors over their own workers.
 * ---------------------------------------------------------------------------------- */

/* y = gelu(x). */
NQ_API nq_status nq_gelu_forward(const float* x, int64_t n, float* y);

/* dx = beta dx + g gelu'(x) (beta finite; beta = 0 overwrites dx without reading it). */
NQ_API nq_status nq_gelu_backward(const float* x, const float* g, int64_t n, float beta, float* dx);

/* ------------------------------------------------------------------------------------
 * Optimizers (bitsandbytes semantics): AdamW and Lion, 32-bit and 8-bit blockwise state
 *
 * Common rules:
 *  - p (params) and g (grads) are contiguous fp32 of n > 0 elements; p is updated in place.
 *  - the caller owns the step count (params->step >= 1, the 1-based index of this step),
 *    so a resumed run reproduces the uninterrupted one bit for bit.
 *  - g is first scaled by params->gnorm_scale (1 for none): the hook for global-norm
 *    clipping, which the managed layer computes over all tensors (as bitsandbytes).
 *  - gradients must be finite (the managed layer's norm pass detects NaN/Inf and skips
 *    the step); the kernels do not check them.
 *  - AdamW, per element (bitsandbytes' order):
 *      m = beta1 m + (1 - beta1) g;  v = beta2 v + ((1 - beta2) g) g
 *      p = p - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps sqrt(1 - beta2^t))
 *      p = p (1 - lr weight_decay)                     (decoupled decay, after the update)
 *    Lion: p = p (1 - lr weight_decay);  p = p - lr sign(beta1 m + (1 - beta1) g);
 *          m = beta2 m + (1 - beta2) g                  (update first, then momentum)
 *  - 8-bit blockwise state: blocks of NQ_OPTIMIZER8_BLOCKSIZE elements (last one partial);
 *    state1 (m) uses a signed code (normally nq_dynamic_map_create(1)), state2 (v) an
 *    unsigned one (nq_dynamic_map_create(0)); one absmax float per block per state. Each
 *    step dequantizes a block, updates in fp32, sets absmax to the new max |state| and
 *    requantizes to the nearest code (ties to the lower index, as nq_blockwise8_quantize);
 *    a state1 code whose sign differs from the fp32 value is moved one index towards it
 *    (as bitsandbytes). A fresh state is all-zero bytes and all-zero absmax.
 *  - policy (managed layer, as bitsandbytes' min_8bit_size): tensors with fewer than
 *    NQ_OPTIMIZER8_MIN_SIZE elements keep 32-bit state.
 *  - results are bit-identical across ISA paths, thread counts and paged/unpaged state.
 * ---------------------------------------------------------------------------------- */

typedef enum nq_optimizer_kind {
  NQ_OPTIMIZER_ADAMW = 0, /* two states: m (state1), v (state2) */
  NQ_OPTIMIZER_LION = 1   /* one state: m (state1); state2 arguments must be NULL */
} nq_optimizer_kind;

typedef enum nq_optimizer_constants {
  NQ_OPTIMIZER8_BLOCKSIZE = 256, /* elements per 8-bit state block */
  NQ_OPTIMIZER8_MIN_SIZE = 4096  /* smaller tensors keep 32-bit state (managed policy) */
} nq_optimizer_constants;

/* Hyper-parameters of one step (32 bytes). eps is unused by Lion. */
typedef struct nq_optimizer_params {
  float lr;           /* >= 0 */
  float beta1;        /* [0, 1) */
  float beta2;        /* [0, 1) */
  float eps;          /* > 0 (AdamW) */
  float weight_decay; /* >= 0, decoupled */
  float gnorm_scale;  /* > 0; g is multiplied by it first */
  int64_t step;       /* >= 1, 1-based index of this step */
} nq_optimizer_params;

/* 32-bit state: state1, state2 hold n fp32 each (state2 NULL for Lion); start at zero. */
NQ_API nq_status nq_optimizer32_step(nq_optimizer_kind kind, const nq_optimizer_params* params, float* p,
                                     const float* g, float* state1, float* state2, int64_t n);

/* 8-bit blockwise state: state1/state2 hold n bytes, absmax1/absmax2 ceil(n / 256) floats
 * (state2, absmax2, code2 NULL for Lion). code1/code2: 256 ascending floats, negative
 * entries first. */
NQ_API nq_status nq_optimizer8_step(nq_optimizer_kind kind, const nq_optimizer_params* params, float* p,
                                    const float* g, uint8_t* state1, float* absmax1, uint8_t* state2,
                                    float* absmax2, const float* code1, const float* code2, int64_t n);

/* ------------------------------------------------------------------------------------
 * Pager: optimizer state beyond a memory budget lives in a file (paged optimizers).
 *
 * Each paged buffer is a page-aligned region of one unnamed file (O_TMPFILE or
 * unlinked at once in `dir`, so it vanishes with the process) mapped MAP_SHARED. Pages
 * are resident or paged out; acquiring a range pins its pages (paging them in) and
 * returns a pointer valid until the matching release; when resident pages would exceed
 * the budget the least recently used unpinned pages are written back and dropped from
 * memory. Disk space is reserved at allocation (disk full -> NQ_ERR_IO there, never a
 * fault later). Buffers start zero-filled. All calls are thread-safe.
 * ---------------------------------------------------------------------------------- */

typedef struct nq_pager nq_pager; /* opaque */

typedef struct nq_pager_stats {
  uint64_t budget_bytes;    /* resident-memory budget */
  uint64_t page_bytes;      /* paging granularity */
  uint64_t allocated_bytes; /* sum of live buffers, rounded up to pages */
  uint64_t resident_bytes;  /* pages in memory now (<= budget) */
  uint64_t pinned_bytes;    /* pages acquired and not yet released */
  uint64_t paged_out_bytes; /* allocated_bytes - resident_bytes */
  uint64_t evictions;       /* pages written back and dropped, since creation */
  uint64_t page_ins;        /* pages brought into memory (acquire or prefetch) */
} nq_pager_stats;

/* budget_bytes >= page_bytes; page_bytes a power of two, a multiple of the OS page size,
 * at most 1 GiB; dir an existing writable directory (on a disk, not tmpfs, to save RAM). */
NQ_API nq_status nq_pager_create(uint64_t budget_bytes, uint64_t page_bytes, const char* dir,
                                 nq_pager** out_pager);
/* Unmaps everything and closes the file. NULL is accepted and ignored. */
NQ_API nq_status nq_pager_destroy(nq_pager* pager);

/* A zero-filled paged buffer of `bytes` (> 0); ids are >= 0 and never reused. */
NQ_API nq_status nq_pager_alloc(nq_pager* pager, uint64_t bytes, int64_t* out_buffer);
/* Release a buffer's memory and disk space; it must have no pinned pages. */
NQ_API nq_status nq_pager_free(nq_pager* pager, int64_t buffer);

/* Pin [offset, offset + bytes) of `buffer` in memory and return a pointer to its first
 * byte. Fails with NQ_ERR_OUT_OF_MEMORY if pinned pages would exceed the budget. */
NQ_API nq_status nq_pager_acquire(nq_pager* pager, int64_t buffer, uint64_t offset, uint64_t bytes,
                                  void** out_ptr);
/* Unpin a range acquired before (same buffer, offset, bytes). */
NQ_API nq_status nq_pager_release(nq_pager* pager, int64_t buffer, uint64_t offset, uint64_t bytes);
/* Hint: start reading the range in (asynchronously) if the budget allows without
 * evicting pinned pages. Never fails for lack of room. */
NQ_API nq_status nq_pager_prefetch(nq_pager* pager, int64_t buffer, uint64_t offset, uint64_t bytes);

NQ_API nq_status nq_pager_stats_get(const nq_pager* pager, nq_pager_stats* out_stats);

/* Optimizer steps whose state lives in pager buffers (sizes as the unpaged steps: 4 n
 * bytes per 32-bit state; n bytes + 4 ceil(n / 256) bytes of absmax per 8-bit state; -1
 * for Lion's unused state2 buffers). The state is walked in chunks that fit half the budget
 * (the next chunk is prefetched while one is updated); results are bitwise those of the
 * unpaged step. */
NQ_API nq_status nq_optimizer32_step_paged(nq_optimizer_kind kind, const nq_optimizer_params* params,
                                           float* p, const float* g, nq_pager* pager, int64_t state1,
                                           int64_t state2, int64_t n);
NQ_API nq_status nq_optimizer8_step_paged(nq_optimizer_kind kind, const nq_optimizer_params* params,
                                          float* p, const float* g, nq_pager* pager, int64_t state1,
                                          int64_t absmax1, int64_t state2, int64_t absmax2,
                                          const float* code1, const float* code2, int64_t n);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NATIVEQUANT_H */
