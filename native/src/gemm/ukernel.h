// Register-blocked GEMM micro-kernels and the packed panel formats they read.
//
// A micro-kernel computes an (mr, nr) tile C = [C +] Ap * Bp over `groups` k-groups:
//   Ap: one A micro-panel, layout [group][mr][kgroup]   (row i's kgroup consecutive k values)
//   Bp: one B micro-panel, layout [group][nr][kgroup]   (column j's kgroup consecutive k values)
// kgroup is the number of k values one instruction folds: 1 for fp32 FMA, 2 for bf16
// (vdpbf16ps) and int16 (vpmaddwd), 4 for u8 x s8 (vpdpbusd). Padding (k beyond K, rows
// beyond M, columns beyond N) is zero-filled by the packers so full tiles are always valid.
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::gemm {

// Element format of a packed panel.
enum class Fmt : int {
  F32,   // float
  BF16,  // uint16 bf16 bits
  I16,   // int16 (int8 values widened; AVX2 vpmaddwd path)
  U8,    // uint8 = int8 + 128 (vpdpbusd's unsigned operand: the weight)
  S8,    // int8
  F16C,  // B: fp16 values in 64-k chunks with per-chunk fp32 scales (quant4_f16.h); sized as
         // 4 bytes per element, of which the chunked layout uses ~2.1
  F16CA, // A: the same with each fp16 value doubled into 32 bits; sized as 8 bytes, ~4.4 used
};

inline int fmt_bytes(Fmt f) {
  return f == Fmt::F16CA ? 8 : (f == Fmt::F32 || f == Fmt::F16C) ? 4 : (f == Fmt::BF16 || f == Fmt::I16) ? 2 : 1;
}

// c: float* for float kernels, int32_t* for integer kernels; ldc in elements.
// accumulate = false overwrites the tile (C may hold NaN), true adds to it.
using UkernelFn = void (*)(int64_t groups, const void* a, const void* b, void* c, int64_t ldc,
                           bool accumulate);

// Same product with A read in place: row i of the tile at a + i * lda (fp32, unit k stride),
// so an A already laid out row-major needs no packing.
using UkernelStridedFn = void (*)(int64_t k, const float* a, int64_t lda, const void* b, void* c, int64_t ldc,
                                  bool accumulate);

struct Ukernel {
  int mr, nr, kgroup;
  Fmt a_fmt, b_fmt;
  bool int_acc;  // int32 accumulators (int8 paths) instead of fp32
  UkernelFn run;
  UkernelStridedFn run_strided;  // nullptr: A must always be packed
};

// Micro-kernels by ISA (defined in ukernel_<isa>.cpp; only call after checking cpu::use).
extern const Ukernel kUkF32Avx2;    // 6 x 16 fp32 FMA
extern const Ukernel kUkI16Avx2;    // 6 x 16 int16 pairs, vpmaddwd
extern const Ukernel kUkF32Avx512;  // 8 x 48 fp32 FMA
extern const Ukernel kUkU8S8Vnni;   // 6 x 64 s8 (A) x u8 (B) quads, vpdpbusd
extern const Ukernel kUkBf16Avx512; // 6 x 64 bf16 pairs, vdpbf16ps
extern const Ukernel kUkF16Avx512;  // 8 x 96 fp16 FMA in 64-k chunks (NQ_COMPUTE_F16, quant4_f16.h)

// Best kernel for the active ISA, or nullptr when the scalar reference must run.
const Ukernel* ukernel_f32();
const Ukernel* ukernel_bf16();  // bf16 kernel, else the fp32 one (see bf16_emulated)
const Ukernel* ukernel_int8();

// bf16 compute on a CPU without vdpbf16ps runs the fp32 kernel: the packers must then round
// every operand to bf16 themselves so all paths compute the same products.
inline bool bf16_emulated(const Ukernel* uk) { return uk != nullptr && uk->b_fmt == Fmt::F32; }

// Float kernel for a compute type (nullptr: run the scalar reference).
inline const Ukernel* ukernel_for(nq_compute_type c) {
  return c == NQ_COMPUTE_BF16 ? ukernel_bf16() : ukernel_f32();
}

}  // namespace nq::gemm
