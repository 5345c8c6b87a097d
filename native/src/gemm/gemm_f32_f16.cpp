// NQ_COMPUTE_F16 for fp32 x fp32 GEMM: scalar reference and the driver's packers (gemm_f32_f16.h).
#include "gemm/gemm_f32_f16.h"

#include <vector>

#include "gemm/f16_chunk.h"

namespace nq::gemm {

void gemm_f32_f16_ref(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                      float beta, const float* bias, float* c) {
  const int64_t nch = chunks_of(k);
  std::vector<float> rows(static_cast<size_t>(m * k)), col(static_cast<size_t>(k)), bscale(static_cast<size_t>(nch)),
      ainv;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) rows[size_t(i * k + p)] = ta ? a[p * m + i] : a[i * k + p];
  std::vector<uint16_t> av, bv(static_cast<size_t>(k));
  act_chunks(rows.data(), m, k, av, ainv);
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t p = 0; p < k; ++p) col[size_t(p)] = tb ? b[j * k + p] : b[p * n + j];
    for (int64_t ch = 0; ch < nch; ++ch)
      bscale[size_t(ch)] =
          f16_b_chunk(&col[size_t(ch * kF16Chunk)], 1, chunk_len(k, ch), &bv[size_t(ch * kF16Chunk)], 1);
    for (int64_t i = 0; i < m; ++i) {
      float& o = c[i * n + j];
      // As the fast path: C = beta*C + bias first (beta = 0 never reads C), then the chunks.
      const float c0 = (beta == 0.0f ? 0.0f : beta * o) + (bias ? bias[j] : 0.0f);
      o = dot_f16(&av[size_t(i * k)], &ainv[size_t(i * nch)], bv.data(), bscale.data(), k, c0);
    }
  }
}

void PackAF32F16::operator()(void* out, const PackGeom& g, int64_t i0, int rows, int64_t k0, int64_t kc) const {
  if (!trans) return PackAF16{a, k, m}(out, g, i0, rows, k0, kc);
  // A stored (K, M): gather the rows (not hot: A is the small operand of these products).
  alignas(64) float x[kF16Mr][kBPanelBytes / 4];  // kc <= KC = 384 for Fmt::F16C
  for (int64_t p = 0; p < kc; ++p)
    for (int r = 0; r < rows; ++r) x[r][p] = a[(k0 + p) * m + i0 + r];
  pack_a_f16_avx512fp16(&x[0][0], kBPanelBytes / 4, rows, kc, static_cast<uint8_t*>(out));
}

void PackBF32F16::operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
  pack_b_f32_f16_avx512fp16(trans ? b + n0 * k + k0 : b + k0 * n + n0, trans ? k : n, trans, static_cast<uint8_t*>(out),
                            g.panel_elems * fmt_bytes(Fmt::F16C), kc, nc);
}

int64_t f16_prepack_bytes(int64_t m, int64_t k) { return prepack_bytes(kUkF16Avx512, m, k); }

PrepackedA f16_prepack_a(const float* x, int64_t m, int64_t k, uint8_t* out) {
  return prepack_a(kUkF16Avx512, m, k, PackAF32F16{x, m, k, false}, out);
}

void gemm_f16_prepacked_a(const PrepackedA& x, int64_t m, int64_t k, const float* b, int64_t n, bool trans_b, float* c) {
  run_gemm<float>(kUkF16Avx512, m, n, k, x, PackBF32F16{b, n, k, trans_b}, c, n, false);
}

namespace {
// Bytes of a packed B micro-panel of kcp k: its chunks.
int64_t f16_b_panel_bytes(int64_t kcp) { return kcp / kF16Chunk * kF16BChunkBytes; }
}  // namespace

int64_t f16_prepack_b_bytes(int64_t k, int64_t n) { return prepack_b_bytes(kUkF16Avx512, k, n, f16_b_panel_bytes); }

PrepackedB f16_prepacked_b_at(int64_t k, int64_t n, const uint8_t* at) {
  return prepacked_b_at(kUkF16Avx512, k, n, f16_b_panel_bytes, at);
}

PrepackedB f16_prepack_b(const float* b, int64_t k, int64_t n, bool trans, uint8_t* out) {
  return prepack_b(kUkF16Avx512, k, n, PackBF32F16{b, n, k, trans}, f16_b_panel_bytes, out);
}

void gemm_f16_prepacked(const PrepackedA& x, int64_t m, int64_t k, const PrepackedB& b, int64_t n, float* c) {
  run_gemm<float>(kUkF16Avx512, m, n, k, x, b, c, n, false);
}

void gemm_f16_prepacked_b(const float* a, int64_t m, int64_t k, const PrepackedB& b, int64_t n, bool accumulate,
                          float* c) {
  run_gemm<float>(kUkF16Avx512, m, n, k, PackAF32F16{a, m, k, false}, b, c, n, accumulate);
}

}  // namespace nq::gemm
