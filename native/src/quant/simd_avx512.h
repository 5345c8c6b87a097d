// Small AVX-512 helpers shared by the *_avx512.cpp quantization files (include only there).
#pragma once

// GCC 12 reports the intrinsics' own _mm512_undefined_* placeholders as uninitialised once
// masked intrinsics are inlined (GCC bug 105593); nothing here reads an undefined value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cstdint>

#include "quant/quant.h"

namespace nq::quant {
namespace {

// Lanes [0, left) of a 16-lane vector.
inline __mmask16 lanes16(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}

inline __m512i abs_bits16(__m512 v) {
  return _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff));
}

// Round to nearest even, then clamp to [-128, 127] in float (as sat_round_i8).
inline __m512i sat_round_i8x16(__m512 v) {
  const __m512 r = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-128.0f)), _mm512_set1_ps(127.0f)));
}

// bf16_rne on 16 lanes, narrowed to 16-bit.
inline __m256i bf16_rne16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

// Nearest 8-bit code from the Code8 midpoint tables (#{i : mid[i] < v}) without gathers: a
// 5-step binary search over the 31 group bounds mid[8g + 7] with vpermt2ps, then the 7
// midpoints inside group g. Shared by blockwise 8-bit quantization and the 8-bit optimizers.
struct Search8 {
  __m512 clo, chi, flo[7], fhi[7];

  explicit Search8(const Code8& t) {
    clo = _mm512_load_ps(t.coarse);
    chi = _mm512_load_ps(t.coarse + 16);
    for (int j = 0; j < 7; ++j) {
      flo[j] = _mm512_load_ps(t.fine[j]);
      fhi[j] = _mm512_load_ps(t.fine[j] + 16);
    }
  }

  // v: 16 normalised values -> code indices (0..255) as dwords
  __m512i index(__m512 v) const {
    __m512i g = _mm512_setzero_si512();
    for (int s = 16; s >= 1; s >>= 1) {
      const __m512 p = _mm512_permutex2var_ps(clo, _mm512_add_epi32(g, _mm512_set1_epi32(s - 1)), chi);
      g = _mm512_mask_add_epi32(g, _mm512_cmp_ps_mask(v, p, _CMP_GT_OQ), g, _mm512_set1_epi32(s));
    }
    __m512i idx = _mm512_slli_epi32(g, 3);
    for (int j = 0; j < 7; ++j) {
      const __m512 p = _mm512_permutex2var_ps(flo[j], g, fhi[j]);
      idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(v, p, _CMP_GT_OQ), idx, _mm512_set1_epi32(1));
    }
    return idx;
  }
};

// code[idx] for 16 indices 0..255: eight 32-entry vpermt2ps lookups, then a blend tree on
// index bits 5, 6 and 7.
struct Lookup256 {
  __m512 tab[16];

  explicit Lookup256(const float* code) {
    for (int i = 0; i < 16; ++i) tab[i] = _mm512_loadu_ps(code + 16 * i);
  }

  __m512 operator()(__m512i idx) const {
    __m512 t[8];
    for (int k = 0; k < 8; ++k) t[k] = _mm512_permutex2var_ps(tab[2 * k], idx, tab[2 * k + 1]);
    const __mmask16 b5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
    const __mmask16 b6 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(64));
    const __mmask16 b7 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(128));
    for (int k = 0; k < 4; ++k) t[k] = _mm512_mask_blend_ps(b5, t[2 * k], t[2 * k + 1]);
    for (int k = 0; k < 2; ++k) t[k] = _mm512_mask_blend_ps(b6, t[2 * k], t[2 * k + 1]);
    return _mm512_mask_blend_ps(b7, t[0], t[1]);
  }
};

}  // namespace
}  // namespace nq::quant
