// Internal interface of the 4-bit weight matmuls.
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::gemm {

// Scalar references (element-wise dequantisation, fp32 accumulation in k order; with
// NQ_COMPUTE_BF16 both operands are rounded to bf16 first).
void quant4_gemm_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias,
                     nq_compute_type compute, float* y);
void quant4_gemm_backward_ref(const float* dy, int64_t m, const nq_quant4_weight& w, nq_compute_type compute,
                              float beta, float* dx);

// GEMV for m <= kQuant4GemvMaxM on AVX-512 when w.k % 32 == 0 (every 32-element chunk of
// a row then lies in one absmax block and starts on a byte). Accumulates in fp32 whatever
// the compute type (the path is memory-bound). x_shuffled: m*k floats of scratch.
constexpr int64_t kQuant4GemvMaxM = 4;
void quant4_gemv_avx512(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y,
                        float* x_shuffled);

}  // namespace nq::gemm
