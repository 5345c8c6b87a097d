// AVX-512 blockwise 4-bit kernels: the 15 thresholds and the 16 code values each fit one zmm,
// so search (binary search) and lookup are register permutes without gathers.
#include "quant/quant.h"
#include "quant/simd_avx512.h"

namespace nq::quant {
namespace {

// code4_index on 16 lanes. kSignMagnitude (FP4) searches |v| over 7 thresholds in 3 steps,
// NF4 searches v over 15 in 4. The first two steps compare against broadcasts (1 or 2
// candidates); later ones look pivot[c + s - 1] up by c in a table pre-shifted by s - 1.
template <bool kSignMagnitude>
struct Search4 {
  static constexpr int kTop = kSignMagnitude ? 4 : 8;  // the first step's stride
  __m512 first, second_lo, second_hi, shifted[2];      // shifted[0]: s = 2 (NF4 only); [1]: s = 1
  __m512i rank_code;

  explicit Search4(const Code4& t)
      : first(_mm512_set1_ps(t.pivot[kTop - 1])),
        second_lo(_mm512_set1_ps(t.pivot[kTop / 2 - 1])),
        second_hi(_mm512_set1_ps(t.pivot[kTop + kTop / 2 - 1])),
        shifted{_mm512_maskz_loadu_ps(0x7fff, t.pivot + 1), _mm512_load_ps(t.pivot)},
        rank_code(_mm512_load_si512(t.rank_code)) {}

  __m512i index(__m512 v) const {
    const __m512 a = kSignMagnitude ? _mm512_abs_ps(v) : v;
    const __mmask16 k1 = _mm512_cmp_ps_mask(a, first, _CMP_GT_OQ);
    __m512i c = _mm512_maskz_mov_epi32(k1, _mm512_set1_epi32(kTop));
    const __mmask16 k2 = _mm512_cmp_ps_mask(a, _mm512_mask_blend_ps(k1, second_lo, second_hi), _CMP_GT_OQ);
    c = _mm512_mask_add_epi32(c, k2, c, _mm512_set1_epi32(kTop / 2));
    for (int s = kTop / 4, h = kSignMagnitude; s >= 1; s >>= 1, ++h)
      c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_permutexvar_ps(c, shifted[h]), _CMP_GT_OQ), c,
                                _mm512_set1_epi32(s));
    if (!kSignMagnitude) return c;  // NF4's rank is its code
    c = _mm512_permutexvar_epi32(c, rank_code);
    return _mm512_mask_or_epi32(c, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), c, _mm512_set1_epi32(8));
  }
};

// Two vectors of 16 codes -> 16 bytes, element 2k in the high nibble of byte k: vpmaddwd
// joins each pair (hi * 16 + lo) after a lane-interleaving pack that the dword permute undoes.
inline __m128i pack_nibbles(__m512i c0, __m512i c1) {
  const __m512i pairs = _mm512_madd_epi16(_mm512_packus_epi32(c0, c1), _mm512_set1_epi32(0x00010010));
  return _mm512_cvtepi32_epi8(
      _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15), pairs));
}

template <bool kSignMagnitude>
int64_t quantize(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1, const Code4& t, uint8_t* packed,
                 float* absmax) {
  const Search4<kSignMagnitude> search(t);
  const bool stream = streams(packed, n / 2);
  auto load = [](const float* p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); };
  const int64_t bad = quantize_blocks(x, n, bs, b0, b1, absmax, load, [&](int64_t i0, int64_t len, __m512 inv) {
    const float* xb = x + i0;
    auto code = [&](int64_t i, __mmask16 k) { return search.index(_mm512_mul_ps(load(xb + i, k), inv)); };
    uint8_t* pb = packed + i0 / 2;
    int64_t i = 0;
    for (; i + 32 <= len; i += 32) {
      const __m128i bytes = pack_nibbles(code(i, 0xffff), code(i + 16, 0xffff));
      if (stream)
        _mm_stream_si128(reinterpret_cast<__m128i*>(pb + i / 2), bytes);
      else
        _mm_storeu_si128(reinterpret_cast<__m128i*>(pb + i / 2), bytes);
    }
    if (i < len) {  // partial last block: an even number of elements < 32
      const int64_t left = len - i;
      _mm_mask_storeu_epi8(pb + i / 2, lanes16(left / 2),
                           pack_nibbles(code(i, lanes16(left)), code(i + 16, lanes16(left > 16 ? left - 16 : 0))));
    }
  });
  if (stream) _mm_sfence();
  return bad;
}

