// AVX-512 int8 primitives (absmax reductions, scaling, zero-point); tails use lane masks.
#include "quant/quant.h"
#include "quant/simd_avx512.h"

namespace nq::quant {

uint32_t absmax_bits_avx512(const float* x, int64_t n) {
  __m512i m = _mm512_setzero_si512();
  for (int64_t i = 0; i < n; i += 16)
    m = _mm512_max_epu32(m, abs_bits16(_mm512_maskz_loadu_ps(lanes16(n - i), x + i)));
  return _mm512_reduce_max_epu32(m);
}

void colmax_bits_avx512(const float* x, int64_t n, uint32_t* acc) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512i a = _mm512_maskz_loadu_epi32(k, acc + i);
    _mm512_mask_storeu_epi32(acc + i, k, _mm512_max_epu32(a, abs_bits16(_mm512_maskz_loadu_ps(k, x + i))));
  }
}

void minmax_avx512(const float* x, int64_t n, float* lo, float* hi) {
  __m512 l = _mm512_set1_ps(*lo), h = _mm512_set1_ps(*hi);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    l = _mm512_mask_min_ps(l, k, v, l);
    h = _mm512_mask_max_ps(h, k, v, h);
  }
  *lo = _mm512_reduce_min_ps(l);  // only the sign of a zero may differ from the reference,
  *hi = _mm512_reduce_max_ps(h);  // and the zero-point formulas do not see it
}

void int8_scale_avx512(const float* x, int64_t n, float s, const float* sv, int8_t* q) {
  const __m512 vs = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 scale = sv ? _mm512_maskz_loadu_ps(k, sv + i) : vs;
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), scale);
    _mm_mask_storeu_epi8(q + i, k, _mm512_cvtepi32_epi8(sat_round_i8x16(v)));
  }
}

void int8_unscale_avx512(const int8_t* q, int64_t n, float a, const float* av, float b, float* x) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, q + i)));
    const __m512 scale = av ? _mm512_maskz_loadu_ps(k, av + i) : va;
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_mul_ps(qf, scale), vb));
  }
}

void zp_quantize_avx512(const float* x, int64_t n, float scale, float zp, int8_t* q) {
  const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps(zp);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    // lanes beyond n divide 0 by scale (> 0): harmless, and never stored
    const __m512 r = _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), vs),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_mask_storeu_epi8(q + i, k, _mm512_cvtepi32_epi8(sat_round_i8x16(_mm512_add_ps(r, vz))));
  }
}

void zp_dequantize_avx512(const int8_t* q, int64_t n, float scale, float zp, float* x) {
  const __m512 vs = _mm512_set1_ps(scale), vz = _mm512_set1_ps(zp);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, q + i)));
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_sub_ps(qf, vz), vs));
  }
}

}  // namespace nq::quant
