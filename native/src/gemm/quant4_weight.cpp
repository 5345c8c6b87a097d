#include "gemm/quant4_weight.h"

#include <immintrin.h>

#include <algorithm>

#include "core/error.h"
#include "quant/quant.h"

namespace nq::gemm {
namespace {

bool pow2_in(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi && (v & (v - 1)) == 0; }

// 8 table lookups of 4-bit indices (0..15) into tab_lo (codes 0..7) / tab_hi (8..15).
inline __m256 lookup16(__m256 tab_lo, __m256 tab_hi, __m256i idx) {
  const __m256 lo = _mm256_permutevar8x32_ps(tab_lo, idx), hi = _mm256_permutevar8x32_ps(tab_hi, idx);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));  // bit 3 selects
}

}  // namespace

nq_status quant4_weight_check(const char* fn, const nq_quant4_weight* w) {
  NQ_CHECK_NOT_NULL(fn, w);
  NQ_CHECK(w->packed != nullptr, NQ_ERR_NULL_POINTER, "%s: w->packed must not be NULL", fn);
  NQ_CHECK(w->n >= 1 && w->k >= 1 && w->n <= (int64_t(1) << 31) && w->k <= (int64_t(1) << 31),
           NQ_ERR_INVALID_ARGUMENT, "%s: w->n and w->k must be in 1..2^31, got %lld x %lld", fn,
           static_cast<long long>(w->n), static_cast<long long>(w->k));
  NQ_CHECK((w->n * w->k) % 2 == 0, NQ_ERR_SHAPE, "%s: w->n * w->k must be even (two codes per byte), got %lld",
           fn, static_cast<long long>(w->n * w->k));
  NQ_CHECK(pow2_in(w->blocksize, 32, 4096), NQ_ERR_INVALID_ARGUMENT,
           "%s: w->blocksize must be a power of two in 32..4096, got %d", fn, w->blocksize);
  NQ_CHECK(w->type == NQ_QUANT4_NF4 || w->type == NQ_QUANT4_FP4, NQ_ERR_INVALID_ARGUMENT,
           "%s: w->type must be NQ_QUANT4_NF4 (0) or NQ_QUANT4_FP4 (1), got %d", fn, w->type);
  NQ_CHECK((w->absmax != nullptr) != (w->absmax_q != nullptr), NQ_ERR_INVALID_ARGUMENT,
           "%s: exactly one of w->absmax (plain) and w->absmax_q (double-quantized) must be set", fn);
  if (w->absmax_q != nullptr) {
    NQ_CHECK(w->nested_absmax != nullptr, NQ_ERR_NULL_POINTER, "%s: w->nested_absmax must not be NULL", fn);
    NQ_CHECK(w->nested_code != nullptr, NQ_ERR_NULL_POINTER, "%s: w->nested_code must not be NULL", fn);
    NQ_CHECK(pow2_in(w->nested_blocksize, 64, 4096), NQ_ERR_INVALID_ARGUMENT,
             "%s: w->nested_blocksize must be a power of two in 64..4096, got %d", fn, w->nested_blocksize);
    NQ_CHECK(w->nested_offset - w->nested_offset == 0.0f, NQ_ERR_NON_FINITE,
             "%s: w->nested_offset must be finite", fn);
  }
  return NQ_OK;
}

const float* quant4_code(const nq_quant4_weight& w) {
  return quant::code4(static_cast<nq_quant4_type>(w.type)).code;
}

void quant4_decode(const nq_quant4_weight& w, int64_t e0, int64_t count, float* out) {
  const float* code = quant4_code(w);
  const uint8_t* packed = w.packed;
  const int64_t bs = w.blocksize, end = e0 + count;
  int64_t e = e0;
  while (e < end) {
    const int64_t b = e / bs, seg_end = std::min(end, (b + 1) * bs);
    alignas(32) float tab[16];
    const float s = quant4_absmax(w, b);
    for (int i = 0; i < 16; ++i) tab[i] = code[i] * s;
    if (e & 1) *out++ = tab[packed[e++ >> 1] & 15];  // odd start: low nibble of a byte
    const __m256 tlo = _mm256_load_ps(tab), thi = _mm256_load_ps(tab + 8);
    for (; e + 16 <= seg_end; e += 16, out += 16) {
      const __m256i bytes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed + (e >> 1))));
      const __m256 ev = lookup16(tlo, thi, _mm256_srli_epi32(bytes, 4));                         // high nibbles
      const __m256 od = lookup16(tlo, thi, _mm256_and_si256(bytes, _mm256_set1_epi32(15)));  // low nibbles
      const __m256 lo = _mm256_unpacklo_ps(ev, od), hi = _mm256_unpackhi_ps(ev, od);
      _mm256_storeu_ps(out, _mm256_permute2f128_ps(lo, hi, 0x20));
      _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    for (; e < seg_end; ++e) {
      const uint8_t byte = packed[e >> 1];
      *out++ = tab[(e & 1) ? (byte & 15) : (byte >> 4)];
    }
  }
}

}  // namespace nq::gemm
