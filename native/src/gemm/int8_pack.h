// int8 operands for the VNNI (s8 x u8) and AVX2 (int16 pairs) GEMM kernels, shared by LLM.int8()
// (gemm_int8.cpp) and NQ_COMPUTE_INT8 for 4-bit weights (quant4_int8.cpp): row quantization of
// the activations and the A and B packers.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "gemm/convert.h"
#include "gemm/driver.h"
#include "gemm/pack.h"

namespace nq::gemm {

// Reference: absmax of the row v(0..k-1) and its quantization q[j] = round(v(j) * 127 / absmax).
// A row holding NaN or Inf returns NaN with q all 0, so its outputs become NaN, not silent garbage
// (Inf would turn into an Inf scale times a sum that may be 0, or into int8 garbage).
template <class Row>
float quantize_row(int64_t k, const Row& v, int8_t* q) {
  float amax = 0.0f;
  bool nan = false;
  for (int64_t j = 0; j < k; ++j) {
    const float a = std::fabs(v.at(j));
    nan |= !(a <= std::numeric_limits<float>::max());
    amax = std::max(amax, a);
  }
  if (nan) {
    std::fill(q, q + k, int8_t(0));
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int64_t j = 0; j < k; ++j) q[j] = int8_t(quantize_s8(v.at(j), inv));
  return amax;
}

// Fast paths: quantize_row's results (max is exact in any order, vcvtps2dq rounds
// half to even like nearbyint), plus *sum = sum_j q[j]. The float max and nearbyint loops do
// not auto-vectorise, and the row is copied so stores to q (int8 may alias) force no reloads.
template <class Row>
float quantize_row_avx2(int64_t k, const Row& row, int8_t* q, int32_t* sum) {
  const Row v = row;
  const int64_t k8 = k / 8 * 8, k32 = k / 32 * 32;
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 big = _mm256_set1_ps(std::numeric_limits<float>::max());
  __m256 mx = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
  for (int64_t j = 0; j < k8; j += 8) {
    const __m256 a = _mm256_and_ps(v.at8(j), abs);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, big, _CMP_NLE_UQ));  // Inf or NaN
    mx = _mm256_max_ps(a, mx);  // NaN: keeps mx
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mx);
  float amax = 0.0f;
  bool has_nan = _mm256_movemask_ps(nan) != 0;
  for (float l : lanes) amax = std::max(amax, l);
  for (int64_t j = k8; j < k; ++j) {
    const float a = std::fabs(v.at(j));
    has_nan |= !(a <= std::numeric_limits<float>::max());
    amax = std::max(amax, a);
  }
  if (has_nan) {
    std::fill(q, q + k, int8_t(0));
    *sum = 0;
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undo the in-lane packs
  __m256i s8 = _mm256_setzero_si256();
  for (int64_t j = 0; j < k32; j += 32) {
    __m256i r[4];
    for (int t = 0; t < 4; ++t) r[t] = _mm256_cvtps_epi32(_mm256_mul_ps(v.at8(j + 8 * t), vinv));
    s8 = _mm256_add_epi32(s8, _mm256_add_epi32(_mm256_add_epi32(r[0], r[1]), _mm256_add_epi32(r[2], r[3])));
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + j), _mm256_permutevar8x32_epi32(p, order));
  }
  alignas(32) int32_t part[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(part), s8);
  int32_t s = 0;
  for (int32_t l : part) s += l;
  for (int64_t j = k32; j < k; ++j) s += q[j] = int8_t(quantize_s8(v.at(j), inv));
  *sum = s;
  return amax;
}

// What the VNNI kernel's u8 operand (B + 128) adds to a row's accumulators, 128 * sum_j q[j].
inline int32_t offset_correction(int32_t qsum, Fmt b_fmt) { return b_fmt == Fmt::U8 ? 128 * qsum : 0; }

