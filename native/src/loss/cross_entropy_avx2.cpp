// AVX2 cross-entropy row passes: the AVX-512 file's three streaming passes on 8-lane vectors (the exp of
// cpu/exp_avx2.h, which differs from AVX-512's only below e^-87.3, ~1e-38), the sum widened to double.
#include <immintrin.h>

#include <cmath>

#include "cpu/exp_avx2.h"
#include "loss/cross_entropy.h"

namespace nq::loss {

namespace {

inline __m256i lanes(int64_t n) {  // the first min(n, 8) lanes set
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n < 8 ? n : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float row_max(const float* row, int64_t v) {
  const __m256 lo = _mm256_set1_ps(-INFINITY);
  __m256 m0 = lo, m1 = lo, m2 = lo, m3 = lo;
  int64_t i = 0;
  for (; i + 32 <= v; i += 32) {  // four chains: vmaxps latency
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(row + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(row + i + 8));
    m2 = _mm256_max_ps(m2, _mm256_loadu_ps(row + i + 16));
    m3 = _mm256_max_ps(m3, _mm256_loadu_ps(row + i + 24));
  }
  for (; i < v; i += 8) {
    const __m256 m = _mm256_castsi256_ps(lanes(v - i));
    m0 = _mm256_max_ps(m0, _mm256_blendv_ps(lo, _mm256_maskload_ps(row + i, lanes(v - i)), m));
  }
  alignas(32) float l[8];
  _mm256_store_ps(l, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
  float mx = l[0];
  for (int k = 1; k < 8; ++k) mx = mx > l[k] ? mx : l[k];
  return mx;
}

// Σ of e's 8 lanes added into two 4-lane double accumulators.
inline void add_pd(__m256d& s0, __m256d& s1, __m256 e) {
  s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
  s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
}

// row = exp(row - max) in place; returns Σ in double.
double exp_sum(float* row, int64_t v, float max) {
  const __m256 mx = _mm256_set1_ps(max);
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 16 <= v; i += 16) {
    const __m256 e0 = cpu::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(row + i), mx));
    const __m256 e1 = cpu::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(row + i + 8), mx));
    _mm256_storeu_ps(row + i, e0);
    _mm256_storeu_ps(row + i + 8, e1);
    add_pd(s0, s1, e0);
    add_pd(s2, s3, e1);
  }
  for (; i < v; i += 8) {
    const __m256i m = lanes(v - i);
    const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(m), cpu::exp_ps(_mm256_sub_ps(_mm256_maskload_ps(row + i, m), mx)));
    _mm256_maskstore_ps(row + i, m, e);
    add_pd(s0, s1, e);
  }
  alignas(32) double d[4];
  _mm256_store_pd(d, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
  return (d[0] + d[1]) + (d[2] + d[3]);
}

void scale_row(float* row, int64_t v, float k) {
  const __m256 kv = _mm256_set1_ps(k);
  int64_t i = 0;
  for (; i + 8 <= v; i += 8) _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), kv));
  for (; i < v; ++i) row[i] *= k;
}

}  // namespace

const RowPasses kRowPassesAvx2{row_max, exp_sum, scale_row};

}  // namespace nq::loss
