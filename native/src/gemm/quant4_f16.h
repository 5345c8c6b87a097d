// NQ_COMPUTE_F16 for the 4-bit weight matmuls (see nq_quant4_gemm's header doc), on the chunked
// fp16 scheme of f16_chunk.h.
//
// The forward's chunk is a run of one W row: 64-aligned runs lie inside one quantization
// block when blocksize >= 64 and k % 64 == 0, so B holds the fp16 codes themselves (a table
// lookup, |code| <= 1) and the block's absmax is the chunk's scale, applied in fp32 at the
// flush. The backward's chunk runs down a W column (absmax changes along it), so it holds
// code*absmax scaled by a power of two into (-1, 1). Every chunk follows the same rule
// (f16_weight_chunk), so both directions, all K tails and the reference agree.
#pragma once

#include <cstdint>

#include "gemm/f16_chunk.h"
#include "nativequant.h"

namespace nq::gemm {

// One chunk of W: elements e0 + t * stride, t < len (<= 64). Writes their fp16 bits to
// vals[t * vstride] and returns the chunk's scale: the block's absmax when all elements
// lie in one block (vals = fp16(code)), else 2^-s with vals = fp16(code * (absmax * 2^s)).
float f16_weight_chunk(const nq_quant4_weight& w, int64_t e0, int64_t stride, int len, uint16_t* vals,
                       int64_t vstride);

// Reference: the same operations in scalar code (fp16 FMA emulated exactly in double).
void quant4_gemm_f16_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y);
void quant4_gemm_backward_f16_ref(const float* dy, int64_t m, const nq_quant4_weight& w, float beta, float* dx);

// Driver packer for B from W (only used when cpu::use_avx512fp16()): forward B(k, j) = W[j][k]
// (runs of W rows), backward B(k, j) = W[k][j].
struct PackBQuant4F16 {
  const nq_quant4_weight& w;
  bool backward;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const;
};

// SIMD packers (pack_quant4_f16_avx512fp16.cpp).
// Forward B(k, j) = W[n0 + j][k0 + k] for the first nc / 16 * 16 columns (returned); needs
// w.k % 64 == 0, w.blocksize >= 64, k0 % 64 == 0. panel_bytes = bytes per micro-panel.
int64_t pack_b_quant4_f16_fwd_avx512fp16(const nq_quant4_weight& w, uint8_t* out, int64_t panel_bytes, int64_t k0,
                                         int64_t kc, int64_t n0, int64_t nc);
// Backward B(k, j) = W[k0 + k][n0 + j] for the first nc / 16 * 16 columns (returned); needs
// w.k % 16 == 0 and n0 % 16 == 0.
int64_t pack_b_quant4_f16_bwd_avx512fp16(const nq_quant4_weight& w, uint8_t* out, int64_t panel_bytes, int64_t k0,
                                         int64_t kc, int64_t n0, int64_t nc);

}  // namespace nq::gemm