// A: rows of the quantized X as s8 quads (VNNI) or int16 pairs (AVX2).
struct PackAInt8 {
  const int8_t* q;
  int64_t k;
  Fmt fmt;
  void operator()(void* out, const PackGeom& g, int64_t i0, int rows, int64_t k0, int64_t kc) const {
    for (int r = 0; r < rows; ++r) {
      const int8_t* src = q + (i0 + r) * k + k0;
      if (fmt == Fmt::S8) {
        int8_t* o = static_cast<int8_t*>(out) + r * 4;
        const int64_t k4 = kc / 4 * 4;
        for (int64_t kk = 0; kk < k4; kk += 4) std::memcpy(o + (kk >> 2) * g.rows * 4, src + kk, 4);
        for (int64_t kk = k4; kk < kc; ++kk) o[(kk >> 2) * g.rows * 4 + (kk & 3)] = src[kk];
      } else {
        // Widen 16 k at a time; each 32-bit lane is one k pair, stored to its group's slot for row r.
        int32_t* o = static_cast<int32_t*>(out) + r;
        const int64_t k16 = kc / 16 * 16;
        alignas(32) int32_t pairs[8];
        for (int64_t kk = 0; kk < k16; kk += 16) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(pairs),
                             _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + kk))));
          for (int p = 0; p < 8; ++p) o[(kk / 2 + p) * g.rows] = pairs[p];
        }
        int16_t* o16 = static_cast<int16_t*>(out) + r * 2;
        for (int64_t kk = k16; kk < kc; ++kk) o16[(kk >> 1) * g.rows * 2 + (kk & 1)] = src[kk];
      }
    }
  }
};

// B: rows of W (= columns of B) as u8 = w + 128 quads (VNNI) or int16 pairs (AVX2).
struct PackBInt8 {
  const int8_t* w;
  int64_t k;
  Fmt fmt;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    if (fmt == Fmt::U8) return pack_u8(static_cast<uint8_t*>(out), g, k0, kc, n0, nc);
    const int esz = fmt_bytes(fmt);
    for (int64_t j = 0; j < nc; ++j) {
      const int8_t* src = w + (n0 + j) * k + k0;
      uint8_t* panel = static_cast<uint8_t*>(out) + (j / g.rows) * g.panel_elems * esz;
      const int r = int(j % g.rows);
      {
        int16_t* o = reinterpret_cast<int16_t*>(panel) + r * 2;
        for (int64_t kk = 0; kk < kc; ++kk) o[(kk >> 1) * g.rows * 2 + (kk & 1)] = src[kk];
      }
    }
  }

  // Quads of 8 W rows x 8 k-groups move as one 8x8 transpose of 32-bit lanes (bit moves
  // only); leftovers go one byte at a time; then one pass adds 128 to every byte (padding
  // becomes 128 = a zero weight, still multiplied by zero-padded A).
  void pack_u8(uint8_t* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    const int R = g.rows;
    const int64_t g8 = k % 4 == 0 ? kc / 32 * 8 : 0;  // k-groups covered by transposes
    for (int64_t j = 0; j < nc; ++j) {
      uint8_t* panel = out + (j / R) * g.panel_elems;
      const int r = int(j % R);
      const int8_t* src = w + (n0 + j) * k + k0;
      if (j % 8 == 0 && j + 8 <= nc && g8 > 0) {
        for (int64_t q = 0; q < g8; q += 8)
          transpose8x8(reinterpret_cast<const float*>(src) + q, k / 4,
                       reinterpret_cast<float*>(panel) + q * R + r, R);
      }
      const int64_t from = (j / 8 * 8 + 8 <= nc) ? g8 * 4 : 0;  // rows in a transposed octet skip those
      for (int64_t kk = from; kk < kc; ++kk) panel[((kk >> 2) * R + r) * 4 + (kk & 3)] = uint8_t(src[kk]);
    }
    const int64_t bytes = (nc + R - 1) / R * g.panel_elems;
    for (int64_t i = 0; i < bytes; ++i) out[i] ^= 0x80u;
  }
};

// 4 W rows (stride ld) x 32 columns -> 32 u8 quads w + 128, column c's quad at o + 4c.
// In-lane byte then word unpacks leave lane L of q0..q3 holding columns 16L + 0..3, 4..7,
// 8..11, 12..15; the 128-bit permutes put them back in column order.
inline void interleave_u8_4x32(const int8_t* src, int64_t ld, uint8_t* o) {
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  __m256i r[4];
  for (int t = 0; t < 4; ++t)
    r[t] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + t * ld)), flip);
  const __m256i a = _mm256_unpacklo_epi8(r[0], r[1]), b = _mm256_unpackhi_epi8(r[0], r[1]);
  const __m256i c = _mm256_unpacklo_epi8(r[2], r[3]), d = _mm256_unpackhi_epi8(r[2], r[3]);
  const __m256i q0 = _mm256_unpacklo_epi16(a, c), q1 = _mm256_unpackhi_epi16(a, c);
  const __m256i q2 = _mm256_unpacklo_epi16(b, d), q3 = _mm256_unpackhi_epi16(b, d);
  auto* out = reinterpret_cast<__m256i*>(o);
  _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(q0, q1, 0x20));
  _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(q2, q3, 0x20));
  _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(q0, q1, 0x31));
  _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(q2, q3, 0x31));
}

