// In-register byte transpose shared by the AVX-512 4-bit B packers (SSE2 unpacks only). The
// anonymous namespace keeps each including ISA file's copy private (no cross-ISA ODR merging).
#pragma once

#include <immintrin.h>

namespace {

// In-register 16x16 byte transpose: r[i] = 16 bytes of row i -> r[p] = byte p of rows 0..15.
inline void transpose16x16_u8(__m128i r[16]) {
  __m128i t[16];
  for (int i = 0; i < 8; ++i) {
    t[i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);      // rows 2i,2i+1: bytes 0..7
    t[i + 8] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);  // bytes 8..15
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; ++i) {
      r[h + i] = _mm_unpacklo_epi16(t[h + 2 * i], t[h + 2 * i + 1]);      // rows 4i..4i+3
      r[h + i + 4] = _mm_unpackhi_epi16(t[h + 2 * i], t[h + 2 * i + 1]);  // (next 4 bytes)
    }
  // r[g + i], g = 0, 4, 8, 12: rows 4i..4i+3, bytes g..g+3 as dwords.
  for (int h = 0; h < 16; h += 4)
    for (int i = 0; i < 2; ++i) {
      t[h + i] = _mm_unpacklo_epi32(r[h + 2 * i], r[h + 2 * i + 1]);
      t[h + i + 2] = _mm_unpackhi_epi32(r[h + 2 * i], r[h + 2 * i + 1]);
    }
  // t[h + q*2 + i]: rows 8i..8i+7, bytes h+2q, h+2q+1 as qwords.
  for (int h = 0; h < 16; h += 2) {
    r[h] = _mm_unpacklo_epi64(t[h], t[h + 1]);
    r[h + 1] = _mm_unpackhi_epi64(t[h], t[h + 1]);
  }
}

}  // namespace
