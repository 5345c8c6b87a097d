// AVX2 int8 primitives (absmax reductions, scaling, zero-point); scalar tails use the shared
// element helpers so every lane matches the reference.
#include <algorithm>

#include "quant/quant.h"
#include "quant/simd_avx2.h"

namespace nq::quant {

uint32_t absmax_bits_avx2(const float* x, int64_t n) {
  __m256i m = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_epu32(m, abs_bits8(_mm256_loadu_ps(x + i)));
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
  uint32_t r = 0;
  for (uint32_t l : lanes) r = std::max(r, l);
  for (; i < n; ++i) r = std::max(r, abs_bits(x[i]));
  return r;
}

void colmax_bits_avx2(const float* x, int64_t n, uint32_t* acc) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i* a = reinterpret_cast<__m256i*>(acc + i);
    _mm256_storeu_si256(a, _mm256_max_epu32(_mm256_loadu_si256(a), abs_bits8(_mm256_loadu_ps(x + i))));
  }
  for (; i < n; ++i) acc[i] = std::max(acc[i], abs_bits(x[i]));
}

void minmax_avx2(const float* x, int64_t n, float* lo, float* hi) {
  __m256 l = _mm256_set1_ps(*lo), h = _mm256_set1_ps(*hi);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    l = _mm256_min_ps(v, l);
    h = _mm256_max_ps(v, h);
  }
  alignas(32) float ls[8], hs[8];
  _mm256_store_ps(ls, l);
  _mm256_store_ps(hs, h);
  float rl = *lo, rh = *hi;
  for (int k = 0; k < 8; ++k) {
    rl = ls[k] < rl ? ls[k] : rl;
    rh = hs[k] > rh ? hs[k] : rh;
  }
  for (; i < n; ++i) {
    rl = x[i] < rl ? x[i] : rl;
    rh = x[i] > rh ? x[i] : rh;
  }
  *lo = rl;
  *hi = rh;
}

void int8_scale_avx2(const float* x, int64_t n, float s, const float* sv, int8_t* q) {
  const __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 scale = sv ? _mm256_loadu_ps(sv + i) : vs;
    store_bytes8(q + i, sat_round_i8x8(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale)), true);
  }
  for (; i < n; ++i) q[i] = sat_round_i8(x[i] * (sv ? sv[i] : s));
}

void int8_unscale_avx2(const int8_t* q, int64_t n, float a, const float* av, float b, float* x) {
  const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 qf =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i))));
    const __m256 scale = av ? _mm256_loadu_ps(av + i) : va;
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(qf, scale), vb));
  }
  for (; i < n; ++i) x[i] = (static_cast<float>(q[i]) * (av ? av[i] : a)) * b;
}

void zp_quantize_avx2(const float* x, int64_t n, float scale, float zp, int8_t* q) {
  const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(zp);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 r = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    store_bytes8(q + i, sat_round_i8x8(_mm256_add_ps(r, vz)), true);
  }
  for (; i < n; ++i) q[i] = zp_quant_elem(x[i], scale, zp);
}

void zp_dequantize_avx2(const int8_t* q, int64_t n, float scale, float zp, float* x) {
  const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(zp);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 qf =
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i))));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_sub_ps(qf, vz), vs));
  }
  for (; i < n; ++i) x[i] = (static_cast<float>(q[i]) - zp) * scale;
}

}  // namespace nq::quant
