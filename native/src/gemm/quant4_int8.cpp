// NQ_COMPUTE_INT8 for 4-bit weights: column scales, the weight's int8 rule, the B packer, the
// fast paths and their scalar references (quant4_int8.h).
#include "gemm/quant4_int8.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gemm/arena.h"
#include "gemm/gemv.h"
#include "gemm/int8_pack.h"
#include "gemm/quant4_weight.h"

namespace nq::gemm {
namespace {

// The int8 value of weight element e against inverse column scale inv (q8_of of code * absmax).
inline int8_t q8_element(const nq_quant4_weight& w, const float* code, int64_t e, float inv) {
  return q8_of(code[quant4_nibble(w, e)] * quant4_absmax(w, e >> __builtin_ctz(unsigned(w.blocksize))), inv);
}

// max(a, |b|) with NaN sticky (a NaN absmax makes its column's scale NaN: outputs NaN, not garbage).
inline float max_abs(float a, float b) {
  b = std::fabs(b);
  return a != a || b != b ? std::numeric_limits<float>::quiet_NaN() : std::max(a, b);
}

// The 16 values q8_of(code[c] * absmax, inv) ^ flip (c < 16) as a byte table, 8 lanes at a time: the same
// two roundings, clamp and round-half-even conversion as q8_of, NaN lanes zeroed (the scalar rule once per
// block was the packer's main cost).
inline __m128i block_table(const float* code, float absmax, float inv, uint8_t flip) {
  const __m256 a = _mm256_set1_ps(absmax), iv = _mm256_set1_ps(inv);
  const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
  __m256i q[2];
  for (int h = 0; h < 2; ++h) {
    const __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(code + 8 * h), a), iv);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(t, t, _CMP_UNORD_Q));
    q[h] = _mm256_andnot_si256(nan, _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(t, lo), hi)));
  }
  // packs_epi32 interleaves the 128-bit lanes: q0[0..3] q1[0..3] q0[4..7] q1[4..7]; 0xD8 restores the order.
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
  const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  return _mm_xor_si128(b, _mm_set1_epi8(char(flip)));
}

// Elements e0 + t (t < len) of W as int8 (q8_of) XOR `flip`; element t's inverse column scale is
// inv[t * inv_stride]. Within one block and one inverse scale (every run when inv_stride is 0, or
// when blocks never straddle rows, as the backward's column scales are then constant per block of
// columns) the 16 values go through a table: pshufb per 64 (or 32) elements.
void decode_run(const nq_quant4_weight& w, int64_t e0, int64_t len, const float* inv, int64_t inv_stride, uint8_t flip,
                uint8_t* out) {
  const float* code = quant4_code(w);
  const int bs_log2 = __builtin_ctz(unsigned(w.blocksize));
  if (inv_stride != 0 && w.k % w.blocksize != 0) {
    for (int64_t t = 0; t < len; ++t) out[t] = uint8_t(q8_element(w, code, e0 + t, inv[t * inv_stride])) ^ flip;
    return;
  }
  const __m256i nib = _mm256_set1_epi8(15);
  for (int64_t t = 0; t < len;) {
    const int64_t e = e0 + t, blk = e >> bs_log2;
    const int64_t seg = std::min(len - t, ((blk + 1) << bs_log2) - e);
    const __m128i table = block_table(code, quant4_absmax(w, blk), inv[t * inv_stride], flip);
    alignas(16) uint8_t lut[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(lut), table);
    const __m256i table2 = _mm256_broadcastsi128_si256(table);
    uint8_t* o = out + t;
    int64_t s = 0;
    if (e & 1) o[s++] = lut[w.packed[e >> 1] & 15];  // odd start: the low nibble of a byte
    for (; s + 64 <= seg; s += 64) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.packed + ((e + s) >> 1)));
      const __m256i hi = _mm256_shuffle_epi8(table2, _mm256_and_si256(_mm256_srli_epi16(b, 4), nib));
      const __m256i lo = _mm256_shuffle_epi8(table2, _mm256_and_si256(b, nib));
      // In-lane unpacks give elements 0-15 | 32-47 and 16-31 | 48-63.
      const __m256i u0 = _mm256_unpacklo_epi8(hi, lo), u1 = _mm256_unpackhi_epi8(hi, lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + s), _mm256_permute2x128_si256(u0, u1, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + s + 32), _mm256_permute2x128_si256(u0, u1, 0x31));
    }
    if (s + 32 <= seg) {  // blocks of 32
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.packed + ((e + s) >> 1)));
      const __m128i n4 = _mm256_castsi256_si128(nib);
      const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(b, 4), n4));
      const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(b, n4));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + s), _mm_unpacklo_epi8(hi, lo));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + s + 16), _mm_unpackhi_epi8(hi, lo));
      s += 32;
    }
    for (; s < seg; ++s) o[s] = lut[quant4_nibble(w, e + s)];
    t += seg;
  }
}

