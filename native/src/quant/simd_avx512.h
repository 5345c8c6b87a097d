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

// Outputs at least this large are written with streaming stores when 64-byte aligned: they
// cannot stay cached for their consumer anyway, and streaming skips the write-allocate read
// (for an fp32 output that is half of the memory traffic).
constexpr int64_t kStreamMinBytes = int64_t(8) << 20;

inline bool streams(const void* out, int64_t bytes) {
  return bytes >= kStreamMinBytes && (reinterpret_cast<uintptr_t>(out) & 63) == 0;
}

// 64 bytes at p (64-byte aligned when streaming).
inline void store64(void* p, __m512i v, bool stream) {
  if (stream)
    _mm512_stream_si512(static_cast<__m512i*>(p), v);
  else
    _mm512_storeu_si512(p, v);
}

// The quantizers read each block twice (absmax, then codes); without a software prefetch the
// hardware prefetcher leaves a single core far below its read bandwidth (measured: 64M-element
// NF4 quantize 21 -> 13 ms). 4 KB ahead, one prefetch per cache line of the first pass.
inline void prefetch_ahead(const float* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + 1024), _MM_HINT_T0);
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

// Absmax of one block as float bits (an integer max of |x| bits is exact for finite floats;
// NaN/Inf compare above every finite value), prefetching the input stream ahead.
// load(p, mask) yields 16 lanes with 0 outside mask.
template <class Load>
inline uint32_t block_absmax_bits(const float* xb, int64_t len, Load load) {
  __m512i m = _mm512_setzero_si512();
  for (int64_t i = 0; i < len; i += 16) {
    prefetch_ahead(xb + i);
    m = _mm512_max_epu32(m, abs_bits16(load(xb + i, lanes16(len - i))));
  }
  return _mm512_reduce_max_epu32(m);
}

// Walks blocks [b0, b1) of x: stores each block's absmax, then code_block(i0, len, 1/absmax)
// codes it. Block b + 1's absmax is taken before block b is coded, so its reduction and
// reciprocal overlap b's search instead of stalling the next block's first compares.
// Returns the first block holding a NaN/Inf, or -1.
template <class Load, class CodeBlock>
inline int64_t quantize_blocks(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1, float* absmax,
                               Load load, CodeBlock code_block) {
  auto block_len = [&](int64_t b) { return b * bs + bs < n ? bs : n - b * bs; };
  auto absmax_bits = [&](int64_t b) { return block_absmax_bits(x + b * bs, block_len(b), load); };
  uint32_t next = absmax_bits(b0);
  for (int64_t b = b0; b < b1; ++b) {
    const uint32_t mb = next;
    if (mb >= kNonFiniteBits) return b;
    if (b + 1 < b1) next = absmax_bits(b + 1);
    absmax[b] = from_bits(mb);
    code_block(b * bs, block_len(b), _mm512_set1_ps(inv_absmax(absmax[b])));
  }
  return -1;
}

// Nearest 8-bit code from the Code8 midpoint tables (#{i : mid[i] < v}) without gathers, in
// register-resident binary searches (every count over sorted thresholds is a thermometer code):
// 5 steps over the 31 group bounds mid[8g + 7], then 3 steps over the 7 midpoints inside group g.
// Steps 1-2 compare against broadcasts (1 or 2 candidates); later steps look the threshold up by
// g in tables pre-shifted by s - 1, so no index arithmetic sits between compares. Shared by
// blockwise 8-bit quantization and the 8-bit optimizers.
struct Search8 {
  __m512 b7, b15, b23;  // group bounds mid[8g + 7] for g = 7, 15, 23
  __m512 t4[2], t2[2], t1[2];  // t<s>[g] = coarse[g + s - 1] (32 entries as two halves)
  __m512 f[7][2];              // f[j][g] = mid[8g + j]

  explicit Search8(const Code8& t)
      : b7(_mm512_set1_ps(t.coarse[7])), b15(_mm512_set1_ps(t.coarse[15])), b23(_mm512_set1_ps(t.coarse[23])) {
    for (int h = 0; h < 2; ++h) {
      t4[h] = _mm512_loadu_ps(t.coarse + 16 * h + 3);
      t2[h] = _mm512_loadu_ps(t.coarse + 16 * h + 1);
      t1[h] = _mm512_load_ps(t.coarse + 16 * h);
      for (int j = 0; j < 7; ++j) f[j][h] = _mm512_load_ps(t.fine[j] + 16 * h);
    }
  }

