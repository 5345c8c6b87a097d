// fp32 small-M product with B read row by row: C (m,n) = beta*C + op(A) (m,k) B (k,n) + bias for
// m <= kGemvMaxM, B row-major (the input gradient dX = dY W of a Linear layer at decode-sized M).
// The blocked driver would pack all of B for an 8-row tile that is mostly padding; here each
// thread owns a range of 64-column blocks and walks B's k rows once, m x 4 accumulators per
// block, so B is read once with no copy. Rows of B are n floats apart: the streamer does not
// follow them, so the block 8 rows ahead is prefetched. K is summed in the driver's KC blocks and
// C updated as it does (c_update_avx512.h): the same bits as the blocked path at any M.
#include <immintrin.h>

#include "gemm/c_update_avx512.h"
#include "gemm/gemm_f32.h"
#include "gemm/gemv.h"

namespace nq::gemm {
namespace {

constexpr int kVecs = 4;          // zmm accumulators per row: a block is 64 columns
constexpr int64_t kAhead = 8;     // rows of B prefetched ahead

// Columns [j0, j0 + cols) with cols <= 64; A(i, p) = a[i * a_rs + p * a_ks].
template <int M>
void block(int64_t j0, int cols, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ks,
           const float* b, float beta, const float* bias, float* c) {
  __mmask16 mask[kVecs];
#pragma GCC unroll 4
  for (int u = 0; u < kVecs; ++u) {
    const int left = cols - 16 * u;
    mask[u] = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  }
  for (int64_t p0 = 0; p0 < k; p0 += kKcF32) {
    const int64_t p1 = std::min(k, p0 + kKcF32);
    __m512 acc[M][kVecs];  // fully unrolled loops keep every array here in registers
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
      for (int u = 0; u < kVecs; ++u) acc[i][u] = _mm512_setzero_ps();
    const float* bp = b + p0 * n + j0;
    for (int64_t p = p0; p < p1; ++p, bp += n) {
      if (p + kAhead < k)
#pragma GCC unroll 4
        for (int u = 0; u < kVecs; ++u)
          _mm_prefetch(reinterpret_cast<const char*>(bp + kAhead * n + 16 * u), _MM_HINT_T0);
      __m512 bv[kVecs];
#pragma GCC unroll 4
      for (int u = 0; u < kVecs; ++u) bv[u] = _mm512_maskz_loadu_ps(mask[u], bp + 16 * u);
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const __m512 ai = _mm512_set1_ps(a[i * a_rs + p * a_ks]);
#pragma GCC unroll 4
        for (int u = 0; u < kVecs; ++u) acc[i][u] = _mm512_fmadd_ps(ai, bv[u], acc[i][u]);
      }
    }
#pragma GCC unroll 4
    for (int u = 0; u < kVecs; ++u)
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        float* ci = c + i * n + j0 + 16 * u;
        const float* bias_u = bias ? bias + j0 + 16 * u : nullptr;
        _mm512_mask_storeu_ps(ci, mask[u], c_update(acc[i][u], mask[u], ci, beta, bias_u, p0 == 0));
      }
  }
}

template <int M>
void blocks(int64_t b0, int64_t b1, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ks,
            const float* b, float beta, const float* bias, float* c) {
  for (int64_t blk = b0; blk < b1; ++blk) {
    const int64_t j0 = blk * 16 * kVecs;
    block<M>(j0, int(std::min<int64_t>(16 * kVecs, n - j0)), n, k, a, a_rs, a_ks, b, beta, bias, c);
  }
}

}  // namespace

void gemv_f32_nn_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ks,
                        const float* b, float beta, const float* bias, float* c) {
  const int64_t nblk = (n + 16 * kVecs - 1) / (16 * kVecs);
  for_row_ranges(nblk, n * k * 4 * m, [&](int64_t b0, int64_t b1) {
    switch (m) {
      case 1: blocks<1>(b0, b1, n, k, a, a_rs, a_ks, b, beta, bias, c); break;
      case 2: blocks<2>(b0, b1, n, k, a, a_rs, a_ks, b, beta, bias, c); break;
      case 3: blocks<3>(b0, b1, n, k, a, a_rs, a_ks, b, beta, bias, c); break;
      default: blocks<4>(b0, b1, n, k, a, a_rs, a_ks, b, beta, bias, c); break;
    }
  });
}

}  // namespace nq::gemm
