// AVX2 blockwise 4-bit kernels: thresholds and code values as two-ymm 16-entry tables.
#include "quant/quant.h"
#include "quant/simd_avx2.h"

namespace nq::quant {
namespace {

struct Search4 {
  __m256 plo, phi, rlo, rhi;  // pivots and rank->code (as float bit patterns) halves
  bool sign_magnitude;

  explicit Search4(const Code4& t)
      : plo(_mm256_load_ps(t.pivot)),
        phi(_mm256_load_ps(t.pivot + 8)),
        rlo(_mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(t.rank_code)))),
        rhi(_mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(t.rank_code + 8)))),
        sign_magnitude(t.sign_magnitude) {}

  __m256i index(__m256 v) const {  // code4_index on 8 lanes
    const __m256 a = sign_magnitude ? _mm256_castsi256_ps(abs_bits8(v)) : v;
    __m256i c = _mm256_setzero_si256();
    for (int s = 8; s >= 1; s >>= 1) {
      const __m256 p = lookup16(plo, phi, _mm256_add_epi32(c, _mm256_set1_epi32(s - 1)));
      const __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(a, p, _CMP_GT_OQ));
      c = _mm256_add_epi32(c, _mm256_and_si256(gt, _mm256_set1_epi32(s)));
    }
    if (!sign_magnitude) return c;
    c = _mm256_castps_si256(lookup16(rlo, rhi, c));
    const __m256i neg = _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_or_si256(c, _mm256_and_si256(neg, _mm256_set1_epi32(8)));
  }
};

// 16 codes (c0: elements 0..7, c1: 8..15) -> 8 bytes, element 2k in the high nibble of byte k.
inline void store_nibbles(uint8_t* dst, __m256i c0, __m256i c1) {
  const __m256i evens = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m256i p0 = _mm256_or_si256(_mm256_slli_epi64(c0, 4), _mm256_srli_epi64(c0, 32));
  const __m256i p1 = _mm256_or_si256(_mm256_slli_epi64(c1, 4), _mm256_srli_epi64(c1, 32));
  const __m256i both = _mm256_blend_epi32(_mm256_permutevar8x32_epi32(p0, evens),
                                          _mm256_permutevar8x32_epi32(p1, evens), 0xf0);
  store_bytes8(dst, both, false);
}

inline void store8(float* x, __m256 v) { _mm256_storeu_ps(x, v); }
inline void store8(uint16_t* x, __m256 v) { store_bf16x8(x, v); }
inline void store1(float* x, float v) { *x = v; }
inline void store1(uint16_t* x, float v) { *x = bf16_rne(v); }

template <class T>
void dequantize4(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                 const Code4& t, T* x) {
  const __m256 clo = _mm256_load_ps(t.code), chi = _mm256_load_ps(t.code + 8);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const __m256 a = _mm256_set1_ps(absmax[b]);
    int64_t i = 0;
    for (; i + 16 <= len; i += 16) {
      const __m256i d = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed + (i0 + i) / 2)));
      const __m256 vh = lookup16(clo, chi, _mm256_srli_epi32(d, 4));
      const __m256 vl = lookup16(clo, chi, _mm256_and_si256(d, _mm256_set1_epi32(15)));
      const __m256 u0 = _mm256_unpacklo_ps(vh, vl), u1 = _mm256_unpackhi_ps(vh, vl);
      store8(x + i0 + i, _mm256_mul_ps(_mm256_permute2f128_ps(u0, u1, 0x20), a));
      store8(x + i0 + i + 8, _mm256_mul_ps(_mm256_permute2f128_ps(u0, u1, 0x31), a));
    }
    for (; i < len; i += 2) {
      const uint8_t byte = packed[(i0 + i) / 2];
      store1(x + i0 + i, t.code[byte >> 4] * absmax[b]);
      store1(x + i0 + i + 1, t.code[byte & 15] * absmax[b]);
    }
  }
}

}  // namespace

int64_t quant4_quantize_avx2(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1, const Code4& t,
                             uint8_t* packed, float* absmax) {
  const Search4 search(t);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const float* xb = x + i0;
    __m256i m = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) m = _mm256_max_epu32(m, abs_bits8(_mm256_loadu_ps(xb + i)));
    alignas(32) uint32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
    uint32_t mb = 0;
    for (uint32_t l : lanes) mb = l > mb ? l : mb;
    for (; i < len; ++i) mb = abs_bits(xb[i]) > mb ? abs_bits(xb[i]) : mb;
    if (mb >= kNonFiniteBits) return b;
    absmax[b] = from_bits(mb);
    const float inv = inv_absmax(absmax[b]);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 16 <= len; i += 16)
      store_nibbles(packed + (i0 + i) / 2, search.index(_mm256_mul_ps(_mm256_loadu_ps(xb + i), vinv)),
                    search.index(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 8), vinv)));
    for (; i < len; i += 2)
      packed[(i0 + i) / 2] = static_cast<uint8_t>(code4_index(t, xb[i] * inv) << 4 | code4_index(t, xb[i + 1] * inv));
  }
  return -1;
}

void quant4_dequantize_avx2(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs, int64_t b0,
                            int64_t b1, const Code4& t, float* x) {
  dequantize4(packed, absmax, n, bs, b0, b1, t, x);
}

void quant4_dequantize_bf16_avx2(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs, int64_t b0,
                                 int64_t b1, const Code4& t, uint16_t* x) {
  dequantize4(packed, absmax, n, bs, b0, b1, t, x);
}

}  // namespace nq::quant