  static __m512 at(const __m512 (&tab)[2], __m512i g) { return _mm512_permutex2var_ps(tab[0], g, tab[1]); }

  // v: 16 normalised values -> code indices (0..255) as dwords
  __m512i index(__m512 v) const {
    const __mmask16 k16 = _mm512_cmp_ps_mask(v, b15, _CMP_GT_OQ);
    __m512i g = _mm512_maskz_mov_epi32(k16, _mm512_set1_epi32(16));
    const __mmask16 k8 = _mm512_cmp_ps_mask(v, _mm512_mask_blend_ps(k16, b7, b23), _CMP_GT_OQ);
    g = _mm512_mask_add_epi32(g, k8, g, _mm512_set1_epi32(8));
    g = _mm512_mask_add_epi32(g, _mm512_cmp_ps_mask(v, at(t4, g), _CMP_GT_OQ), g, _mm512_set1_epi32(4));
    g = _mm512_mask_add_epi32(g, _mm512_cmp_ps_mask(v, at(t2, g), _CMP_GT_OQ), g, _mm512_set1_epi32(2));
    g = _mm512_mask_add_epi32(g, _mm512_cmp_ps_mask(v, at(t1, g), _CMP_GT_OQ), g, _mm512_set1_epi32(1));
    // inside group g: midpoint 3, then 1 or 5, then 0, 2, 4 or 6
    __m512i idx = _mm512_slli_epi32(g, 3);
    const __mmask16 k4 = _mm512_cmp_ps_mask(v, at(f[3], g), _CMP_GT_OQ);
    idx = _mm512_mask_add_epi32(idx, k4, idx, _mm512_set1_epi32(4));
    const __mmask16 k2 = _mm512_cmp_ps_mask(v, _mm512_mask_blend_ps(k4, at(f[1], g), at(f[5], g)), _CMP_GT_OQ);
    idx = _mm512_mask_add_epi32(idx, k2, idx, _mm512_set1_epi32(2));
    const __m512 p1 = _mm512_mask_blend_ps(k4, _mm512_mask_blend_ps(k2, at(f[0], g), at(f[2], g)),
                                           _mm512_mask_blend_ps(k2, at(f[4], g), at(f[6], g)));
    return _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(v, p1, _CMP_GT_OQ), idx, _mm512_set1_epi32(1));
  }
};

// The same count from Code8's bucket table (t.bucket_shift >= 0): 9 ALU uops and one gather
// per 16 values instead of Search8's ~30 uops on the two vector ports; the gather (measured
// ~9 cycles per 16 lanes from L1 here) is now the largest cost. v must not be NaN: vrangeps,
// which does |v| and the floor in one uop, returns the floor for it.
struct BucketSearch8 {
  __m512 floor;
  __m512i floor_bits, key_lo, key_hi, shift;
  const uint32_t* entry;  // indexed by bucket (first_bucket < 0)

  explicit BucketSearch8(const Code8& t)
      : floor(_mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(t.floor_bits)))),
        floor_bits(_mm512_set1_epi32(static_cast<int>(t.floor_bits))),
        key_lo(_mm512_set1_epi32(t.key_lo)),
        key_hi(_mm512_set1_epi32(t.key_hi)),
        shift(_mm512_set1_epi32(t.bucket_shift)),
        entry(t.bucket - t.first_bucket) {}

  __m512i index(__m512 v) const {
    const __m512i neg = _mm512_srai_epi32(_mm512_castps_si512(v), 31);
    const __m512i a = _mm512_castps_si512(_mm512_range_ps(v, floor, 0b1011));  // max(|v|, floor), sign cleared
    __m512i k = _mm512_xor_si512(_mm512_sub_epi32(a, floor_bits), neg);
    k = _mm512_min_epi32(_mm512_max_epi32(k, key_lo), key_hi);
    const __m512i e = _mm512_i32gather_epi32(_mm512_srav_epi32(k, shift), entry, 4);
    return _mm512_srli_epi32(_mm512_add_epi32(e, k), 24);
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
