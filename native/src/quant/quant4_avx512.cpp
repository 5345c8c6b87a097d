// AVX-512 blockwise 4-bit kernels: the 15 thresholds and the 16 code values each fit one zmm,
// so search (4-step binary search) and lookup are vpermps without gathers.
#include "quant/quant.h"
#include "quant/simd_avx512.h"

namespace nq::quant {
namespace {

struct Search4 {
  __m512 pivot;
  __m512i rank_code;
  bool sign_magnitude;

  explicit Search4(const Code4& t)
      : pivot(_mm512_load_ps(t.pivot)), rank_code(_mm512_load_si512(t.rank_code)), sign_magnitude(t.sign_magnitude) {}

  // v: 16 normalised values -> 4-bit codes as dwords (code4_index)
  __m512i index(__m512 v) const {
    const __m512 a = sign_magnitude ? _mm512_abs_ps(v) : v;
    __m512i c = _mm512_setzero_si512();
    for (int s = 8; s >= 1; s >>= 1) {
      const __m512 p = _mm512_permutexvar_ps(_mm512_add_epi32(c, _mm512_set1_epi32(s - 1)), pivot);
      c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, p, _CMP_GT_OQ), c, _mm512_set1_epi32(s));
    }
    if (!sign_magnitude) return c;
    c = _mm512_permutexvar_epi32(c, rank_code);
    const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_or_epi32(c, neg, c, _mm512_set1_epi32(8));
  }
};

// Two vectors of 16 codes -> 16 bytes, element 2k in the high nibble of byte k.
inline __m128i pack_nibbles(__m512i c0, __m512i c1) {
  const __m512i p0 = _mm512_or_si512(_mm512_slli_epi64(c0, 4), _mm512_srli_epi64(c0, 32));
  const __m512i p1 = _mm512_or_si512(_mm512_slli_epi64(c1, 4), _mm512_srli_epi64(c1, 32));
  return _mm_unpacklo_epi64(_mm512_cvtepi64_epi8(p0), _mm512_cvtepi64_epi8(p1));
}

// 16 packed bytes -> the 32 code values in element order (high nibble first).
inline void unpack_values(__m128i bytes, __m512 code, __m512* lo, __m512* hi) {
  const __m512i d = _mm512_cvtepu8_epi32(bytes);
  const __m512 vh = _mm512_permutexvar_ps(_mm512_srli_epi32(d, 4), code);
  const __m512 vl = _mm512_permutexvar_ps(_mm512_and_si512(d, _mm512_set1_epi32(15)), code);
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  *lo = _mm512_permutex2var_ps(vh, first, vl);
  *hi = _mm512_permutex2var_ps(vh, second, vl);
}

inline void store16(float* x, __mmask16 k, __m512 v) { _mm512_mask_storeu_ps(x, k, v); }
inline void store16(uint16_t* x, __mmask16 k, __m512 v) { _mm256_mask_storeu_epi16(x, k, bf16_rne16(v)); }

// Shared body of the fp32 and bf16 dequantizers: T is the output element type.
template <class T>
void dequantize4(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                 const Code4& t, T* x) {
  const __m512 code = _mm512_load_ps(t.code);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const __m512 a = _mm512_set1_ps(absmax[b]);
    for (int64_t i = 0; i < len; i += 32) {
      const int64_t left = len - i;  // even, >= 2
      const __m128i bytes = left >= 32 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + (i0 + i) / 2))
                                       : _mm_maskz_loadu_epi8(lanes16(left / 2), packed + (i0 + i) / 2);
      __m512 lo, hi;
      unpack_values(bytes, code, &lo, &hi);
      store16(x + i0 + i, lanes16(left), _mm512_mul_ps(lo, a));
      if (left > 16) store16(x + i0 + i + 16, lanes16(left - 16), _mm512_mul_ps(hi, a));
    }
  }
}

}  // namespace

int64_t quant4_quantize_avx512(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                               const Code4& t, uint8_t* packed, float* absmax) {
  const Search4 search(t);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const float* xb = x + i0;
    __m512i m = _mm512_setzero_si512();
    for (int64_t i = 0; i < len; i += 16)
      m = _mm512_max_epu32(m, abs_bits16(_mm512_maskz_loadu_ps(lanes16(len - i), xb + i)));
    const uint32_t mb = _mm512_reduce_max_epu32(m);
    if (mb >= kNonFiniteBits) return b;
    absmax[b] = from_bits(mb);
    const __m512 inv = _mm512_set1_ps(inv_absmax(absmax[b]));
    uint8_t* pb = packed + i0 / 2;
    int64_t i = 0;
    for (; i + 32 <= len; i += 32) {
      const __m512i c0 = search.index(_mm512_mul_ps(_mm512_loadu_ps(xb + i), inv));
      const __m512i c1 = search.index(_mm512_mul_ps(_mm512_loadu_ps(xb + i + 16), inv));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(pb + i / 2), pack_nibbles(c0, c1));
    }
    if (i < len) {  // partial last block: an even number of elements < 32
      const int64_t left = len - i;
      const __m512i c0 = search.index(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes16(left), xb + i), inv));
      const __m512i c1 =
          search.index(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes16(left > 16 ? left - 16 : 0), xb + i + 16), inv));
      _mm_mask_storeu_epi8(pb + i / 2, lanes16(left / 2), pack_nibbles(c0, c1));
    }
  }
  return -1;
}

void quant4_dequantize_avx512(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs, int64_t b0,
                              int64_t b1, const Code4& t, float* x) {
  dequantize4(packed, absmax, n, bs, b0, b1, t, x);
}

void quant4_dequantize_bf16_avx512(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,
                                   int64_t b0, int64_t b1, const Code4& t, uint16_t* x) {
  dequantize4(packed, absmax, n, bs, b0, b1, t, x);
}

}  // namespace nq::quant
