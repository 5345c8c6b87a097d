// Blocked causal attention driver shared by the AVX2 and AVX-512 paths (include only from those files:
// everything here has internal linkage, so each ISA's translation unit keeps its own copy).
//
// The loop nests, work split and buffers live here; an ISA supplies a kernel set K (NQ_ATTENTION_ENTRY_POINTS,
// at the end, builds it from the ISA file's kernels):
//   K::kRows                                     query rows per score tile
//   K::kOutRows                                  keys per dk/dv weighted-sum pass (a divisor of 16)
//   K::transpose(x, ldx, n, d, xt, ldt)           xt (d, ldt) = X^T, columns n..pad16(n) zero
//   K::score_tile(a, lda, rows, bt, ldb, d, n16, s, lds)   s (rows, n16) = A B^T, rows <= kRows
//   K::score_row(a, b, ldb, d, n, s)               s (n) = a . B_j read in place (decoding)
//   K::weighted_sum(rows, w, wr, wc, x, ldx, n, d, y, ldy, add)
//       Y_r (+)= sum_{j<n} w[r wr + j wc] X_j for r < rows <= max(kRows, kOutRows)
//   K::max_row(s, n), K::exp_row(s, vis, n16, scale, shift) -> sum, K::scale_row(s, n16, f)
//   K::softmax_grad_row(p, dp, n16, scale)         dp := scale p (dp - sum_j p_j dp_j)
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "attention/attention.h"
#include "cpu/cpu.h"
#include "gemm/arena.h"

