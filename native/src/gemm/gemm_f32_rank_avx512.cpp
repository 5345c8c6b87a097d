// fp32 rank-k update for k <= kRankMaxK with B row-major: C (m,n) = beta*C + op(A) (m,k) B (k,n) + bias
// (the weight gradient dW += dY^T X of a one-token batch). Only C's traffic matters: the blocked
// driver walks it in 8 x 48 tiles; here each C row streams once, front to back, with B's k rows
// (<= 4 n floats) in L1. Threads split C's rows. k is within one KC block: the FMA chain and
// c_update give the blocked path's bits.
#include <immintrin.h>

#include "gemm/c_update_avx512.h"
#include "gemm/gemm_f32.h"
#include "gemm/gemv.h"

namespace nq::gemm {
namespace {

template <int K>
void rows(int64_t i0, int64_t i1, int64_t n, const float* a, int64_t a_rs, int64_t a_ks, const float* b, float beta,
          const float* bias, float* c) {
  for (int64_t i = i0; i < i1; ++i) {
    __m512 ai[K];  // fully unrolled loops keep it in registers
#pragma GCC unroll 4
    for (int p = 0; p < K; ++p) ai[p] = _mm512_set1_ps(a[i * a_rs + p * a_ks]);
    float* ci = c + i * n;
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 mask = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
      __m512 t = _mm512_setzero_ps();
#pragma GCC unroll 4
      for (int p = 0; p < K; ++p) t = _mm512_fmadd_ps(ai[p], _mm512_maskz_loadu_ps(mask, b + p * n + j), t);
      _mm512_mask_storeu_ps(ci + j, mask, c_update(t, mask, ci + j, beta, bias ? bias + j : nullptr, true));
    }
  }
}

}  // namespace

void gemm_f32_rank_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ks,
                          const float* b, float beta, const float* bias, float* c) {
  // Work as for the GEMVs: bytes of the large operand (C) times the small dimension. At 768 x 768, k = 1
  // one thread beat two (wall, passive wake) and OpenBLAS.
  for_row_ranges(m, m * n * 4 * k, [&](int64_t i0, int64_t i1) {
    switch (k) {
      case 1: rows<1>(i0, i1, n, a, a_rs, a_ks, b, beta, bias, c); break;
      case 2: rows<2>(i0, i1, n, a, a_rs, a_ks, b, beta, bias, c); break;
      case 3: rows<3>(i0, i1, n, a, a_rs, a_ks, b, beta, bias, c); break;
      default: rows<4>(i0, i1, n, a, a_rs, a_ks, b, beta, bias, c); break;
    }
  });
}

}  // namespace nq::gemm
