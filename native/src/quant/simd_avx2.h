// Small AVX2 helpers shared by the *_avx2.cpp quantization files (include only there).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace nq::quant {
namespace {

inline __m256i abs_bits8(__m256 v) {
  return _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff));
}

// table[idx] for idx in 0..15, the 16-entry table held as two 8-lane halves.
inline __m256 lookup16(__m256 lo, __m256 hi, __m256i idx) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

// 8 dwords in 0..255 (or -128..127 with is_signed) -> 8 bytes at dst.
inline void store_bytes8(void* dst, __m256i v, bool is_signed) {
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  const __m128i w = _mm_packs_epi32(lo, hi);
  _mm_storel_epi64(static_cast<__m128i*>(dst), is_signed ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w));
}

// Round to nearest even, then clamp to [-128, 127] in float (as sat_round_i8).
inline __m256i sat_round_i8x8(__m256 v) {
  const __m256 r = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f)));
}

// bf16_rne on 8 lanes, stored as 8 uint16.
inline void store_bf16x8(uint16_t* dst, __m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst),
                   _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1)));
}

}  // namespace
}  // namespace nq::quant