// One packed B element from its int8 value: u8 = v + 128 for vpdpbusd, or int16.
inline void put(uint8_t* panel, const PackGeom& g, Fmt fmt, int r, int64_t kk, int8_t v) {
  const int64_t at = panel_index(g.rows, g.kgroup, r, kk);
  if (fmt == Fmt::U8) panel[at] = uint8_t(v) ^ 0x80u;
  else reinterpret_cast<int16_t*>(panel)[at] = v;
}

// Rows of a (m, len) quantized into q with sa[i] = absmax / 127 and the kernel's offset correction.
void quantize_rows(const Ukernel& uk, const float* a, int64_t m, int64_t len, int8_t* q, float* sa, int32_t* corr) {
  const int nt = threads_for(m * len * 4);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < m; ++i) {
    int32_t qsum = 0;
    sa[i] = quantize_row_avx2(len, PlainRow{a + i * len}, q + i * len, &qsum) / 127.0f;
    corr[i] = offset_correction(qsum, uk.b_fmt);
  }
}

// Scratch of one call: q (m, len) quantized rows in kSlotStats0; sa, corr (m) and the column
// scale, inverse (cols) in kSlotStats1.
struct Int8Scratch {
  int8_t* q;
  float *sa, *sb, *inv;
  int32_t* corr;
  Int8Scratch(int64_t m, int64_t len, int64_t cols) {
    q = static_cast<int8_t*>(arena_get(kSlotStats0, size_t(m * len)));
    auto* s = static_cast<float*>(arena_get(kSlotStats1, size_t(4 * (2 * m + 2 * cols))));
    sa = s;
    corr = reinterpret_cast<int32_t*>(s + m);
    sb = s + 2 * m;
    inv = sb + cols;
  }
};

// The references' rows: quantize_row's values and scales.
void quantize_rows_ref(const float* a, int64_t m, int64_t len, std::vector<int8_t>& q, std::vector<float>& sa) {
  q.assign(size_t(m * len), 0);
  sa.assign(size_t(m), 0.0f);
  for (int64_t i = 0; i < m; ++i)
    sa[size_t(i)] = quantize_row(len, PlainRow{a + i * len}, &q[size_t(i * len)]) / 127.0f;
}

}  // namespace

int8_t q8_of(float code_times_absmax, float inv) {
  const float t = code_times_absmax * inv;
  return t == t ? int8_t(std::nearbyint(std::clamp(t, -127.0f, 127.0f))) : int8_t(0);
}

void quant4_int8_scales(const nq_quant4_weight& w, bool backward, float* scale, float* inv) {
  const float* code = quant4_code(w);
  float mc = 0.0f;
  for (int c = 0; c < 16; ++c) mc = max_abs(mc, code[c]);
  const int64_t K = w.k, bs = w.blocksize, cols = backward ? w.k : w.n;
  const int bs_log2 = __builtin_ctz(unsigned(w.blocksize));
  std::fill(scale, scale + cols, 0.0f);
  if (!backward) {
    for (int64_t o = 0; o < w.n; ++o)
      for (int64_t b = (o * K) >> bs_log2; b <= (o * K + K - 1) >> bs_log2; ++b)
        scale[o] = max_abs(scale[o], quant4_absmax(w, b));
  } else if (K % bs == 0) {
    const int64_t nb = K / bs;  // blocks per row: column block cb's scale serves columns cb*bs ..
    for (int64_t o = 0; o < w.n; ++o)
      for (int64_t cb = 0; cb < nb; ++cb) scale[cb * bs] = max_abs(scale[cb * bs], quant4_absmax(w, o * nb + cb));
    for (int64_t i = 0; i < K; ++i) scale[i] = scale[i / bs * bs];
  } else {
    for (int64_t o = 0; o < w.n; ++o)
      for (int64_t i = 0; i < K; ++i) scale[i] = max_abs(scale[i], quant4_absmax(w, (o * K + i) >> bs_log2));
  }
  for (int64_t j = 0; j < cols; ++j) {
    const float s = scale[j] * mc;
    scale[j] = s / 127.0f;
    inv[j] = s > 0.0f ? 127.0f / s : 0.0f;  // 0 for 0, NaN; Inf gives 0 too
  }
}

