// AVX2 causal attention (16 ymm registers): scores from a register tile of 6 query rows x 16 keys fed by keys
// transposed to (D, S); weighted sums (P V, dS K, P^T dO, dS^T Q) from 12 accumulators (6 rows x 16 columns, or
// 4 rows x 24) held across the reduction. Same loop nests, blocking of keys and work split as AVX-512 (blocked.h).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "attention/attention.h"
#include "attention/blocked.h"
#include "cpu/exp_avx2.h"

namespace nq::attention {

namespace {

constexpr int kRows = 6;     // query rows per score tile: 12 accumulators + 2 key vectors + 1 broadcast
constexpr int kOutRows = 4;  // keys per dk/dv pass (divides 16), 3 vectors of columns each
constexpr int kAccumulators = 12;

inline __m256 lanes(int64_t n) {  // the first min(max(n, 0), 8) lanes set
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::clamp<int64_t>(n, 0, 8))), iota));
}
inline __m256 load_n(const float* x, int64_t n) {  // first n lanes of x (the rest 0, not read)
  return n >= 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, _mm256_castps_si256(lanes(n)));
}
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// r (8 rows of 8) := r^T: unpack pairs of rows, then pairs of pairs, then swap 128-bit lanes.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// xt (d, ldt) = X^T for rows X_j = x + j * ldx, j < n; columns n..pad16(n) are zero so whole 16-key blocks
// can be scored. 8 x 8 blocks transposed in registers.
void transpose(const float* x, int64_t ldx, int64_t n, int64_t d, float* xt, int64_t ldt) {
  for (int64_t j = 0; j < pad16(n); j += 8)
    for (int64_t c = 0; c < d; c += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = j + i < n ? load_n(x + (j + i) * ldx + c, d - c) : _mm256_setzero_ps();
      transpose8(r);
      for (int64_t i = 0; i < std::min<int64_t>(8, d - c); ++i) _mm256_store_ps(xt + (c + i) * ldt + j, r[i]);
    }
}

// s (rows, n) = A B^T for rows <= 6 rows A_r = a + r * lda of d floats and bt = B^T (d, ldb);
// n is a multiple of 16. Missing rows re-read row 0 and are not stored.
void score_tile(const float* a, int64_t lda, int rows, const float* bt, int64_t ldb, int64_t d, int64_t n,
                float* s, int64_t lds) {
  const float* ar[kRows];
  for (int r = 0; r < kRows; ++r) ar[r] = a + (r < rows ? r : 0) * lda;
  for (int64_t j = 0; j < n; j += 16) {
    __m256 c0[kRows], c1[kRows];
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
    const float* b = bt + j;
    for (int64_t c = 0; c < d; ++c, b += ldb) {
      const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
      for (int r = 0; r < kRows; ++r) {
        const __m256 x = _mm256_broadcast_ss(ar[r] + c);
        c0[r] = _mm256_fmadd_ps(x, b0, c0[r]);
        c1[r] = _mm256_fmadd_ps(x, b1, c1[r]);
      }
    }
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r)  // constant indices keep the accumulators in registers
      if (r < rows) {
        _mm256_storeu_ps(s + r * lds + j, c0[r]);
        _mm256_storeu_ps(s + r * lds + j + 8, c1[r]);
      }
  }
}

// s[j] = a . B_j for j < n, B_j = b + j * ldb (a decode row: reading B in place beats transposing it).
void score_row(const float* a, const float* b, int64_t ldb, int64_t d, int64_t n, float* s) {
  for (int64_t j = 0; j < n; ++j, b += ldb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c += 8) acc = _mm256_fmadd_ps(load_n(a + c, d - c), load_n(b + c, d - c), acc);
    s[j] = hsum(acc);
  }
}