namespace nq::attention {
namespace {

constexpr int kChunk = 64;  // query rows per forward work item
// Query rows per backward P / dS buffer: each chunk adds its sums into every dk and dv row it reaches (a read
// and write of rows at model strides), so training sequences (T <= 256: P, dS 2 x 272 KiB, in L2) take one.
constexpr int kBackChunk = 256;
constexpr int64_t kParallelWork = int64_t(1) << 18;  // multiply-adds of QK^T below which one thread runs

inline int64_t pad16(int64_t n) { return (n + 15) & ~int64_t(15); }
// Row stride of transposed keys and of P / dS: whole 16-key blocks, and an odd number of them so that
// walking a column (one float per row) spreads over the L1 sets instead of a few (1 KiB strides alias).
inline int64_t key_stride(int64_t s) { return pad16(s) / 16 % 2 == 1 ? pad16(s) : pad16(s) + 16; }

// Rows X_j = x + j * ldx (j < n, d floats each) copied to (n, d) contiguous: model strides (3C or H*D floats,
// multiples of 1 KiB) map a head's rows onto a few L1 sets, and packed rows stream with the prefetchers.
inline void pack_rows(const float* x, int64_t ldx, int64_t n, int64_t d, float* out) {
  for (int64_t j = 0; j < n; ++j) std::memcpy(out + j * d, x + j * ldx, size_t(d) * 4);
}

inline int threads_for(const nq_attention_shape& s) {
  const int64_t work = s.batch * s.q_heads * s.q_len * s.kv_len * s.head_dim;
  return work < kParallelWork ? 1 : nq::cpu::num_threads();
}

// Items (b, h, chunk of kChunk queries) in groups of as many heads as threads, latest chunks (most keys)
// first within a group for the dynamic schedule: threads start on different heads. With T >= kRows the
// first item of each kv head transposes its keys and packs its values into a shared buffer (later items of
// that head wait for it: no team-wide barrier that a descheduled thread would hold up); fewer queries
// (decoding) read k and v in place, as copying would cost more than using them.
template <class K>
void forward_blocked(const nq_attention_shape& s, const float* q, const float* k, const float* v, float* o,
                     float* lse) {
  using nq::gemm::arena_get;
  const int64_t d = s.head_dim, group = s.q_heads / s.kv_heads, ldt = key_stride(s.kv_len);
  const bool packed = s.q_len >= K::kRows;
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
    float* sc = static_cast<float*>(arena_get(nq::gemm::kSlotStats0, size_t(K::kRows * ldt) * 4));  // (kRows, ldt)
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < s.batch * s.q_heads * chunks; ++item) {
      const int64_t g = item / (nt * chunks), in = item % (nt * chunks);
      const int64_t width = std::min<int64_t>(nt, s.batch * s.q_heads - g * nt);  // heads in group g
      const int64_t chunk = chunks - 1 - in / width, bh = g * nt + in % width, b = bh / s.q_heads, h = bh % s.q_heads;
      const int64_t kh = h / group, t1 = std::min(s.q_len, (chunk + 1) * kChunk), i = b * s.kv_heads + kh;
      const float* kt = packed ? kv + i * head_size : nullptr;
      const float* vh = packed ? kt + d * ldt : v + v_at(s, b, 0, kh);
      const int64_t ldv = packed ? d : s.v_row_stride;
      if (packed) {
        int32_t expected = 0;
        if (__atomic_compare_exchange_n(&state[i], &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
          K::transpose(k + k_at(s, b, 0, kh), s.k_row_stride, s.kv_len, d, kv + i * head_size, ldt);
          pack_rows(v + v_at(s, b, 0, kh), s.v_row_stride, s.kv_len, d, kv + i * head_size + d * ldt);
          __atomic_store_n(&state[i], 2, __ATOMIC_RELEASE);
        } else {
          while (__atomic_load_n(&state[i], __ATOMIC_ACQUIRE) != 2) _mm_pause();
        }
      }
      for (int64_t t0 = chunk * kChunk; t0 < t1; t0 += K::kRows) {
        const int rows = int(std::min<int64_t>(K::kRows, t1 - t0));
        const int64_t n16 = pad16(visible(s, t0 + rows - 1));
        if (packed)
          K::score_tile(q + q_at(s, b, t0, h), s.q_row_stride, rows, kt, ldt, d, n16, sc, ldt);
        else
          for (int r = 0; r < rows; ++r)
            K::score_row(q + q_at(s, b, t0 + r, h), k + k_at(s, b, 0, kh), s.k_row_stride, d, visible(s, t0 + r),
                         sc + r * ldt);
        for (int r = 0; r < rows; ++r) {
          float* row = sc + r * ldt;
          const int64_t vis = visible(s, t0 + r);
          const float mx = s.scale * K::max_row(row, vis);
          const float sum = K::exp_row(row, vis, n16, s.scale, mx);
          K::scale_row(row, n16, 1.0f / sum);
          if (lse != nullptr) lse[lse_at(s, b, h, t0 + r)] = mx + std::log(sum);
        }
        K::weighted_sum(rows, sc, ldt, 1, vh, ldv, visible(s, t0 + rows - 1), d, o + o_at(s, b, t0, h),
                        s.q_heads * d, false);
      }
    }
  }
}

// Items (b, kv head): one owns its dk/dv rows, so no two threads add into the same gradient row.
// Per query head of the group and chunk of kBackChunk queries: recompute P (from lse) and dS for the
// chunk into (kBackChunk, ldt) buffers, add dS K into dq, then P^T dO into dv and dS^T Q into dk with
// each key's output rows held in registers across the chunk's queries that see it.
template <class K>
void backward_blocked(const nq_attention_shape& s, const float* q, const float* k, const float* v,
                      const float* d_o, const float* lse, float* dq, float* dk, float* dv) {
  using nq::gemm::arena_get;
  static_assert(16 % K::kOutRows == 0, "key blocks must not straddle the 16-key blocks that P / dS rows fill");
  const int64_t d = s.head_dim, group = s.q_heads / s.kv_heads, ldt = key_stride(s.kv_len);
  const int nt = threads_for(s);
#pragma omp parallel for schedule(dynamic) num_threads(nt) if (nt > 1)
  for (int64_t item = 0; item < s.batch * s.kv_heads; ++item) {
    const int64_t b = item / s.kv_heads, kh = item % s.kv_heads;
    // K^T, V^T (d, ldt) and K (S, d); P and dS (chunk, ldt); this head's Q and dO (T, d)
    float* kt = static_cast<float*>(arena_get(nq::gemm::kSlotStats0, size_t(2 * d * ldt + s.kv_len * d) * 4));
    float *vt = kt + d * ldt, *kp = vt + d * ldt;
    const int64_t chunk = std::min<int64_t>(kBackChunk, s.q_len);
    float* p = static_cast<float*>(arena_get(nq::gemm::kSlotStats1, size_t(2 * chunk * ldt) * 4));
    float* ds = p + chunk * ldt;
    float* qp = static_cast<float*>(arena_get(nq::gemm::kSlotStats2, size_t(2 * s.q_len * d) * 4));
    float* gp = qp + s.q_len * d;
    K::transpose(k + k_at(s, b, 0, kh), s.k_row_stride, s.kv_len, d, kt, ldt);
    K::transpose(v + v_at(s, b, 0, kh), s.v_row_stride, s.kv_len, d, vt, ldt);
    pack_rows(k + k_at(s, b, 0, kh), s.k_row_stride, s.kv_len, d, kp);
    for (int64_t h = kh * group; h < (kh + 1) * group; ++h) {
      pack_rows(q + q_at(s, b, 0, h), s.q_row_stride, s.q_len, d, qp);
      pack_rows(d_o + o_at(s, b, 0, h), s.q_heads * d, s.q_len, d, gp);
      for (int64_t c0 = 0; c0 < s.q_len; c0 += chunk) {
        const int64_t c1 = std::min(s.q_len, c0 + chunk);
        for (int64_t t0 = c0; t0 < c1; t0 += K::kRows) {
          const int rows = int(std::min<int64_t>(K::kRows, c1 - t0));
          const int64_t n16 = pad16(visible(s, t0 + rows - 1));
          float *pr = p + (t0 - c0) * ldt, *dsr = ds + (t0 - c0) * ldt;
          K::score_tile(qp + t0 * d, d, rows, kt, ldt, d, n16, pr, ldt);
          K::score_tile(gp + t0 * d, d, rows, vt, ldt, d, n16, dsr, ldt);  // dP
          for (int r = 0; r < rows; ++r) {  // P = 0 past the visible keys, so dS is too
            K::exp_row(pr + r * ldt, visible(s, t0 + r), n16, s.scale, lse[lse_at(s, b, h, t0 + r)]);
            K::softmax_grad_row(pr + r * ldt, dsr + r * ldt, n16, s.scale);
          }
          if (dq != nullptr)
            K::weighted_sum(rows, dsr, ldt, 1, kp, d, visible(s, t0 + rows - 1), d, dq + q_at(s, b, t0, h),
                            s.q_row_stride, true);
        }
        // Key j is seen by queries t >= j - offset; rows of P / dS are zero past their visible keys up to a
        // multiple of 16, which covers every kOutRows-key block whose first key a row sees.
        const int64_t keys = visible(s, c1 - 1);
        for (int64_t j = 0; j < keys; j += K::kOutRows) {
          const int n = int(std::min<int64_t>(K::kOutRows, keys - j));
          const int64_t tf = std::max(c0, j - s.query_offset);
          const float* wp = p + (tf - c0) * ldt + j;
          const float* wd = ds + (tf - c0) * ldt + j;
          if (dv != nullptr)
            K::weighted_sum(n, wp, 1, ldt, gp + tf * d, d, c1 - tf, d, dv + v_at(s, b, j, kh), s.v_row_stride, true);
          if (dk != nullptr)
            K::weighted_sum(n, wd, 1, ldt, qp + tf * d, d, c1 - tf, d, dk + k_at(s, b, j, kh), s.k_row_stride, true);
        }
      }
    }
  }
}

}  // namespace
}  // namespace nq::attention

