// AVX-512 blockwise 8-bit kernels. The nearest-code search is BucketSearch8 (one gather from
// Code8's bucket table) when the table was built, else Search8 (register-resident); 64 codes
// at a time are narrowed with packs (cheaper than vpmovdb) and, for large aligned outputs,
// written with streaming stores.
#include <cfloat>

#include "quant/quant.h"
#include "quant/simd_avx512.h"

namespace nq::quant {
namespace {

// Four vectors of 16 indices (0..255) -> 64 bytes in element order. The packs interleave
// 128-bit lanes; the final dword permute undoes that.
inline __m512i pack_bytes64(__m512i i0, __m512i i1, __m512i i2, __m512i i3) {
  const __m512i b = _mm512_packus_epi16(_mm512_packus_epi32(i0, i1), _mm512_packus_epi32(i2, i3));
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), b);
}

// kShift: subtract `shift` first (double quantization); x - 0.0f == x, so skipping it is exact.
template <bool kShift, class Search>
int64_t quantize(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1, float shift, const Code8& t,
                 const Search& search, uint8_t* q, float* absmax) {
  const __m512 vshift = _mm512_set1_ps(shift);
  const bool stream = streams(q, n);
  auto load = [&](const float* p, __mmask16 k) {  // lanes outside k are 0 (they join the absmax)
    const __m512 v = _mm512_maskz_loadu_ps(k, p);
    return kShift ? _mm512_maskz_sub_ps(k, v, vshift) : v;
  };
  const int64_t bad = quantize_blocks(x, n, bs, b0, b1, absmax, load, [&](int64_t i0, int64_t len, __m512 inv) {
    const float* xb = x + i0;
    uint8_t* qb = q + i0;
    if (const float s = _mm512_cvtss_f32(inv); !(s <= FLT_MAX)) {
      // 1/absmax overflowed (denormal absmax): x * inf is +-inf or NaN, and BucketSearch8
      // orders NaN unlike the reference's compares, so such blocks take the reference.
      for (int64_t i = 0; i < len; ++i) qb[i] = static_cast<uint8_t>(code8_index(t, (xb[i] - shift) * s));
      return;
    }
    auto code = [&](int64_t i, __mmask16 k) { return search.index(_mm512_mul_ps(load(xb + i, k), inv)); };
    int64_t i = 0;
    for (; i + 64 <= len; i += 64)  // bs is a multiple of 64: only a partial last block has a tail
      store64(qb + i, pack_bytes64(code(i, 0xffff), code(i + 16, 0xffff), code(i + 32, 0xffff), code(i + 48, 0xffff)),
              stream);
    for (; i < len; i += 16) {
      const __mmask16 k = lanes16(len - i);
      _mm_mask_storeu_epi8(qb + i, k, _mm512_cvtepi32_epi8(code(i, k)));
    }
  });
  if (stream) _mm_sfence();
  return bad;
}

}  // namespace

int64_t blockwise8_quantize_avx512(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                                   float shift, const Code8& t, uint8_t* q, float* absmax) {
  auto run = [&](const auto& search) {
    return shift == 0.0f ? quantize<false>(x, n, bs, b0, b1, shift, t, search, q, absmax)
                         : quantize<true>(x, n, bs, b0, b1, shift, t, search, q, absmax);
  };
  return t.bucket_shift >= 0 ? run(BucketSearch8(t)) : run(Search8(t));
}

void blockwise8_dequantize_avx512(const uint8_t* q, const float* absmax, int64_t n, int64_t bs,
                                  int64_t b0, int64_t b1, const float* code, float* x) {
  const Lookup256 lookup(code);
  const bool stream = streams(x, n * 4);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const __m512 a = _mm512_set1_ps(absmax[b]);
    for (int64_t i = 0; i < len; i += 16) {
      const __mmask16 k = lanes16(len - i);
      const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, q + i0 + i));
      const __m512 v = _mm512_mul_ps(lookup(idx), a);
      if (k == 0xffff)
        store64(x + i0 + i, _mm512_castps_si512(v), stream);
      else
        _mm512_mask_storeu_ps(x + i0 + i, k, v);
    }
  }
  if (stream) _mm_sfence();
}

}  // namespace nq::quant