void PackBQuant4Int8::operator()(void* out_, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
  auto* out = static_cast<uint8_t*>(out_);
  const int R = g.rows, esz = fmt_bytes(fmt);
  const auto panel_at = [&](int64_t j) { return out + (j / R) * g.panel_elems * esz; };
  if (!backward) {
    // Octets of W rows (B columns; R is a multiple of 8): decode 8 runs, then move k groups (u8 quads, or
    // int16 pairs widened first) of the 8 columns with 8x8 transposes of 32-bit lanes (the u8 offset is
    // applied while decoding).
    const uint8_t flip = fmt == Fmt::U8 ? 0x80 : 0;
    alignas(64) uint8_t oct[8][kBPanelBytes];  // kc <= KC = 1536 (u8) or 768 (int16)
    alignas(64) int16_t wide[8][kBPanelBytes / 2];
    const int kv = fmt == Fmt::U8 ? 32 : 16;  // k per transpose
    for (int64_t j = 0; j < nc; j += 8) {
      const int cols = int(std::min<int64_t>(8, nc - j)), r0 = int(j % R);
      for (int t = 0; t < cols; ++t) decode_run(w, (n0 + j + t) * w.k + k0, kc, inv + n0 + j + t, 0, flip, oct[t]);
      uint8_t* panel = panel_at(j);
      const int64_t kt = cols == 8 ? kc / kv * kv : 0;  // k covered by transposes
      const void* lanes = oct[0];
      if (fmt == Fmt::I16) {
        for (int t = 0; t < cols; ++t)
          for (int64_t kk = 0; kk < kt; kk += 16)
            _mm256_store_si256(reinterpret_cast<__m256i*>(wide[t] + kk),
                               _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(oct[t] + kk))));
        lanes = wide[0];
      }
      for (int64_t q = 0; q < kt * 8 / kv; q += 8)  // q: 32-bit lanes (k groups)
        transpose8x8(static_cast<const float*>(lanes) + q, kBPanelBytes / 4, reinterpret_cast<float*>(panel) + q * R + r0,
                     R);
      for (int t = 0; t < cols; ++t)
        for (int64_t kk = kt; kk < kc; ++kk) put(panel, g, fmt, r0 + t, kk, int8_t(oct[t][kk] ^ flip));
    }
    return;
  }
  // Backward: quads of W rows (B's k) decoded across the block's columns, interleaved 32 columns at
  // a time (interleave_u8_4x32 adds the u8 offset), or as two int16 pairs 16 columns at a time.
  alignas(64) int8_t quad[4][kNC];
  for (int64_t kk = 0; kk < kc; kk += 4) {
    const int rows = int(std::min<int64_t>(4, kc - kk));
    for (int t = 0; t < rows; ++t)
      decode_run(w, (k0 + kk + t) * w.k + n0, nc, inv + n0, 1, 0, reinterpret_cast<uint8_t*>(quad[t]));
    for (int64_t j = 0; j < nc; j += R) {
      uint8_t* panel = panel_at(j);
      const int cols = int(std::min<int64_t>(R, nc - j));
      const int span = fmt == Fmt::U8 ? 32 : 16, cv = rows == 4 ? cols / span * span : 0;
      for (int c = 0; c < cv; c += span)
        if (fmt == Fmt::U8) {
          interleave_u8_4x32(&quad[0][j + c], kNC, panel + kk * R + c * 4);
        } else {
          auto* p16 = reinterpret_cast<int16_t*>(panel);
          interleave_i16_2x16(&quad[0][j + c], &quad[1][j + c], p16 + kk * R + c * 2);
          interleave_i16_2x16(&quad[2][j + c], &quad[3][j + c], p16 + (kk + 2) * R + c * 2);
        }
      for (int t = 0; t < rows; ++t)
        for (int c = cv; c < cols; ++c) put(panel, g, fmt, c, kk + t, quad[t][j + c]);
    }
  }
}

