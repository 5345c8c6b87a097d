// AVX-512 causal attention. Scores come from a register tile of 8 query rows x 32 keys fed by
// keys transposed to (D, S) (one load serves 8 FMAs); weighted sums (P V, dS K, P^T dO, dS^T Q)
// from one kernel holding 8 output rows x up to 48 columns in registers across the reduction. Only
// 16-key column blocks that hold a visible key are computed. Loop nests and work split: blocked.h.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "attention/attention.h"
#include "attention/blocked.h"
#include "cpu/exp_avx512.h"

namespace nq::attention {

namespace {

using nq::cpu::exp_ps;

constexpr int kRows = 8;      // query rows per score tile
constexpr int kOutRows = 8;   // output rows per weighted-sum pass: each X load feeds 8 FMAs
constexpr int kOutVectors = 3;  // at most 3 x 16 columns per pass: 24 accumulators in registers

inline __mmask16 lanes(int64_t n) {  // the first min(max(n, 0), 16) lanes
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// r (16 rows of 16) := r^T: unpack pairs of rows, then pairs of pairs, then 128-bit lanes twice.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), e = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, e));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, e));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
  }
}

// xt (d, ldt) = X^T for rows X_j = x + j * ldx, j < n; columns n..pad16(n) are zero so whole
// 16-key blocks can be scored. 16 x 16 blocks transposed in registers (one 64-byte load per row
// piece: element-wise copies or vgatherdps cost several times more on rows that are not in cache).
void transpose(const float* x, int64_t ldx, int64_t n, int64_t d, float* xt, int64_t ldt) {
  for (int64_t j = 0; j < n; j += 16)
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = lanes(d - c);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = j + i < n ? _mm512_maskz_loadu_ps(m, x + (j + i) * ldx + c) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t i = 0; i < std::min<int64_t>(16, d - c); ++i) _mm512_store_ps(xt + (c + i) * ldt + j, r[i]);
    }
}

// s (rows, n) = A B^T for rows <= 8 rows A_r = a + r * lda of d floats and bt = B^T (d, ldb);
// n is a multiple of 16. Missing rows re-read row 0 and are not stored.
void score_tile(const float* a, int64_t lda, int rows, const float* bt, int64_t ldb, int64_t d, int64_t n,
                float* s, int64_t lds) {
  const float* ar[kRows];
  for (int r = 0; r < kRows; ++r) ar[r] = a + (r < rows ? r : 0) * lda;
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m512 c0[kRows], c1[kRows];
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) c0[r] = c1[r] = _mm512_setzero_ps();
    const float* b = bt + j;
    for (int64_t c = 0; c < d; ++c, b += ldb) {
      const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        const __m512 x = _mm512_set1_ps(ar[r][c]);
        c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);
        c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r)  // constant indices keep the accumulators in registers
      if (r < rows) {
        _mm512_storeu_ps(s + r * lds + j, c0[r]);
        _mm512_storeu_ps(s + r * lds + j + 16, c1[r]);
      }
  }
  if (j < n) {
    __m512 c0[kRows];
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) c0[r] = _mm512_setzero_ps();
    const float* b = bt + j;
    for (int64_t c = 0; c < d; ++c, b += ldb) {
      const __m512 b0 = _mm512_load_ps(b);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) c0[r] = _mm512_fmadd_ps(_mm512_set1_ps(ar[r][c]), b0, c0[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r)
      if (r < rows) _mm512_storeu_ps(s + r * lds + j, c0[r]);
  }
}

// s[j] = a . B_j for j < n, B_j = b + j * ldb (a decode row: reading B in place beats transposing it).
void score_row(const float* a, const float* b, int64_t ldb, int64_t d, int64_t n, float* s) {
  for (int64_t j = 0; j < n; ++j, b += ldb) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c += 16) {
      const __mmask16 m = lanes(d - c);
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + c), _mm512_maskz_loadu_ps(m, b + c), acc);
    }
    s[j] = _mm512_reduce_add_ps(acc);
  }
}

