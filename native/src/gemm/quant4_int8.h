// NQ_COMPUTE_INT8 for the 4-bit weight matmuls (see nq_quant4_gemm's header doc): SwitchBack-style
// int8 products (Wortsman et al. 2023) for a frozen NF4/FP4 base, on the VNNI (or AVX2 int16) kernel
// that LLM.int8() uses.
//
// Forward Y = X W^T: each row of X is quantized to int8 with its absmax (LLM.int8()'s vector-wise X,
// without an outlier split); W is requantized per output feature o (a column of B): scale s_o = the
// largest |code * absmax| that row can hold (max over its blocks of |absmax| * max |code|) and
// q[o][k] = round(code * absmax * 127 / s_o). Backward dX = dY W: rows of dY likewise, W per input
// feature i (a column of B there): s_i = max over rows o of |absmax of (o, i)| * max |code|. Sums are
// exact in int32; out = float(sum) * (absmax_row / 127 * s / 127) + bias (or + beta * old dX).
// Every path computes a weight element with q8_of, so the SIMD packers (a 16-entry table per block
// run) and the scalar reference agree bit for bit.
#pragma once

#include <cstdint>

#include "gemm/driver.h"
#include "nativequant.h"

namespace nq::gemm {

// int8 value of one weight element: round(code * absmax * inv), 0 when that is NaN.
int8_t q8_of(float code_times_absmax, float inv);

// Column scales of B: forward (backward = false) one per W row (w.n), backward one per W column
// (w.k). scale[j] = s_j / 127 (what the epilogue multiplies by), inv[j] = 127 / s_j (0 when s_j = 0).
void quant4_int8_scales(const nq_quant4_weight& w, bool backward, float* scale, float* inv);

// Scalar references (the same operations in plain code).
void quant4_gemm_int8_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y);
void quant4_gemm_backward_int8_ref(const float* dy, int64_t m, const nq_quant4_weight& w, float beta, float* dx);

// Fast paths on the int8 kernel `uk` (ukernel_int8()).
void quant4_gemm_int8(const Ukernel& uk, const float* x, int64_t m, const nq_quant4_weight& w, const float* bias,
                      float* y);
void quant4_gemm_backward_int8(const Ukernel& uk, const float* dy, int64_t m, const nq_quant4_weight& w, float beta,
                               float* dx);

// Driver packer for B from W in the int8 kernel's format (Fmt::U8 quads or Fmt::I16 pairs): forward
// B(k, j) = q8 of W[j][k], backward B(k, j) = q8 of W[k][j]; inv: quant4_int8_scales' inverses.
struct PackBQuant4Int8 {
  const nq_quant4_weight& w;
  const float* inv;
  bool backward;
  Fmt fmt;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const;
};

}  // namespace nq::gemm
