// fp32 GEMV for Y = X W^T with M <= 4 (decode-shaped products): streams each W row once
// against the M rows of X (L1-resident), no packing. Four accumulators per (X row, W row)
// keep four FMA chains in flight; the K tail is a masked load. With one X row, four W rows
// go together so each x load feeds four FMAs (x loads otherwise equal W loads, and the
// load ports, not the FMAs, bound a GEMV from L2/L3); every output keeps the same sums in
// the same order either way. Threads split N (gemv.h).
#include <immintrin.h>

#include "gemm/gemm_f32.h"
#include "gemm/gemv.h"

namespace nq::gemm {
namespace {

// Y[i][j] for i < M and W rows j0 <= j < j0 + R (R = 1, or 4 with M = 1).
template <int M, int R>
void gemv_block(int64_t j0, int64_t n, int64_t k, const float* x, const float* w, float beta, const float* bias,
                float* c) {
  __m512 acc[M][R][4];
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < R; ++r) acc[i][r][0] = acc[i][r][1] = acc[i][r][2] = acc[i][r][3] = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 64 <= k; p += 64)
    for (int u = 0; u < 4; ++u)
      for (int i = 0; i < M; ++i) {
        const __m512 xv = _mm512_loadu_ps(x + i * k + p + 16 * u);
        for (int r = 0; r < R; ++r)
          acc[i][r][u] = _mm512_fmadd_ps(_mm512_loadu_ps(w + (j0 + r) * k + p + 16 * u), xv, acc[i][r][u]);
      }
  for (; p < k; p += 16) {
    const __mmask16 mask = k - p >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - p)) - 1);
    for (int i = 0; i < M; ++i) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + i * k + p);
      for (int r = 0; r < R; ++r)
        acc[i][r][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, w + (j0 + r) * k + p), xv, acc[i][r][0]);
    }
  }
  for (int i = 0; i < M; ++i)
    for (int r = 0; r < R; ++r) {
      const __m512* a = acc[i][r];
      const float dot = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
      const int64_t j = j0 + r;
      float* ci = c + i * n + j;
      *ci = (beta == 0.0f ? 0.0f : beta * *ci) + dot + (bias ? bias[j] : 0.0f);
    }
}

template <int M>
void gemv_rows(int64_t j0, int64_t j1, int64_t n, int64_t k, const float* x, const float* w, float beta,
               const float* bias, float* c) {
  int64_t j = j0;
  if constexpr (M == 1)
    for (; j + 4 <= j1; j += 4) gemv_block<1, 4>(j, n, k, x, w, beta, bias, c);
  for (; j < j1; ++j) gemv_block<M, 1>(j, n, k, x, w, beta, bias, c);
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
