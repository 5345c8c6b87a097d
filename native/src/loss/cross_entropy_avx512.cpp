// AVX-512 cross-entropy row: a max pass, then exp(x - max) written in place with its sum widened
// to double (two 8-lane accumulators per 16 floats), then the scale pass. Three streaming passes
// over the row (200 KB for V = 50257, in L2); the masked tail keeps every width on one path.
#include <immintrin.h>

#include <cmath>

#include "cpu/exp_avx512.h"
#include "loss/cross_entropy.h"

namespace nq::loss {

namespace {

inline __mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1); }

float row_max(const float* row, int64_t v) {
  __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 64 <= v; i += 64) {  // four chains: vmaxps latency 4
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(row + i));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(row + i + 16));
    m2 = _mm512_max_ps(m2, _mm512_loadu_ps(row + i + 32));
    m3 = _mm512_max_ps(m3, _mm512_loadu_ps(row + i + 48));
  }
  for (; i < v; i += 16) m0 = _mm512_mask_max_ps(m0, lanes(v - i), m0, _mm512_maskz_loadu_ps(lanes(v - i), row + i));
  return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

// row = exp(row - max) in place; returns Σ in double.
double exp_sum(float* row, int64_t v, float max) {
  const __m512 mx = _mm512_set1_ps(max);
  __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= v; i += 32) {
    const __m512 e0 = cpu::exp_ps(_mm512_sub_ps(_mm512_loadu_ps(row + i), mx));
    const __m512 e1 = cpu::exp_ps(_mm512_sub_ps(_mm512_loadu_ps(row + i + 16), mx));
    _mm512_storeu_ps(row + i, e0);
    _mm512_storeu_ps(row + i + 16, e1);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e0)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e0), 1))));
    s2 = _mm512_add_pd(s2, _mm512_cvtps_pd(_mm512_castps512_ps256(e1)));
    s3 = _mm512_add_pd(s3, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e1), 1))));
  }
  for (; i < v; i += 16) {
    const __mmask16 m = lanes(v - i);
    const __m512 e = _mm512_maskz_mov_ps(m, cpu::exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + i), mx)));
    _mm512_mask_storeu_ps(row + i, m, e);
    s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
}

void scale_row(float* row, int64_t v, float k) {
  const __m512 kv = _mm512_set1_ps(k);
  int64_t i = 0;
  for (; i + 32 <= v; i += 32) {
    _mm512_storeu_ps(row + i, _mm512_mul_ps(_mm512_loadu_ps(row + i), kv));
    _mm512_storeu_ps(row + i + 16, _mm512_mul_ps(_mm512_loadu_ps(row + i + 16), kv));
  }
  for (; i < v; i += 16) {
    const __mmask16 m = lanes(v - i);
    _mm512_mask_storeu_ps(row + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + i), kv));
  }
}

}  // namespace

const RowPasses kRowPassesAvx512{row_max, exp_sum, scale_row};

}  // namespace nq::loss