void quant4_gemm_int8(const Ukernel& uk, const float* x, int64_t m, const nq_quant4_weight& w, const float* bias,
                      float* y) {
  const int64_t K = w.k, N = w.n;
  const Int8Scratch s(m, K, N);
  quant4_int8_scales(w, false, s.sb, s.inv);
  quantize_rows(uk, x, m, K, s.q, s.sa, s.corr);
  // The int32 sums live in y; each finished tile becomes floats in place.
  const auto epilogue = [&](int32_t* tile, int64_t ld, int64_t i0, int64_t j0, int rows, int cols) {
    for (int r = 0; r < rows; ++r)
      int8_out_row(tile + r * ld, s.corr[i0 + r], nullptr, s.sa[i0 + r], s.sb + j0, bias ? bias + j0 : nullptr, 1.0f, cols,
                   y + (i0 + r) * N + j0);
  };
  run_gemm<int32_t>(uk, m, N, K, PackAInt8{s.q, K, uk.a_fmt}, PackBQuant4Int8{w, s.inv, false, uk.b_fmt},
                    reinterpret_cast<int32_t*>(y), N, false, epilogue);
}

void quant4_gemm_backward_int8(const Ukernel& uk, const float* dy, int64_t m, const nq_quant4_weight& w, float beta,
                               float* dx) {
  const int64_t N = w.n, K = w.k;
  const Int8Scratch s(m, N, K);
  quant4_int8_scales(w, true, s.sb, s.inv);
  quantize_rows(uk, dy, m, N, s.q, s.sa, s.corr);
  // Sums in dx itself when its old value is not needed, else in scratch.
  auto* acc = beta == 0.0f ? reinterpret_cast<int32_t*>(dx)
                           : static_cast<int32_t*>(arena_get(kSlotStats2, size_t(m * K) * 4));
  const auto epilogue = [&](int32_t* tile, int64_t ld, int64_t i0, int64_t j0, int rows, int cols) {
    for (int r = 0; r < rows; ++r) {
      float* d = dx + (i0 + r) * K + j0;
      int8_out_row(tile + r * ld, s.corr[i0 + r], nullptr, s.sa[i0 + r], s.sb + j0, beta == 0.0f ? nullptr : d, beta, cols,
                   d);
    }
  };
  run_gemm<int32_t>(uk, m, K, N, PackAInt8{s.q, N, uk.a_fmt}, PackBQuant4Int8{w, s.inv, true, uk.b_fmt}, acc, K, false,
                    epilogue);
}

namespace {

// The references' product: rows of a (m, len) against the product's columns of W (forward: W's rows, len = w.k;
// backward: W's columns, len = w.n), exact int32 sums; out(i, j, v) receives v = float(sum) * (sa_i * sb_j).
template <class Out>
void int8_product_ref(const float* a, int64_t m, const nq_quant4_weight& w, bool backward, const Out& out) {
  const int64_t len = backward ? w.n : w.k, cols = backward ? w.k : w.n;
  const float* code = quant4_code(w);
  std::vector<int8_t> q, wq(static_cast<size_t>(len));
  std::vector<float> sa, sb(static_cast<size_t>(cols)), inv(static_cast<size_t>(cols));
  quantize_rows_ref(a, m, len, q, sa);
  quant4_int8_scales(w, backward, sb.data(), inv.data());
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t t = 0; t < len; ++t)
      wq[size_t(t)] = q8_element(w, code, backward ? t * w.k + j : j * w.k + t, inv[size_t(j)]);
    for (int64_t i = 0; i < m; ++i) {
      int32_t acc = 0;
      for (int64_t t = 0; t < len; ++t) acc += int32_t(q[size_t(i * len + t)]) * wq[size_t(t)];
      out(i, j, float(acc) * (sa[size_t(i)] * sb[size_t(j)]));
    }
  }
}

}  // namespace

void quant4_gemm_int8_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y) {
  int8_product_ref(x, m, w, false, [&](int64_t i, int64_t n, float v) {
    y[i * w.n + n] = (bias ? 1.0f * bias[n] : 0.0f) + v;
  });
}

void quant4_gemm_backward_int8_ref(const float* dy, int64_t m, const nq_quant4_weight& w, float beta, float* dx) {
  int8_product_ref(dy, m, w, true, [&](int64_t i, int64_t c, float v) {
    float& o = dx[i * w.k + c];
    o = (beta == 0.0f ? 0.0f : beta * o) + v;
  });
}

}  // namespace nq::gemm
