// Panel packers for float-valued sources. A "view" maps (row, k) to a float, where a row
// is a row of A or a column of B (so B's packer sees B transposed). Strided fp32 views get
// vectorised copy/transpose fast paths; every other view goes through the generic loop.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gemm/convert.h"
#include "gemm/driver.h"
#include "gemm/gemm_f32.h"

namespace nq::gemm {

// V(r, k) = p[r * rs + k * ks] for fp32 data.
struct ViewF32 {
  const float* p;
  int64_t rs, ks;
  float at(int64_t r, int64_t k) const { return p[r * rs + k * ks]; }
};

// Same over bf16 bits.
struct ViewBf16 {
  const uint16_t* p;
  int64_t rs, ks;
  float at(int64_t r, int64_t k) const { return bf16_to_f32(p[r * rs + k * ks]); }
};

// 8x8 fp32 transpose of rows src[0..7] (stride ss) into dst rows (stride ds).
inline void transpose8x8(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    r[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
    r[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(r[i], r[4 + i], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(r[i], r[4 + i], 0x31));
  }
}

// One micro-panel of `rows` rows (<= g.rows) and kc k values starting at (r0, k0).
// round: emulate bf16 compute on the fp32 kernel (values rounded to bf16 first).
template <class View>
void pack_panel(void* out, const PackGeom& g, Fmt fmt, bool round, const View& v, int64_t r0, int rows,
                int64_t k0, int64_t kc) {
  const int R = g.rows;
  if (fmt == Fmt::F32 && round) {
    float* o = static_cast<float*>(out);
    for (int r = 0; r < rows; ++r)
      for (int64_t k = 0; k < kc; ++k) o[k * R + r] = round_bf16(v.at(r0 + r, k0 + k));
  } else if (fmt == Fmt::F32) {
    float* o = static_cast<float*>(out);
    if constexpr (std::is_same_v<View, ViewF32>) {
      // Rows contiguous (A^T or B stored row-major): one copy per k, of a constant size for the AVX-512
      // tile's full 8-row A and 48-row B panels so it is inlined (memmove calls were ~1/5 of dW's packing).
      if (v.rs == 1) {
        const auto copy = [&](auto bytes) {
          for (int64_t k = 0; k < kc; ++k) std::memcpy(o + k * R, v.p + r0 + (k0 + k) * v.ks, bytes);
        };
        if (rows == 8 && R == 8)
          copy(std::integral_constant<size_t, 8 * 4>());
        else if (rows == 48 && R == 48)
          copy(std::integral_constant<size_t, 48 * 4>());
        else
          copy(size_t(rows) * 4);
        return;
      }
      if (v.ks == 1 && rows % 16 == 0 && nq::cpu::use(NQ_ISA_AVX512))
        return transpose_panel_f32_avx512(v.p + r0 * v.rs + k0, v.rs, rows, kc, o, R);
      if (v.ks == 1 && rows % 8 == 0) {  // k contiguous: 8x8 transposes
        const float* base = v.p + r0 * v.rs + k0;
        const int64_t k8 = kc / 8 * 8;
        for (int r = 0; r < rows; r += 8) {
          for (int64_t k = 0; k < k8; k += 8) transpose8x8(base + r * v.rs + k, v.rs, o + k * R + r, R);
          for (int64_t k = k8; k < kc; ++k)
            for (int i = 0; i < 8; ++i) o[k * R + r + i] = base[(r + i) * v.rs + k];
        }
        return;
      }
    }
    for (int r = 0; r < rows; ++r)
      for (int64_t k = 0; k < kc; ++k) o[k * R + r] = v.at(r0 + r, k0 + k);
  } else {  // BF16 pairs: [k/2][r][k%2], one uint32 per (pair, row)
    uint16_t* o = static_cast<uint16_t*>(out);
    const int64_t k2 = kc / 2 * 2;
    if constexpr (std::is_same_v<View, ViewBf16> || std::is_same_v<View, ViewF32>) {
      if (v.ks == 1) {  // k contiguous: a pair is two adjacent source elements
        uint32_t* o32 = reinterpret_cast<uint32_t*>(o);
        for (int r = 0; r < rows; ++r) {
          const auto* src = v.p + (r0 + r) * v.rs + k0;
          for (int64_t k = 0; k < k2; k += 2) {
            uint32_t pair;
            if constexpr (std::is_same_v<View, ViewBf16>) {
              std::memcpy(&pair, src + k, 4);
            } else {
              pair = uint32_t(f32_to_bf16(src[k])) | uint32_t(f32_to_bf16(src[k + 1])) << 16;
            }
            std::memcpy(o32 + (k >> 1) * R + r, &pair, 4);
          }
        }
        for (int r = 0; r < rows && k2 < kc; ++r) o[((k2 >> 1) * R + r) * 2] = f32_to_bf16(v.at(r0 + r, k0 + k2));
        return;
      }
    }
    for (int64_t k = 0; k < kc; ++k)  // k outer: rows of a row-contiguous view are read in order
      for (int r = 0; r < rows; ++r) o[((k >> 1) * R + r) * 2 + (k & 1)] = f32_to_bf16(v.at(r0 + r, k0 + k));
  }
}

// Packer functors for the driver built on a view.
template <class View>
struct PackA {
  View v;
  Fmt fmt;
  bool round = false;
  void operator()(void* out, const PackGeom& g, int64_t i0, int rows, int64_t k0, int64_t kc) const {
    pack_panel(out, g, fmt, round, v, i0, rows, k0, kc);
  }
  // A(i0, k0) for the driver's in-place path: fp32 rows with unit k stride, no rounding.
  const float* direct(int64_t i0, int64_t k0, int64_t& lda) const {
    if constexpr (std::is_same_v<View, ViewF32>) {
      if (fmt == Fmt::F32 && !round && v.ks == 1) {
        lda = v.rs;
        return v.p + i0 * v.rs + k0;
      }
    }
    return nullptr;
  }
  bool plain_f32() const { return std::is_same_v<View, ViewF32> && fmt == Fmt::F32 && !round; }
};

template <class View>
struct PackB {
  View v;  // v(n, k) = B(k, n)
  Fmt fmt;
  bool round = false;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    const int esz = fmt_bytes(fmt);
    for (int64_t j = 0, p = 0; j < nc; j += g.rows, ++p)
      pack_panel(static_cast<uint8_t*>(out) + p * g.panel_elems * esz, g, fmt, round, v, n0 + j,
                 int(std::min<int64_t>(g.rows, nc - j)), k0, kc);
  }
  bool plain_f32() const { return std::is_same_v<View, ViewF32> && fmt == Fmt::F32 && !round; }
};

// C = beta * C + bias before an accumulating GEMM (beta = 0 never reads C).
inline void prepare_output(float* c, int64_t m, int64_t n, float beta, const float* bias) {
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * n;
    if (beta == 0.0f) {
      for (int64_t j = 0; j < n; ++j) row[j] = bias ? bias[j] : 0.0f;
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] = beta * row[j] + (bias ? bias[j] : 0.0f);
    }
  }
}

}  // namespace nq::gemm
