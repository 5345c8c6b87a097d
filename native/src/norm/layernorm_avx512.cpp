// AVX-512 LayerNorm kernels: the reference's operations per element with 16-lane vectors
// (statistics widened to two 8-lane double accumulators); tails masked.
#include <immintrin.h>

#include <cmath>

#include "norm/layernorm.h"

namespace nq::norm {

namespace {

inline __mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }
inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d hi_pd(__m512 v) { return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))); }

void forward_row(const float* x, int64_t c, const float* w, const float* b, float eps, float* y, float* mean,
                 float* rstd) {
  __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;  // four chains: vaddpd latency 4
  int64_t i = 0;
  for (; i + 32 <= c; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    s0 = _mm512_add_pd(s0, lo_pd(v0));
    s1 = _mm512_add_pd(s1, hi_pd(v0));
    s2 = _mm512_add_pd(s2, lo_pd(v1));
    s3 = _mm512_add_pd(s3, hi_pd(v1));
  }
  for (; i < c; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(lanes(c - i), x + i);
    s0 = _mm512_add_pd(s0, lo_pd(v));
    s1 = _mm512_add_pd(s1, hi_pd(v));
  }
  const double mu = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3))) / double(c);
  const __m512d mud = _mm512_set1_pd(mu);
  __m512d q0 = _mm512_setzero_pd(), q1 = q0, q2 = q0, q3 = q0;
  for (i = 0; i + 32 <= c; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    const __m512d d0 = _mm512_sub_pd(lo_pd(v0), mud), d1 = _mm512_sub_pd(hi_pd(v0), mud);
    const __m512d d2 = _mm512_sub_pd(lo_pd(v1), mud), d3 = _mm512_sub_pd(hi_pd(v1), mud);
    q0 = _mm512_fmadd_pd(d0, d0, q0);
    q1 = _mm512_fmadd_pd(d1, d1, q1);
    q2 = _mm512_fmadd_pd(d2, d2, q2);
    q3 = _mm512_fmadd_pd(d3, d3, q3);
  }
  for (; i < c; i += 16) {
    const __mmask16 m = lanes(c - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    // masked-off lanes would add mu²: subtract under the mask (zero there)
    const __m512d d0 = _mm512_maskz_sub_pd(__mmask8(m), lo_pd(v), mud);
    const __m512d d1 = _mm512_maskz_sub_pd(__mmask8(m >> 8), hi_pd(v), mud);
    q0 = _mm512_fmadd_pd(d0, d0, q0);
    q1 = _mm512_fmadd_pd(d1, d1, q1);
  }
  const double var = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(q0, q1), _mm512_add_pd(q2, q3))) / double(c);
  const float s = float(1.0 / std::sqrt(var + eps));
  const float mf = float(mu);
  const __m512 mv = _mm512_set1_ps(mf), sv = _mm512_set1_ps(s);
  for (i = 0; i < c; i += 16) {
    const __mmask16 m = lanes(c - i);
    const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), sv);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(xhat, _mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, b + i)));
  }
  *mean = mf;
  *rstd = s;
}

void backward_row(const float* x, const float* dy, int64_t c, const float* w, float mean, float rstd, float* dx) {
  const __m512 mv = _mm512_set1_ps(mean), sv = _mm512_set1_ps(rstd);
  __m512 sum = _mm512_setzero_ps(), dot = sum;
  for (int64_t i = 0; i < c; i += 16) {  // masked-off lanes load 0: g = 0 adds nothing
    const __mmask16 m = lanes(c - i);
    const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), _mm512_maskz_loadu_ps(m, w + i));
    sum = _mm512_add_ps(sum, g);
    dot = _mm512_fmadd_ps(g, _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), sv), dot);
  }
  const __m512 m1 = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / float(c));
  const __m512 m2 = _mm512_set1_ps(_mm512_reduce_add_ps(dot) / float(c));
  for (int64_t i = 0; i < c; i += 16) {
    const __mmask16 m = lanes(c - i);
    const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv), sv);
    const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), _mm512_maskz_loadu_ps(m, w + i));
    const __m512 t = _mm512_sub_ps(_mm512_sub_ps(g, m1), _mm512_mul_ps(xhat, m2));
    _mm512_mask_storeu_ps(dx + i, m, _mm512_fmadd_ps(t, sv, _mm512_maskz_loadu_ps(m, dx + i)));
  }
}

void backward_params(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean, const float* rstd,
                     int64_t j0, int64_t j1, float* dw, float* db) {
  // Rows outer: x and dy stream contiguously while the dw/db columns (<= a few KB) stay in L1; each
  // column still adds its rows in order.
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 mv = _mm512_set1_ps(mean[r]), sv = _mm512_set1_ps(rstd[r]);
    const float* xr = x + r * c;
    const float* gr = dy + r * c;
    for (int64_t j = j0; j < j1; j += 16) {
      const __mmask16 m = lanes(j1 - j);
      const __m512 g = _mm512_maskz_loadu_ps(m, gr + j);
      if (db) _mm512_mask_storeu_ps(db + j, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, db + j), g));
      if (dw) {
        const __m512 xhat = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + j), mv), sv);
        _mm512_mask_storeu_ps(dw + j, m, _mm512_fmadd_ps(g, xhat, _mm512_maskz_loadu_ps(m, dw + j)));
      }
    }
  }
}

}  // namespace

const LayerNormKernels layernorm_avx512 = {forward_row, backward_row, backward_params};

}  // namespace nq::norm
