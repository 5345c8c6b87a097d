// fp32 GEMV for Y = X W^T with M <= 4 (decode-shaped products): streams each W row once
// against the M rows of X (L1-resident), no packing. Four accumulators per X row keep four
// FMA chains in flight; the K tail is a masked load. Threads split N (gemv.h).
#include <immintrin.h>

#include "gemm/gemm_f32.h"
#include "gemm/gemv.h"

namespace nq::gemm {
namespace {

template <int M>
void gemv_rows(int64_t j0, int64_t j1, int64_t n, int64_t k, const float* x, const float* w, float beta,
               const float* bias, float* c) {
  for (int64_t j = j0; j < j1; ++j) {
    const float* wr = w + j * k;
    __m512 acc[M][4];
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + 64 <= k; p += 64)
      for (int u = 0; u < 4; ++u) {
        const __m512 wv = _mm512_loadu_ps(wr + p + 16 * u);
        for (int i = 0; i < M; ++i) acc[i][u] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + i * k + p + 16 * u), acc[i][u]);
      }
    for (; p < k; p += 16) {
      const __mmask16 mask = k - p >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - p)) - 1);
      const __m512 wv = _mm512_maskz_loadu_ps(mask, wr + p);
      for (int i = 0; i < M; ++i) acc[i][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mask, x + i * k + p), acc[i][0]);
    }
    for (int i = 0; i < M; ++i) {
      const float dot = _mm512_reduce_add_ps(
          _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]), _mm512_add_ps(acc[i][2], acc[i][3])));
      float* ci = c + i * n + j;
      *ci = (beta == 0.0f ? 0.0f : beta * *ci) + dot + (bias ? bias[j] : 0.0f);
    }
  }
}

}  // namespace

void gemv_f32_nt_avx512(int64_t m, int64_t n, int64_t k, const float* x, const float* w, float beta,
                        const float* bias, float* c) {
  for_row_ranges(n, n * k * 4 * m, [&](int64_t j0, int64_t j1) {
    switch (m) {
      case 1: gemv_rows<1>(j0, j1, n, k, x, w, beta, bias, c); break;
      case 2: gemv_rows<2>(j0, j1, n, k, x, w, beta, bias, c); break;
      case 3: gemv_rows<3>(j0, j1, n, k, x, w, beta, bias, c); break;
      default: gemv_rows<4>(j0, j1, n, k, x, w, beta, bias, c); break;
    }
  });
}

}  // namespace nq::gemm