// Two W rows (k and k + 1) x 16 columns -> 16 int16 pairs, column c's pair at o + 2c (AVX2's kgroup-2 B).
// The in-lane unpacks leave columns 0-3 | 8-11 and 4-7 | 12-15; the 128-bit permutes restore the order.
inline void interleave_i16_2x16(const int8_t* r0, const int8_t* r1, int16_t* o) {
  const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r0)));
  const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r1)));
  const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);
  auto* out = reinterpret_cast<__m256i*>(o);
  _mm256_storeu_si256(out, _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(lo, hi, 0x31));
}

// Backward B (n, k) = W itself: B(kk, c) = W[kk][c], so a k-group is `kgroup` consecutive W
// rows interleaved per column; u8 = w + 128 (VNNI) or int16 (AVX2). Full quads of rows x 32
// columns go through interleave_u8_4x32 (pairs x 16: interleave_i16_2x16), the rest one element
// at a time.
struct PackBInt8Bwd {
  const int8_t* w;
  int64_t k;  // W's row length = B's columns
  Fmt fmt;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    const int R = g.rows;
    // Rows covered by the interleaves: quads of rows x 32 columns (u8), pairs of rows x 16 columns (int16).
    const int64_t kq = fmt == Fmt::U8 ? kc / 4 * 4 : kc / 2 * 2;
    const int span = fmt == Fmt::U8 ? 32 : 16;
    for (int64_t j = 0; j < nc; j += R) {
      uint8_t* panel = static_cast<uint8_t*>(out) + (j / R) * g.panel_elems * fmt_bytes(fmt);
      const int cols = int(std::min<int64_t>(R, nc - j)), cv = cols / span * span;
      const int8_t* src = w + k0 * k + n0 + j;
      if (fmt == Fmt::U8)
        for (int64_t kk = 0; kk < kq; kk += 4)
          for (int c = 0; c < cv; c += 32) interleave_u8_4x32(src + kk * k + c, k, panel + kk * R + c * 4);
      else
        for (int64_t kk = 0; kk < kq; kk += 2)
          for (int c = 0; c < cv; c += 16)
            interleave_i16_2x16(src + kk * k + c, src + (kk + 1) * k + c, reinterpret_cast<int16_t*>(panel) + kk * R + c * 2);
      for (int64_t kk = 0; kk < kc; ++kk)
        for (int c = kk < kq ? cv : 0; c < cols; ++c) {
          const int8_t v = src[kk * k + c];
          const int64_t at = panel_index(R, g.kgroup, c, kk);
          if (fmt == Fmt::U8) panel[at] = uint8_t(v) ^ 0x80u;
          else reinterpret_cast<int16_t*>(panel)[at] = v;
        }
    }
  }
};

// An int8 product's output row from its int32 sums: dst[c] = add_scale * add[c] + float(acc[c] - corr + col[c]) *
// (sa * sb[c]) for c < cols (add = nullptr: + 0; col = nullptr: + 0), 8 at a time with the same roundings as the
// scalar tail, so every path gives the same bits. dst may be acc or add (element-wise).
inline void int8_out_row(const int32_t* acc, int32_t corr, const int32_t* col, float sa, const float* sb,
                         const float* add, float add_scale, int64_t cols, float* dst) {
  const __m256i vc = _mm256_set1_epi32(corr);
  const __m256 va = _mm256_set1_ps(sa), vk = _mm256_set1_ps(add_scale);
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    __m256i a = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + c)), vc);
    if (col) a = _mm256_add_epi32(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + c)));
    const __m256 prod = _mm256_mul_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(va, _mm256_loadu_ps(sb + c)));
    const __m256 term = add ? _mm256_mul_ps(vk, _mm256_loadu_ps(add + c)) : _mm256_setzero_ps();
    _mm256_storeu_ps(dst + c, _mm256_add_ps(term, prod));
  }
  for (; c < cols; ++c) {
    int32_t a;
    std::memcpy(&a, acc + c, 4);
    dst[c] = (add ? add_scale * add[c] : 0.0f) + float(a - corr + (col ? col[c] : 0)) * (sa * sb[c]);
  }
}

// A row of plain floats, for quantize_row / quantize_row_avx2.
struct PlainRow {
  const float* x;
  float at(int64_t j) const { return x[j]; }
  __m256 at8(int64_t j) const { return _mm256_loadu_ps(x + j); }
};

}  // namespace nq::gemm
