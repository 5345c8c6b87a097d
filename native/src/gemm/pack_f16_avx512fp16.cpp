// AVX-512 packers of fp32 operands for NQ_COMPUTE_F16 (chunk layouts in f16_chunk.h). Each
// writes exactly what the scalar chunk rules (f16_act_chunk, f16_b_chunk) compute.
#include <immintrin.h>

#include <algorithm>

#include "gemm/f16_chunk.h"
#include "gemm/gemm_f32_f16.h"

namespace nq::gemm {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
constexpr int64_t kAPrefetchChunks = 2;  // prefetch distance of the A packer in chunks (1 or 3 gained less)
constexpr int64_t kPrefetchCols = 16;  // prefetch distance of the (K, N) B packer: the next 16 columns

// Lanes of a 16-float load that lie inside the n values left.
inline __mmask16 tail_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// 2^s (up) and 2^-s (scale) for 16 NaN-free maxima m >= 0 with s = bias - getexp(m), clamped to
// +-kF16MaxShift, and s = 0 where m is 0 or Inf: getexp is frexp's exponent - 1 for every finite m > 0,
// subnormals included, and scalef builds 2^s exactly. bias -1 is f16_weight_shift, 8 f16_act_shift.
inline void pow2_scales(__m512 m, float bias, __m512& up, __m512& scale) {
  const __mmask16 ok = _mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ) &
                       _mm512_cmp_ps_mask(m, _mm512_set1_ps(3.4028235e38f), _CMP_LE_OQ);
  const __m512 lim = _mm512_set1_ps(float(kF16MaxShift));
  const __m512 s = _mm512_sub_ps(_mm512_set1_ps(bias), _mm512_getexp_ps(m));
  const __m512 sc =
      _mm512_maskz_mov_ps(ok, _mm512_max_ps(_mm512_min_ps(s, lim), _mm512_sub_ps(_mm512_setzero_ps(), lim)));
  up = _mm512_scalef_ps(_mm512_set1_ps(1.0f), sc);
  scale = _mm512_scalef_ps(_mm512_set1_ps(1.0f), _mm512_sub_ps(_mm512_setzero_ps(), sc));
}

// Lane r (r < 8) = the largest lane of m[r]: 16 shuffles for the 8 rows (a reduce_max per row is 4
// dependent shuffle + max pairs and a scalar tail).
inline __m512 row_maxima8(const __m512 m[8]) {
  __m512 p[4], q[2];
  for (int i = 0; i < 4; ++i)  // 128-bit lanes 0-1: row 2i's 8 partial maxima, lanes 2-3: row 2i+1's
    p[i] = _mm512_max_ps(_mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0xee));
  for (int i = 0; i < 2; ++i)  // 128-bit lane L: row 4i + L's 4 partial maxima
    q[i] = _mm512_max_ps(_mm512_shuffle_f32x4(p[2 * i], p[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(p[2 * i], p[2 * i + 1], 0xdd));
  const __m512 u = _mm512_max_ps(_mm512_unpacklo_ps(q[0], q[1]), _mm512_unpackhi_ps(q[0], q[1]));
  const __m512 v = _mm512_max_ps(u, _mm512_permute_ps(u, 0x4e));  // lane 4L: row L, lane 4L + 1: row 4 + L
  return _mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 9, 5, 1, 12, 8, 4, 0), v);
}

// |v| folded into m; a NaN lane of v keeps m (vmaxps returns its second operand).
inline __m512 max_abs(__m512 v, __m512 m) { return _mm512_max_ps(_mm512_abs_ps(v), m); }

// One B chunk of 16 columns from rows[r] = B(k + r, col..col+15), r < len, in fp32 and the columns'
// largest |value| m: fp16(b * 2^s) rows, then the scales.
inline void put_chunk16(const float (*rows)[16], int len, __m512 m, uint8_t* chunk, int64_t col) {
  __m512 up, scale;
  pow2_scales(m, -1.0f, up, scale);
  for (int r = 0; r < len; ++r) {
    const __m512 v = _mm512_mul_ps(_mm512_load_ps(rows[r]), up);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(chunk + (r * kF16Nr + col) * 2), _mm512_cvtps_ph(v, kRound));
  }
  _mm512_storeu_ps(reinterpret_cast<float*>(chunk + kF16BScaleOffset) + col, scale);
}

