// AVX-512 blockwise 8-bit kernels. The nearest-code search counts midpoints below v in two
// register-resident stages (no gathers): a 5-step binary search over the 31 group bounds
// mid[8g + 7] with vpermt2ps, then the 7 midpoints inside group g, looked up by g.
#include "quant/quant.h"
#include "quant/simd_avx512.h"

namespace nq::quant {
namespace {

}  // namespace

int64_t blockwise8_quantize_avx512(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                                   float shift, const Code8& t, uint8_t* q, float* absmax) {
  const Search8 search(t);
  const __m512 vshift = _mm512_set1_ps(shift);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const float* xb = x + i0;
    __m512i m = _mm512_setzero_si512();
    for (int64_t i = 0; i < len; i += 16) {
      const __mmask16 k = lanes16(len - i);
      const __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, xb + i), vshift);
      m = _mm512_mask_max_epu32(m, k, m, abs_bits16(v));
    }
    const uint32_t mb = _mm512_reduce_max_epu32(m);
    if (mb >= kNonFiniteBits) return b;
    absmax[b] = from_bits(mb);
    const __m512 inv = _mm512_set1_ps(inv_absmax(absmax[b]));
    uint8_t* qb = q + i0;
    int64_t i = 0;
    for (; i + 16 <= len; i += 16) {
      const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xb + i), vshift), inv);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb + i), _mm512_cvtepi32_epi8(search.index(v)));
    }
    if (i < len) {
      const __mmask16 k = lanes16(len - i);
      const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xb + i), vshift), inv);
      _mm_mask_storeu_epi8(qb + i, k, _mm512_cvtepi32_epi8(search.index(v)));
    }
  }
  return -1;
}

void blockwise8_dequantize_avx512(const uint8_t* q, const float* absmax, int64_t n, int64_t bs,
                                  int64_t b0, int64_t b1, const float* code, float* x) {
  const Lookup256 lookup(code);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const __m512 a = _mm512_set1_ps(absmax[b]);
    for (int64_t i = 0; i < len; i += 16) {
      const __mmask16 k = lanes16(len - i);
      const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, q + i0 + i));
      _mm512_mask_storeu_ps(x + i0 + i, k, _mm512_mul_ps(lookup(idx), a));
    }
  }
}

}  // namespace nq::quant