// The including ISA file's kernel set (its kernels above, found by name in nq::attention's unnamed namespace)
// and its entry points forward_<isa> / backward_<isa> (attention.h). Expand once, at the end of the file,
// inside namespace nq::attention.
#define NQ_ATTENTION_ENTRY_POINTS(isa)                                                                         \
  namespace {                                                                                                  \
  struct Kernels_##isa {                                                                                       \
    static constexpr int kRows = nq::attention::kRows, kOutRows = nq::attention::kOutRows;                     \
    static constexpr auto transpose = nq::attention::transpose;                                                \
    static constexpr auto score_tile = nq::attention::score_tile;                                              \
    static constexpr auto score_row = nq::attention::score_row;                                                \
    static constexpr auto weighted_sum = nq::attention::weighted_sum;                                          \
    static constexpr auto max_row = nq::attention::max_row;                                                    \
    static constexpr auto exp_row = nq::attention::exp_row;                                                    \
    static constexpr auto scale_row = nq::attention::scale_row;                                                \
    static constexpr auto softmax_grad_row = nq::attention::softmax_grad_row;                                  \
  };                                                                                                           \
  }                                                                                                            \
  void forward_##isa(const nq_attention_shape& s, const float* q, const float* k, const float* v, float* o,    \
                     float* lse) {                                                                             \
    forward_blocked<Kernels_##isa>(s, q, k, v, o, lse);                                                        \
  }                                                                                                            \
  void backward_##isa(const nq_attention_shape& s, const float* q, const float* k, const float* v,             \
                      const float* d_o, const float* lse, float* dq, float* dk, float* dv) {                   \
    backward_blocked<Kernels_##isa>(s, q, k, v, d_o, lse, dq, dk, dv);                                         \
  }