// In-register transpose: r[i] lane c -> r[c] lane i, in 96 one-uop shuffles with immediates (a 64-shuffle
// version on vpermt2ps needs 4 index registers and spilled: 15% slower).
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // per 128-bit lane: a0 b0 a1 b1
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);  // a2 b2 a3 b3
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + q], 128-bit lane L: rows 4i..4i+3 of column 4L + q
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
  }
  for (int q = 0; q < 4; ++q) {  // gather lane L of r[q], r[4+q], r[8+q], r[12+q] into column 4L + q
    const __m512 x0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88), x1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xdd);
    const __m512 y0 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88),
                 y1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xdd);
    t[q] = _mm512_shuffle_f32x4(x0, y0, 0x88);
    t[8 + q] = _mm512_shuffle_f32x4(x0, y0, 0xdd);
    t[4 + q] = _mm512_shuffle_f32x4(x1, y1, 0x88);
    t[12 + q] = _mm512_shuffle_f32x4(x1, y1, 0xdd);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace

void pack_a_f16_avx512fp16(const float* x, int64_t ld, int rows, int64_t kc, uint8_t* panel, const float* next) {
  // fp16 index w -> w / 2: each value doubled into its 32-bit slot by one vpermw.
  const __m512i dup = _mm512_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5,
                                       4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  for (int64_t k = 0; k < kc; k += kF16Chunk, panel += kF16AChunkBytes) {
    const int64_t len = std::min<int64_t>(kF16Chunk, kc - k);
    // The chunk kAPrefetchChunks on, past kc the next panel's first ones: A was usually just written by the
    // previous op, often on the other core, and 8 runs of 4 lines are latency-bound without (BM_PackAF16Fresh:
    // 15-22% less time; from L2/L3: 7-15%).
    const int64_t kp = k + kAPrefetchChunks * kF16Chunk;
    const float* pf = kp < kc ? x + kp : next && kp - kc < kc ? next + (kp - kc) : nullptr;
    if (pf)
      for (int r = 0; r < (kp < kc ? rows : kF16Mr); ++r)
        for (int p = 0; p < 4; ++p) _mm_prefetch(reinterpret_cast<const char*>(pf + r * ld + 16 * p), _MM_HINT_T0);
    __mmask16 lanes[4];
    for (int p = 0; p < 4; ++p) lanes[p] = tail_mask(len - 16 * p);
    __m512 m[kF16Mr];
#pragma GCC unroll 8
    for (int r = 0; r < kF16Mr; ++r) {
      m[r] = _mm512_setzero_ps();
      if (r >= rows) continue;
      const float* xr = x + r * ld + k;
      for (int p = 0; p < 4; ++p) m[r] = max_abs(_mm512_maskz_loadu_ps(lanes[p], xr + 16 * p), m[r]);
    }
    alignas(64) float up[16];
    __m512 vup, vinv;
    pow2_scales(row_maxima8(m), 8.0f, vup, vinv);
    _mm512_store_ps(up, vup);
    _mm256_storeu_ps(reinterpret_cast<float*>(panel + kF16Mr * kF16ARowBytes), _mm512_castps512_ps256(vinv));
    for (int r = 0; r < rows; ++r) {  // the chunk again, from L1
      const float* xr = x + r * ld + k;
      const __m512 u = _mm512_set1_ps(up[r]);
      auto* o = reinterpret_cast<__m512i*>(panel + r * kF16ARowBytes);
      for (int p = 0; p < 4; ++p) {
        const __m256i h = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_maskz_loadu_ps(lanes[p], xr + 16 * p), u), kRound);
        _mm512_storeu_si512(o + p, _mm512_permutexvar_epi16(dup, _mm512_castsi256_si512(h)));
      }
    }
  }
}