// Y_r(cols) (+)= sum_{j<n} w[r * wr + j * wc] X_j for r < rows <= R, X_j = x + j * ldx, Y_r = y + r * ldy, over
// NV vectors of columns, the last one holding `last` columns (masked loads only when Tail: they cost an extra
// uop). Missing rows re-read row 0 and are not stored.
template <int R, int NV, bool Tail>
void weighted_sum_cols(int rows, const float* w, int64_t wr, int64_t wc, const float* x, int64_t ldx, int64_t n,
                       float* y, int64_t ldy, int64_t last, bool add) {
  const __m256i m = _mm256_castps_si256(lanes(last));
  const auto load = [&](const float* p, int v) {
    return Tail && v == NV - 1 ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
  };
  const float* wrow[R];
  for (int r = 0; r < R; ++r) wrow[r] = w + (r < rows ? r : 0) * wr;
  __m256 acc[R][NV];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      acc[r][v] = add && r < rows ? load(y + r * ldy + 8 * v, v) : _mm256_setzero_ps();
  for (int64_t j = 0; j < n; ++j, x += ldx) {
    __m256 xv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) xv[v] = load(x + 8 * v, v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 wv = _mm256_broadcast_ss(wrow[r] + j * wc);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(wv, xv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)  // constant indices keep the accumulators in registers
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      if (r < rows) {
        if (Tail && v == NV - 1)
          _mm256_maskstore_ps(y + r * ldy + 8 * v, m, acc[r][v]);
        else
          _mm256_storeu_ps(y + r * ldy + 8 * v, acc[r][v]);
      }
}

template <int R, int NV>
void weighted_sum_pass(int rows, const float* w, int64_t wr, int64_t wc, const float* x, int64_t ldx, int64_t n,
                       float* y, int64_t ldy, int64_t last, bool add) {
  if (last == 8)
    weighted_sum_cols<R, NV, false>(rows, w, wr, wc, x, ldx, n, y, ldy, last, add);
  else
    weighted_sum_cols<R, NV, true>(rows, w, wr, wc, x, ldx, n, y, ldy, last, add);
}

// The same over all d columns for rows <= 6: passes of up to 12 / R vectors (6 rows x 2, or 4 rows x 3), the
// vectors split evenly over the passes so none runs with a few accumulators only.
template <int R>
void weighted_sum_rows(int rows, const float* w, int64_t wr, int64_t wc, const float* x, int64_t ldx, int64_t n,
                       int64_t d, float* y, int64_t ldy, bool add) {
  constexpr int kMaxVectors = kAccumulators / R;
  const int64_t vectors = (d + 7) / 8, passes = (vectors + kMaxVectors - 1) / kMaxVectors;
  for (int64_t pass = 0, c = 0; pass < passes; ++pass) {
    const int64_t left = passes - pass, nv = (vectors - c / 8 + left - 1) / left, cols = std::min(8 * nv, d - c);
    const int64_t last = cols - 8 * (nv - 1);
    switch (nv) {
      case 1: weighted_sum_pass<R, 1>(rows, w, wr, wc, x + c, ldx, n, y + c, ldy, last, add); break;
      case 2: weighted_sum_pass<R, 2>(rows, w, wr, wc, x + c, ldx, n, y + c, ldy, last, add); break;
      default: weighted_sum_pass<R, kMaxVectors>(rows, w, wr, wc, x + c, ldx, n, y + c, ldy, last, add); break;
    }
    c += cols;
  }
}

void weighted_sum(int rows, const float* w, int64_t wr, int64_t wc, const float* x, int64_t ldx, int64_t n,
                  int64_t d, float* y, int64_t ldy, bool add) {
  if (rows <= kOutRows)
    weighted_sum_rows<kOutRows>(rows, w, wr, wc, x, ldx, n, d, y, ldy, add);
  else
    weighted_sum_rows<kRows>(rows, w, wr, wc, x, ldx, n, d, y, ldy, add);
}

// Row t's scores s[0, n16) -> probabilities: P = exp(scale * s - shift) for keys < vis, 0 up to n16.
// Returns sum P.
float exp_row(float* s, int64_t vis, int64_t n16, float scale, float shift) {
  const __m256 sc = _mm256_set1_ps(scale), sh = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < n16; j += 8) {
    const __m256 p = _mm256_and_ps(lanes(vis - j), cpu::exp_ps(_mm256_fmsub_ps(sc, _mm256_loadu_ps(s + j), sh)));
    _mm256_storeu_ps(s + j, p);
    sum = _mm256_add_ps(sum, p);
  }
  return hsum(sum);
}

float max_row(const float* s, int64_t n) {
  __m256 mx = _mm256_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 8)
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_loadu_ps(s + j), lanes(n - j)));
  return hmax(mx);
}

void scale_row(float* s, int64_t n16, float f) {
  const __m256 fv = _mm256_set1_ps(f);
  for (int64_t j = 0; j < n16; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), fv));
}

// dp (n16) := scale p (dp - delta), delta = sum_j p_j dp_j (the softmax gradient of one row).
void softmax_grad_row(const float* pj, float* dj, int64_t n16, float scale) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t j = 0; j < n16; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(pj + j), _mm256_loadu_ps(dj + j), acc);
  const __m256 delta = _mm256_set1_ps(hsum(acc)), sc = _mm256_set1_ps(scale);
  for (int64_t j = 0; j < n16; j += 8) {
    const __m256 pv = _mm256_loadu_ps(pj + j);
    _mm256_storeu_ps(dj + j, _mm256_mul_ps(_mm256_mul_ps(sc, pv), _mm256_sub_ps(_mm256_loadu_ps(dj + j), delta)));
  }
}

}  // namespace

NQ_ATTENTION_ENTRY_POINTS(avx2)

}  // namespace nq::attention
