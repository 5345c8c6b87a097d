// AVX2 blockwise 8-bit kernels: a 3-step search over the 7 bounds mid[32k + 31] in one ymm,
// then 5 gathered steps inside the group of 32 (the counting rule of code8_index).
#include "quant/quant.h"
#include "quant/simd_avx2.h"

namespace nq::quant {
namespace {

inline __m256i add_if_gt(__m256i c, __m256 v, __m256 p, int s) {
  const __m256i gt = _mm256_castps_si256(_mm256_cmp_ps(v, p, _CMP_GT_OQ));
  return _mm256_add_epi32(c, _mm256_and_si256(gt, _mm256_set1_epi32(s)));
}

inline __m256i index8(const Code8& t, __m256 coarse, __m256 v) {
  __m256i c = _mm256_setzero_si256();
  for (int s = 4; s >= 1; s >>= 1)
    c = add_if_gt(c, v, _mm256_permutevar8x32_ps(coarse, _mm256_add_epi32(c, _mm256_set1_epi32(s - 1))), s);
  c = _mm256_slli_epi32(c, 5);
  for (int s = 16; s >= 1; s >>= 1)
    c = add_if_gt(c, v, _mm256_i32gather_ps(t.mid, _mm256_add_epi32(c, _mm256_set1_epi32(s - 1)), 4), s);
  return c;
}

}  // namespace

int64_t blockwise8_quantize_avx2(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                                 float shift, const Code8& t, uint8_t* q, float* absmax) {
  const __m256 coarse = _mm256_load_ps(t.coarse8), vshift = _mm256_set1_ps(shift);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const float* xb = x + i0;
    __m256i m = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) m = _mm256_max_epu32(m, abs_bits8(_mm256_sub_ps(_mm256_loadu_ps(xb + i), vshift)));
    alignas(32) uint32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
    uint32_t mb = 0;
    for (uint32_t l : lanes) mb = l > mb ? l : mb;
    for (; i < len; ++i) mb = abs_bits(xb[i] - shift) > mb ? abs_bits(xb[i] - shift) : mb;
    if (mb >= kNonFiniteBits) return b;
    absmax[b] = from_bits(mb);
    const float inv = inv_absmax(absmax[b]);
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= len; i += 8)
      store_bytes8(q + i0 + i, index8(t, coarse, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xb + i), vshift), vinv)),
                   false);
    for (; i < len; ++i) q[i0 + i] = static_cast<uint8_t>(code8_index(t, (xb[i] - shift) * inv));
  }
  return -1;
}

void blockwise8_dequantize_avx2(const uint8_t* q, const float* absmax, int64_t n, int64_t bs, int64_t b0,
                                int64_t b1, const float* code, float* x) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, len = i0 + bs < n ? bs : n - i0;
    const __m256 a = _mm256_set1_ps(absmax[b]);
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
      const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i0 + i)));
      _mm256_storeu_ps(x + i0 + i, _mm256_mul_ps(_mm256_i32gather_ps(code, idx, 4), a));
    }
    for (; i < len; ++i) x[i0 + i] = code[q[i0 + i]] * absmax[b];
  }
}

}  // namespace nq::quant
