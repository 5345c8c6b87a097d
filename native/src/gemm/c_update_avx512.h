// The blocked driver's update of 16 C values by one KC block's sum t, for the packing-free fp32 paths
// (gemv_f32_nn_avx512.cpp, gemm_f32_rank_avx512.cpp): summing K in the same KC blocks and FMA order and
// updating C the same way gives the driver's bits, so a product does not change with the path its M or
// K selects. The first block adds beta*C + bias as prepare_output does (multiply, then add; C is not
// read when beta = 0, and left out when there is no bias either); later blocks add C.
// Included only by *_avx512*.cpp files (anonymous namespace: no cross-ISA ODR merging).
#pragma once

#include <immintrin.h>

namespace {

// c, bias: this vector's 16 columns (bias may be null); mask: the valid ones.
inline __m512 c_update(__m512 t, __mmask16 mask, const float* c, float beta, const float* bias, bool first) {
  if (!first || (beta == 1.0f && bias == nullptr)) return _mm512_add_ps(t, _mm512_maskz_loadu_ps(mask, c));
  const __m512 vb = bias ? _mm512_maskz_loadu_ps(mask, bias) : _mm512_setzero_ps();
  if (beta == 0.0f) return bias ? _mm512_add_ps(t, vb) : t;
  return _mm512_add_ps(t, _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, c)), vb));
}

}  // namespace