void pack_b_f32_f16_avx512fp16(const float* b, int64_t ldb, bool trans, uint8_t* out, int64_t panel_bytes, int64_t kc,
                               int64_t nc) {
  // One chunk of 16 columns as rows of B (4 KiB, L1), then converted: the source is read once.
  alignas(64) float rows[kF16Chunk][16];
  const auto chunk_at = [&](int64_t k, int64_t j) {  // 16 columns never straddle a 96-column panel
    return out + (j / kF16Nr) * panel_bytes + (k / kF16Chunk) * kF16BChunkBytes;
  };
  if (!trans) {
    // B (K, N): a chunk row is 16 contiguous columns of a B row. Chunks outer: a chunk's 12 KiB of output
    // is finished while in L1 (columns outer revisited each output line after other chunks evicted it:
    // 1.8x slower on the head's W).
    for (int64_t k = 0; k < kc; k += kF16Chunk) {
      const int len = int(std::min<int64_t>(kF16Chunk, kc - k));
      for (int64_t j = 0; j < nc; j += 16) {
        const __mmask16 lanes = tail_mask(nc - j);
        const float* src = b + k * ldb + j;
        // The same rows kPrefetchCols columns on, or the next chunk's rows past the last column: a chunk's 64
        // rows (3 KiB apart in the head's W) are more streams than the hardware prefetchers follow (the head's
        // W: ~25% less CPU time; 32 or 48 columns ahead did no better).
        const int64_t jp = j + kPrefetchCols;
        const float* pf = jp < nc                ? src + kPrefetchCols
                          : k + kF16Chunk < kc ? b + (k + kF16Chunk) * ldb + (jp - nc)
                                               : nullptr;
        __m512 m0 = _mm512_setzero_ps(), m1 = m0;  // two chains: vmaxps latency
        int r = 0;
        for (; r + 2 <= len; r += 2) {
          if (pf) {
            _mm_prefetch(reinterpret_cast<const char*>(pf + r * ldb), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(pf + (r + 1) * ldb), _MM_HINT_T0);
          }
          const __m512 v0 = _mm512_maskz_loadu_ps(lanes, src + r * ldb);
          const __m512 v1 = _mm512_maskz_loadu_ps(lanes, src + (r + 1) * ldb);
          _mm512_store_ps(rows[r], v0);
          _mm512_store_ps(rows[r + 1], v1);
          m0 = max_abs(v0, m0);
          m1 = max_abs(v1, m1);
        }
        if (r < len) {
          const __m512 v = _mm512_maskz_loadu_ps(lanes, src + r * ldb);
          _mm512_store_ps(rows[r], v);
          m0 = max_abs(v, m0);
        }
        put_chunk16(rows, len, _mm512_max_ps(m0, m1), chunk_at(k, j), j % kF16Nr);
      }
    }
    return;
  }
  // B stored (N, K): column j + i's chunk is a run of stored row j + i; 16x16 blocks transposed into rows of
  // 16 columns (stored rows past nc and k past len read as 0). Columns outer: each stored row is read in
  // order (chunks outer ran 1.5x slower).
  for (int64_t j = 0; j < nc; j += 16) {
    const int ncols = int(std::min<int64_t>(16, nc - j));
    for (int64_t k = 0; k < kc; k += kF16Chunk) {
      const int len = int(std::min<int64_t>(kF16Chunk, kc - k));
      __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;  // four chains: vmaxps latency
      for (int p = 0; p * 16 < len; ++p) {
        const __mmask16 km = tail_mask(len - 16 * p);
        __m512 r[16];
        for (int i = 0; i < 16; ++i) {
          r[i] = i < ncols ? _mm512_maskz_loadu_ps(km, b + (j + i) * ldb + k + 16 * p) : _mm512_setzero_ps();
          // The next group's rows at this k: 16 rows 3 KiB apart (the head's W) are more streams than the
          // hardware prefetchers follow (15% faster with it).
          const int64_t next = std::min<int64_t>(j + 16 + i, nc - 1);
          _mm_prefetch(reinterpret_cast<const char*>(b + next * ldb + k + 16 * p), _MM_HINT_T0);
        }
        transpose16x16(r);
        for (int i = 0; i < 16; i += 4) {
          _mm512_store_ps(rows[16 * p + i], r[i]);
          _mm512_store_ps(rows[16 * p + i + 1], r[i + 1]);
          _mm512_store_ps(rows[16 * p + i + 2], r[i + 2]);
          _mm512_store_ps(rows[16 * p + i + 3], r[i + 3]);
          m0 = max_abs(r[i], m0);
          m1 = max_abs(r[i + 1], m1);
          m2 = max_abs(r[i + 2], m2);
          m3 = max_abs(r[i + 3], m3);
        }
      }
      put_chunk16(rows, len, _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)), chunk_at(k, j), j % kF16Nr);
    }
  }
}

}  // namespace nq::gemm
