// Internal interface of the 4-bit weight matmuls.
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::gemm {

// Scalar references (element-wise dequantisation, fp32 accumulation in k order; with
// NQ_COMPUTE_BF16 both operands are rounded to bf16 first).
void quant4_gemm_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias,
                     nq_compute_type compute, float* y);
// The same over output columns [row0, row1) only (rows of W); y is the whole (m, w.n) output.
void quant4_gemm_rows_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias,
                          nq_compute_type compute, int64_t row0, int64_t row1, float* y);
void quant4_gemm_backward_ref(const float* dy, int64_t m, const nq_quant4_weight& w, nq_compute_type compute,
                              float beta, float* dx);

// GEMV for m <= kQuant4GemvMaxM on AVX-512 when w.k % 32 == 0 (every 32-element piece of
// a row then lies in one absmax block and starts on a byte). Accumulates in fp32 whatever
// the compute type. Uses arena slot kSlotStats0 for the reordered x.
constexpr int64_t kQuant4GemvMaxM = 4;
void quant4_gemv_avx512(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y);
// Rows [row0, row1) of the same product on the calling thread (row0 % 4 == 0, row1 % 4 == 0 or
// row1 == w.n; y is the whole (m, w.n) output); quant4_gemm_rows_ref is its reference.
void quant4_gemv_rows_avx512(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, int64_t row0,
                             int64_t row1, float* y);

// Checks shared by the forward entry points (nq_quant4_gemm, nq_quant4_gemv_rows): the weight,
// x (m, w.k), y (m, w.n), bias (w.n) and no output overlapping an input.
nq_status quant4_forward_check(const char* fn, const float* x, int64_t m, const nq_quant4_weight* w,
                               const float* bias, const float* y);

// AVX-512 B packers into fp32 micro-panels ([k][nr] per panel of panel_elems floats, nr % 16 == 0).
// Forward, B(k, j) = W[n0 + j][k0 + k], needs w.k, k0 and kc multiples of 32 and packs the
// first nc / 16 * 16 columns (returned; the caller packs the rest). Backward, B(k, j) =
// W[k0 + k][n0 + j], needs w.k, n0 and nc multiples of 16.
int64_t pack_b_quant4_fwd_avx512(const nq_quant4_weight& w, float* out, int nr, int64_t panel_elems, int64_t k0,
                                 int64_t kc, int64_t n0, int64_t nc);
void pack_b_quant4_bwd_avx512(const nq_quant4_weight& w, float* out, int nr, int64_t panel_elems, int64_t k0,
                              int64_t kc, int64_t n0, int64_t nc);

}  // namespace nq::gemm
