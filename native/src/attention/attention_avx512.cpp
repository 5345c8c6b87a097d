// AVX-512 causal attention. Scores come from a register tile of 8 query rows x 32 keys fed by
// keys transposed to (D, S) (one load serves 8 FMAs); weighted sums (P V, dS K, P^T dO, dS^T Q)
// from one kernel holding 8 output rows x up to 48 columns in registers across the reduction. Only
// 16-key column blocks that hold a visible key are computed.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "attention/attention.h"
#include "cpu/cpu.h"
#include "gemm/arena.h"

namespace nq::attention {

namespace {

using nq::gemm::arena_get;

constexpr int kRows = 8;      // query rows per score tile
constexpr int kChunk = 64;    // query rows per forward work item and per backward P/dS buffer
constexpr int kOutRows = 8;   // output rows per weighted-sum pass: each X load feeds 8 FMAs
constexpr int kOutVectors = 3;  // at most 3 x 16 columns per pass: 24 accumulators in registers
constexpr int64_t kParallelWork = int64_t(1) << 18;  // multiply-adds of QK^T below which one thread runs

inline int64_t pad16(int64_t n) { return (n + 15) & ~int64_t(15); }
// Row stride of transposed keys and of P / dS: whole 16-key blocks, and an odd number of them so that
// walking a column (one float per row) spreads over the L1 sets instead of a few (1 KiB strides alias).
inline int64_t key_stride(int64_t s) { return pad16(s) / 16 % 2 == 1 ? pad16(s) : pad16(s) + 16; }
inline __mmask16 lanes(int64_t n) {  // the first min(max(n, 0), 16) lanes
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// e^x (cephes expf: x = n ln2 + r, |r| <= ln2/2, degree-5 polynomial, 2^n by vscalefps, which
// also gives 0 for very negative x); ~1 ulp.
inline __m512 exp_ps(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
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
template <int NV>
void weighted_sum_cols(int rows, const float* w, int64_t wr, int64_t wc, const float* x, int64_t ldx, int64_t n,
                       float* y, int64_t ldy, __mmask16 m, bool add) {
  const float* wrow[kOutRows];
  for (int r = 0; r < kOutRows; ++r) wrow[r] = w + (r < rows ? r : 0) * wr;
  __m512 acc[kOutRows][NV];
#pragma GCC unroll 8
  for (int r = 0; r < kOutRows; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v)
      acc[r][v] = add && r < rows ? _mm512_maskz_loadu_ps(v == NV - 1 ? m : __mmask16(0xFFFF), y + r * ldy + 16 * v)
                                  : _mm512_setzero_ps();
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
      if (r < rows) _mm512_mask_storeu_ps(y + r * ldy + 16 * v, v == NV - 1 ? m : __mmask16(0xFFFF), acc[r][v]);
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

// Rows X_j = x + j * ldx (j < n, d floats each) copied to (n, d) contiguous: model strides (3C or H*D floats,
// multiples of 1 KiB) map a head's rows onto a few L1 sets, and packed rows stream with the prefetchers.
void pack_rows(const float* x, int64_t ldx, int64_t n, int64_t d, float* out) {
  for (int64_t j = 0; j < n; ++j) std::memcpy(out + j * d, x + j * ldx, size_t(d) * 4);
}

int threads_for(const nq_attention_shape& s) {
  const int64_t work = s.batch * s.q_heads * s.q_len * s.kv_len * s.head_dim;
  return work < kParallelWork ? 1 : nq::cpu::num_threads();
}

}  // namespace

// Items (b, h, chunk of kChunk queries), latest chunks (most keys) first for the dynamic schedule.
// With T >= 8 the first item of each kv head transposes its keys and packs its values into a shared
// buffer (later items of that head wait for it: no team-wide barrier that a descheduled thread would
// hold up); fewer queries (decoding) read k and v in place, as copying would cost more than using them.
void forward_avx512(const nq_attention_shape& s, const float* q, const float* k, const float* v, float* o,
                    float* lse) {
  const int64_t d = s.head_dim, group = s.q_heads / s.kv_heads, ldt = key_stride(s.kv_len);
  const bool packed = s.q_len >= kRows;
  const int64_t heads = s.batch * s.kv_heads, chunks = (s.q_len + kChunk - 1) / kChunk;
  const int64_t head_size = pad16(d * ldt + s.kv_len * d);  // per kv head: K^T (d, ldt), V (S, d); 64-byte aligned
  float* kv = nullptr;
  int32_t* state = nullptr;  // per kv head: 0 not packed, 1 being packed, 2 packed
  if (packed) {
    kv = static_cast<float*>(arena_get(nq::gemm::kSlotB, size_t(heads * (head_size + 16)) * 4));
    state = reinterpret_cast<int32_t*>(kv + heads * head_size);
    std::memset(state, 0, size_t(heads) * 4);
  }
  const int nt = threads_for(s);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    float* sc = static_cast<float*>(arena_get(nq::gemm::kSlotStats0, size_t(kRows * ldt) * 4));  // (8, ldt)
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < s.batch * s.q_heads * chunks; ++item) {
      const int64_t chunk = chunks - 1 - item % chunks, bh = item / chunks, b = bh / s.q_heads, h = bh % s.q_heads;
      const int64_t kh = h / group, t1 = std::min(s.q_len, (chunk + 1) * kChunk), i = b * s.kv_heads + kh;
      const float* kt = packed ? kv + i * head_size : nullptr;
      const float* vh = packed ? kt + d * ldt : v + v_at(s, b, 0, kh);
      const int64_t ldv = packed ? d : s.v_row_stride;
      if (packed) {
        int32_t expected = 0;
        if (__atomic_compare_exchange_n(&state[i], &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
          transpose(k + k_at(s, b, 0, kh), s.k_row_stride, s.kv_len, d, kv + i * head_size, ldt);
          pack_rows(v + v_at(s, b, 0, kh), s.v_row_stride, s.kv_len, d, kv + i * head_size + d * ldt);
          __atomic_store_n(&state[i], 2, __ATOMIC_RELEASE);
        } else {
          while (__atomic_load_n(&state[i], __ATOMIC_ACQUIRE) != 2) _mm_pause();
        }
      }
      for (int64_t t0 = chunk * kChunk; t0 < t1; t0 += kRows) {
        const int rows = int(std::min<int64_t>(kRows, t1 - t0));
        const int64_t n16 = pad16(visible(s, t0 + rows - 1));
        if (packed)
          score_tile(q + q_at(s, b, t0, h), s.q_row_stride, rows, kt, ldt, d, n16, sc, ldt);
        else
          for (int r = 0; r < rows; ++r)
            score_row(q + q_at(s, b, t0 + r, h), k + k_at(s, b, 0, kh), s.k_row_stride, d, visible(s, t0 + r),
                      sc + r * ldt);
        for (int r = 0; r < rows; ++r) {
          float* row = sc + r * ldt;
          const int64_t vis = visible(s, t0 + r);
          const float mx = s.scale * max_row(row, vis);
          const float sum = exp_row(row, vis, n16, s.scale, mx);
          const __m512 inv = _mm512_set1_ps(1.0f / sum);
          for (int64_t j = 0; j < n16; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), inv));
          if (lse != nullptr) lse[lse_at(s, b, h, t0 + r)] = mx + std::log(sum);
        }
        weighted_sum(rows, sc, ldt, 1, vh, ldv, visible(s, t0 + rows - 1), d, o + o_at(s, b, t0, h), s.q_heads * d,
                     false);
      }
    }
  }
}

// Items (b, kv head): one owns its dk/dv rows, so no two threads add into the same gradient row.
// Per query head of the group and chunk of kChunk queries: recompute P (from lse) and dS for the
// chunk into (kChunk, ldt) buffers, add dS K into dq, then P^T dO into dv and dS^T Q into dk with
// each key's output rows held in registers across the chunk's queries that see it.
void backward_avx512(const nq_attention_shape& s, const float* q, const float* k, const float* v,
                     const float* d_o, const float* lse, float* dq, float* dk, float* dv) {
  const int64_t d = s.head_dim, group = s.q_heads / s.kv_heads, ldt = key_stride(s.kv_len);
  const int nt = threads_for(s);
#pragma omp parallel for schedule(dynamic) num_threads(nt) if (nt > 1)
  for (int64_t item = 0; item < s.batch * s.kv_heads; ++item) {
    const int64_t b = item / s.kv_heads, kh = item % s.kv_heads;
    // K^T, V^T (d, ldt) and K (S, d); P and dS (kChunk, ldt); this head's Q and dO (T, d)
    float* kt = static_cast<float*>(arena_get(nq::gemm::kSlotStats0, size_t(2 * d * ldt + s.kv_len * d) * 4));
    float *vt = kt + d * ldt, *kp = vt + d * ldt;
    float* p = static_cast<float*>(arena_get(nq::gemm::kSlotStats1, size_t(2 * kChunk * ldt) * 4));
    float* ds = p + kChunk * ldt;
    float* qp = static_cast<float*>(arena_get(nq::gemm::kSlotStats2, size_t(2 * s.q_len * d) * 4));
    float* gp = qp + s.q_len * d;
    transpose(k + k_at(s, b, 0, kh), s.k_row_stride, s.kv_len, d, kt, ldt);
    transpose(v + v_at(s, b, 0, kh), s.v_row_stride, s.kv_len, d, vt, ldt);
    pack_rows(k + k_at(s, b, 0, kh), s.k_row_stride, s.kv_len, d, kp);
    for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
      pack_rows(q + q_at(s, b, 0, h), s.q_row_stride, s.q_len, d, qp);
      pack_rows(d_o + o_at(s, b, 0, h), s.q_heads * d, s.q_len, d, gp);
      for (int64_t c0 = 0; c0 < s.q_len; c0 += kChunk) {
        const int64_t c1 = std::min(s.q_len, c0 + kChunk);
        for (int64_t t0 = c0; t0 < c1; t0 += kRows) {
          const int rows = int(std::min<int64_t>(kRows, c1 - t0));
          const int64_t n16 = pad16(visible(s, t0 + rows - 1));
          float *pr = p + (t0 - c0) * ldt, *dsr = ds + (t0 - c0) * ldt;
          score_tile(qp + t0 * d, d, rows, kt, ldt, d, n16, pr, ldt);
          score_tile(gp + t0 * d, d, rows, vt, ldt, d, n16, dsr, ldt);  // dP
          for (int r = 0; r < rows; ++r) {
            float *pj = pr + r * ldt, *dj = dsr + r * ldt;
            exp_row(pj, visible(s, t0 + r), n16, s.scale, lse[lse_at(s, b, h, t0 + r)]);
            __m512 acc = _mm512_setzero_ps();
            for (int64_t j = 0; j < n16; j += 16)
              acc = _mm512_fmadd_ps(_mm512_loadu_ps(pj + j), _mm512_loadu_ps(dj + j), acc);
            const __m512 delta = _mm512_set1_ps(_mm512_reduce_add_ps(acc)), sc = _mm512_set1_ps(s.scale);
            for (int64_t j = 0; j < n16; j += 16) {  // dS = scale P (dP - delta); P = 0 masks hidden keys
              const __m512 pv = _mm512_loadu_ps(pj + j);
              _mm512_storeu_ps(dj + j, _mm512_mul_ps(_mm512_mul_ps(sc, pv), _mm512_sub_ps(_mm512_loadu_ps(dj + j), delta)));
            }
          }
          if (dq != nullptr)
            weighted_sum(rows, dsr, ldt, 1, kp, d, visible(s, t0 + rows - 1), d, dq + q_at(s, b, t0, h), s.q_row_stride,
                         true);
        }
        // Key j is seen by queries t >= j - offset; rows of P / dS are zero past their visible keys up to a
        // multiple of 16, which covers every 8-key block whose first key a row sees.
        const int64_t keys = visible(s, c1 - 1);
        for (int64_t j = 0; j < keys; j += kOutRows) {
          const int n = int(std::min<int64_t>(kOutRows, keys - j));
          const int64_t tf = std::max(c0, j - s.query_offset);
          const float* wp = p + (tf - c0) * ldt + j;
          const float* wd = ds + (tf - c0) * ldt + j;
          if (dv != nullptr)
            weighted_sum(n, wp, 1, ldt, gp + tf * d, d, c1 - tf, d, dv + v_at(s, b, j, kh), s.v_row_stride, true);
          if (dk != nullptr)
            weighted_sum(n, wd, 1, ldt, qp + tf * d, d, c1 - tf, d, dk + k_at(s, b, j, kh), s.k_row_stride, true);
        }
      }
    }
  }
}

}  // namespace nq::attention