// Per block, the 16 possible outputs are computed once (code[i] * absmax, the reference's very
// product); each element is then one permute. Fp32 keeps them as floats; the 32 elements of 16
// packed bytes come out as two vectors re-interleaved by vpermt2ps.
struct Fp32Out {
  __m512 tab;
  explicit Fp32Out(__m512 values) : tab(values) {}
  void put(float* x, __m512i d, int64_t left, bool stream) const {
    const __m512 vh = _mm512_permutexvar_ps(_mm512_srli_epi32(d, 4), tab);  // permutes read index bits 0-3
    const __m512 vl = _mm512_permutexvar_ps(d, tab);
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 lo = _mm512_permutex2var_ps(vh, first, vl), hi = _mm512_permutex2var_ps(vh, second, vl);
    if (left >= 32) {
      store64(x, _mm512_castps_si512(lo), stream);
      store64(x + 16, _mm512_castps_si512(hi), stream);
    } else {
      _mm512_mask_storeu_ps(x, lanes16(left), lo);
      if (left > 16) _mm512_mask_storeu_ps(x + 16, lanes16(left - 16), hi);
    }
  }
};

// bf16 keeps the rounded values in the low (first element of a pair) and high half of dwords,
// so one OR yields 32 outputs in order.
struct Bf16Out {
  __m512i lo, hi;
  explicit Bf16Out(__m512 values)
      : lo(_mm512_cvtepu16_epi32(bf16_rne16(values))), hi(_mm512_slli_epi32(lo, 16)) {}
  void put(uint16_t* x, __m512i d, int64_t left, bool stream) const {
    const __m512i v = _mm512_or_si512(_mm512_permutexvar_epi32(_mm512_srli_epi32(d, 4), lo),
                                      _mm512_permutexvar_epi32(d, hi));
    if (left >= 32)
      store64(x, v, stream);
    else
      _mm512_mask_storeu_epi16(x, static_cast<__mmask32>((uint64_t(1) << left) - 1), v);
  }
};

template <class Out, class T>
void dequantize4(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                 const Code4& t, T* x) {
  const __m512 code = _mm512_load_ps(t.code);
  const bool stream = streams(x, n * int64_t(sizeof(T)));
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const Out out(_mm512_mul_ps(code, _mm512_set1_ps(absmax[b])));
    for (int64_t i = 0; i < len; i += 32) {
      const int64_t left = len - i;  // even, >= 2
      const __m128i bytes = left >= 32 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + (i0 + i) / 2))
                                       : _mm_maskz_loadu_epi8(lanes16(left / 2), packed + (i0 + i) / 2);
      out.put(x + i0 + i, _mm512_cvtepu8_epi32(bytes), left, stream);
    }
  }
  if (stream) _mm_sfence();
}

}  // namespace

int64_t quant4_quantize_avx512(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                               const Code4& t, uint8_t* packed, float* absmax) {
  return t.sign_magnitude ? quantize<true>(x, n, bs, b0, b1, t, packed, absmax)
                          : quantize<false>(x, n, bs, b0, b1, t, packed, absmax);
}

void quant4_dequantize_avx512(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs, int64_t b0,
                              int64_t b1, const Code4& t, float* x) {
  dequantize4<Fp32Out>(packed, absmax, n, bs, b0, b1, t, x);
}

void quant4_dequantize_bf16_avx512(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,
                                   int64_t b0, int64_t b1, const Code4& t, uint16_t* x) {
  dequantize4<Bf16Out>(packed, absmax, n, bs, b0, b1, t, x);
}

}  // namespace nq::quant