// Y_r(cols) (+)= sum_{j<n} w[r * wr + j * wc] X_j for r < rows <= 8, X_j = x + j * ldx, Y_r = y + r * ldy,
// over NV vectors of columns (the last one masked by m). Missing rows re-read row 0 and are not stored.
// Y's rows (outputs and gradients at model strides) are often not in cache: they are fetched ahead and, when
// adding, read after the sum (loads before the loop would hold up its first FMAs).
template <int NV>
void weighted_sum_cols(int rows, const float* w, int64_t wr, int64_t wc, const float* x, int64_t ldx, int64_t n,
                       float* y, int64_t ldy, __mmask16 m, bool add) {
  const float* wrow[kOutRows];
  for (int r = 0; r < kOutRows; ++r) wrow[r] = w + (r < rows ? r : 0) * wr;
  __m512 acc[kOutRows][NV];
#pragma GCC unroll 8
  for (int r = 0; r < kOutRows; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      acc[r][v] = _mm512_setzero_ps();
      if (r < rows) _mm_prefetch(reinterpret_cast<const char*>(y + r * ldy + 16 * v), _MM_HINT_T0);
    }
  for (int64_t j = 0; j < n; ++j, x += ldx) {
    __m512 xv[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) xv[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? m : __mmask16(0xFFFF), x + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < kOutRows; ++r) {
      const __m512 wv = _mm512_set1_ps(wrow[r][j * wc]);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(wv, xv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kOutRows; ++r)  // constant indices keep the accumulators in registers
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      if (r < rows) {
        const __mmask16 mv = v == NV - 1 ? m : __mmask16(0xFFFF);
        float* yv = y + r * ldy + 16 * v;
        _mm512_mask_storeu_ps(yv, mv, add ? _mm512_add_ps(_mm512_maskz_loadu_ps(mv, yv), acc[r][v]) : acc[r][v]);
      }
}

// The same over all d columns in as few passes of <= 3 vectors as possible, split evenly (d = 64: 2 x 32, so no
// pass runs with only 8 accumulators, too few chains to cover the FMA latency).
void weighted_sum(int rows, const float* w, int64_t wr, int64_t wc, const float* x, int64_t ldx, int64_t n,
                  int64_t d, float* y, int64_t ldy, bool add) {
  const int64_t vectors = (d + 15) / 16, passes = (vectors + kOutVectors - 1) / kOutVectors;
  for (int64_t pass = 0, c = 0; pass < passes; ++pass) {
    const int64_t left = passes - pass, nv = (vectors - c / 16 + left - 1) / left, cols = std::min(16 * nv, d - c);
    const __mmask16 m = lanes(cols - 16 * (nv - 1));
    switch (nv) {
      case 1: weighted_sum_cols<1>(rows, w, wr, wc, x + c, ldx, n, y + c, ldy, m, add); break;
      case 2: weighted_sum_cols<2>(rows, w, wr, wc, x + c, ldx, n, y + c, ldy, m, add); break;
      default: weighted_sum_cols<3>(rows, w, wr, wc, x + c, ldx, n, y + c, ldy, m, add); break;
    }
    c += cols;
  }
}

// Row t's scores s[0, n16) -> probabilities: P = exp(scale * s - shift) for keys < vis, 0 up to n16.
// Returns sum P.
float exp_row(float* s, int64_t vis, int64_t n16, float scale, float shift) {
  const __m512 sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n16; j += 16) {
    const __mmask16 m = lanes(vis - j);
    const __m512 p = _mm512_maskz_mov_ps(m, exp_ps(_mm512_fmsub_ps(sc, _mm512_loadu_ps(s + j), sh)));
    _mm512_storeu_ps(s + j, p);
    sum = _mm512_add_ps(sum, p);
  }
  return _mm512_reduce_add_ps(sum);
}

float max_row(const float* s, int64_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) mx = _mm512_mask_max_ps(mx, lanes(n - j), mx, _mm512_loadu_ps(s + j));
  return _mm512_reduce_max_ps(mx);
}

// dp (n16) := scale p (dp - delta), delta = sum_j p_j dp_j (the softmax gradient of one row).
void softmax_grad_row(const float* pj, float* dj, int64_t n16, float scale) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < n16; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(pj + j), _mm512_loadu_ps(dj + j), acc);
  const __m512 delta = _mm512_set1_ps(_mm512_reduce_add_ps(acc)), sc = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < n16; j += 16) {
    const __m512 pv = _mm512_loadu_ps(pj + j);
    _mm512_storeu_ps(dj + j, _mm512_mul_ps(_mm512_mul_ps(sc, pv), _mm512_sub_ps(_mm512_loadu_ps(dj + j), delta)));
  }
}

void scale_row(float* s, int64_t n16, float f) {
  const __m512 fv = _mm512_set1_ps(f);
  for (int64_t j = 0; j < n16; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), fv));
}

}  // namespace

NQ_ATTENTION_ENTRY_POINTS(avx512)

}  // namespace nq::attention
