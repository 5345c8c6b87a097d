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
  NQ_CPU_AVX512BF16 = 1u << 8
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

/* Free a buffer from nq_buffer_alloc. NULL is accepted and ignored. */
NQ_API nq_status nq_buffer_free(void* ptr);

NQ_API nq_status nq_memory_stats_get(nq_memory_stats* out_stats);

/* Reset peak_bytes to the current live_bytes. */
NQ_API nq_status nq_memory_peak_reset(void);

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
 *    pick the nearest code value, ties to the lower index.
 *  - the SIMD paths are byte-identical to the scalar reference (NQ_ISA_SCALAR).
 * ---------------------------------------------------------------------------------- */

/* int8 absmax, per tensor: absmax = max|x|, q = round(x * 127 / absmax) (0 if absmax = 0). */
NQ_API nq_status nq_int8_absmax_quantize(const float* x, int64_t n, int8_t* q, float* out_absmax);
/* x = q * absmax / 127 */
NQ_API nq_status nq_int8_absmax_dequantize(const int8_t* q, int64_t n, float absmax, float* x);

/* int8 absmax per row (vector-wise; bitsandbytes' SCB). x, q: (rows, cols); row_absmax: (rows). */
NQ_API nq_status nq_int8_rowwise_quantize(const float* x, int64_t rows, int64_t cols, int8_t* q,
                                          float* row_absmax);
NQ_API nq_status nq_int8_rowwise_dequantize(const int8_t* q, const float* row_absmax, int64_t rows,
                                            int64_t cols, float* x);

/* int8 absmax per column. x, q: (rows, cols); col_absmax: (cols). */
NQ_API nq_status nq_int8_colwise_quantize(const float* x, int64_t rows, int64_t cols, int8_t* q,
                                          float* col_absmax);
NQ_API nq_status nq_int8_colwise_dequantize(const int8_t* q, const float* col_absmax, int64_t rows,
                                            int64_t cols, float* x);

/* Asymmetric (zero-point) int8, per tensor (per_row = 0: scale/zero_point have 1 entry)
 * or per row (per_row = 1: `rows` entries). With lo = min(x, 0), hi = max(x, 0):
 * scale = (hi - lo) / 255, zero_point = round(-128 - lo / scale),
 * q = clamp(round(x / scale) + zero_point, -128, 127); dequant x = (q - zero_point) * scale.
 * A constant-zero group has scale 0 and dequantizes to 0. */
NQ_API nq_status nq_int8_zeropoint_quantize(const float* x, int64_t rows, int64_t cols, int32_t per_row,
                                            int8_t* q, float* scale, float* zero_point);
NQ_API nq_status nq_int8_zeropoint_dequantize(const int8_t* q, const float* scale, const float* zero_point,
                                              int64_t rows, int64_t cols, int32_t per_row, float* x);

/* bitsandbytes' create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): 256 sorted
 * floats in [-1, 1] (signed) or [0, 1] (unsigned). */
NQ_API nq_status nq_dynamic_map_create(int32_t is_signed, float* code /* 256 */);

/* Blockwise 8-bit with any sorted 256-entry code (normally the dynamic map):
 * absmax[b] = max|x| over block b; q[i] = index of the code nearest x[i] / absmax[b].
 * blocksize: a power of two in 64..4096. */
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

/* The 16 code values of `type`, indexed by the 4-bit code. */
NQ_API nq_status nq_quant4_code_get(nq_quant4_type type, float* code /* 16 */);

/* Blockwise 4-bit: absmax per block, nearest code of x / absmax, two codes per byte with
 * the FIRST element in the HIGH nibble. n must be even; packed holds n / 2 bytes.
 * blocksize: a power of two in 32..4096. */
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
 * nested_absmax has ceil(blocks / nested_blocksize) floats. */
NQ_API nq_status nq_absmax_compress(const float* absmax, int64_t blocks, int32_t nested_blocksize,
                                    const float* code, uint8_t* q, float* nested_absmax, float* out_offset);
/* absmax[i] = code[q[i]] * nested_absmax[i / nested_blocksize] + offset */
NQ_API nq_status nq_absmax_decompress(const uint8_t* q, const float* nested_absmax, float offset,
                                      int64_t blocks, int32_t nested_blocksize, const float* code,
                                      float* absmax);

/* Error of an approximation against a reference, accumulated in double precision.
 * snr_db = 10 log10(sum ref^2 / sum (ref - approx)^2) (+inf when exact). */
typedef struct nq_error_stats {
  double mean_abs_error;
  double rmse;
  double max_abs_error;
  double snr_db;
} nq_error_stats;

NQ_API nq_status nq_error_stats_compute(const float* reference, const float* approx, int64_t n,
                                        nq_error_stats* out_stats);

/* ==== GEMM (issue: quantized matmul) ==== */

/* ==== OPTIMIZERS ==== */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NATIVEQUANT_H */
