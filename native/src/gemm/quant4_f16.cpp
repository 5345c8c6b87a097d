// NQ_COMPUTE_F16 for 4-bit weights: chunk rule, scalar references and the driver's B packer (quant4_f16.h).
#include "gemm/quant4_f16.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm/quant4_weight.h"

namespace nq::gemm {

float f16_weight_chunk(const nq_quant4_weight& w, int64_t e0, int64_t stride, int len, uint16_t* vals,
                       int64_t vstride) {
  const float* code = quant4_code(w);
  const int bs_log2 = __builtin_ctz(unsigned(w.blocksize));
  const int64_t elast = e0 + (len - 1) * stride;
  if ((e0 >> bs_log2) == (elast >> bs_log2)) {
    for (int t = 0; t < len; ++t) vals[t * vstride] = f16_bits(code[quant4_nibble(w, e0 + t * stride)]);
    return quant4_absmax(w, e0 >> bs_log2);
  }
  float m = 0.0f;
  for (int t = 0; t < len; ++t) {
    const float a = std::fabs(quant4_absmax(w, (e0 + t * stride) >> bs_log2));
    if (a > m) m = a;  // NaN ignored: it still reaches the output through its values
  }
  const int s = f16_weight_shift(m);
  const float up = pow2f(s);
  for (int t = 0; t < len; ++t) {
    const int64_t e = e0 + t * stride;
    vals[t * vstride] = f16_bits(code[quant4_nibble(w, e)] * (quant4_absmax(w, e >> bs_log2) * up));
  }
  return pow2f(-s);
}

void quant4_gemm_f16_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y) {
  const int64_t K = w.k, nch = chunks_of(K);
  std::vector<uint16_t> av, bv(static_cast<size_t>(K));
  std::vector<float> ainv, bscale(static_cast<size_t>(nch));
  act_chunks(x, m, K, av, ainv);
  for (int64_t n = 0; n < w.n; ++n) {
    for (int64_t c = 0; c < nch; ++c)
      bscale[size_t(c)] = f16_weight_chunk(w, n * K + c * kF16Chunk, 1, chunk_len(K, c), &bv[size_t(c * kF16Chunk)], 1);
    for (int64_t i = 0; i < m; ++i)
      y[i * w.n + n] =
          dot_f16(&av[size_t(i * K)], &ainv[size_t(i * nch)], bv.data(), bscale.data(), K, 0.0f) +
          (bias ? bias[n] : 0.0f);
  }
}

void quant4_gemm_backward_f16_ref(const float* dy, int64_t m, const nq_quant4_weight& w, float beta, float* dx) {
  const int64_t N = w.n, nch = chunks_of(N);
  std::vector<uint16_t> av, bv(static_cast<size_t>(N));
  std::vector<float> ainv, bscale(static_cast<size_t>(nch));
  act_chunks(dy, m, N, av, ainv);
  for (int64_t k = 0; k < w.k; ++k) {
    for (int64_t c = 0; c < nch; ++c)
      bscale[size_t(c)] =
          f16_weight_chunk(w, c * kF16Chunk * w.k + k, w.k, chunk_len(N, c), &bv[size_t(c * kF16Chunk)], 1);
    for (int64_t i = 0; i < m; ++i) {
      float& o = dx[i * w.k + k];
      o = dot_f16(&av[size_t(i * N)], &ainv[size_t(i * nch)], bv.data(), bscale.data(), N,
                  beta == 0.0f ? 0.0f : beta * o + 0.0f);
    }
  }
}

void PackBQuant4F16::operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
  auto* o = static_cast<uint8_t*>(out);
  const int64_t panel_bytes = g.panel_elems * fmt_bytes(Fmt::F16C);
  int64_t j = 0;
  if (!backward && w.k % kF16Chunk == 0 && w.blocksize >= kF16Chunk)
    j = pack_b_quant4_f16_fwd_avx512fp16(w, o, panel_bytes, k0, kc, n0, nc);
  else if (backward && w.k % 16 == 0 && n0 % 16 == 0)
    j = pack_b_quant4_f16_bwd_avx512fp16(w, o, panel_bytes, k0, kc, n0, nc);
  // Remaining columns (and layouts the SIMD packers do not take) one chunk at a time.
  for (; j < nc; ++j) {
    uint8_t* panel = o + (j / kF16Nr) * panel_bytes;
    const int64_t col = j % kF16Nr;
    for (int64_t c = 0; c < chunks_of(kc); ++c) {
      uint8_t* chunk = panel + c * kF16BChunkBytes;
      const int64_t k = k0 + c * kF16Chunk;
      const int64_t e0 = backward ? k * w.k + n0 + j : (n0 + j) * w.k + k;
      const float s = f16_weight_chunk(w, e0, backward ? w.k : 1, chunk_len(kc, c),
                                       reinterpret_cast<uint16_t*>(chunk) + col, kF16Nr);
      std::memcpy(chunk + kF16BScaleOffset + col * 4, &s, 4);
    }
  }
}

}  // namespace nq::gemm
