// NQ_COMPUTE_INT8 operands and products of the fused output head (head_int8.h).
#include "loss/head_int8.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gemm/int8_pack.h"
#include "gemm/quant4_int8.h"

namespace nq::loss {
namespace {

using gemm::Ukernel;

int64_t align64(int64_t b) { return (b + 63) / 64 * 64; }

// Bytes of one micro-panel of `kcp` k for uk's B.
struct PanelBytes {
  const Ukernel* uk;
  int64_t operator()(int64_t kcp) const { return uk->nr * kcp * gemm::fmt_bytes(uk->b_fmt); }
};

// The scales of a block after its operands: sw (kInt8Block), sb (c), colterm (c).
struct Scales {
  float* sw;
  float* sb;
  int32_t* colterm;
  static int64_t bytes(int64_t c) { return align64(kInt8Block * 4) + 2 * align64(c * 4); }
  Scales(uint8_t* at, int64_t c)
      : sw(reinterpret_cast<float*>(at)),
        sb(reinterpret_cast<float*>(at + align64(kInt8Block * 4))),
        colterm(reinterpret_cast<int32_t*>(at + align64(kInt8Block * 4) + align64(c * 4))) {}
};

// A row of E' shifted by -h = -max/2 onto [-h, h], so quantize_row's symmetric int8 is the 255 levels of
// [0, max]: q = round((e - h) * 127 / h), e ~ (q + 127) * h / 127 (h itself is |max - h|, exact).
struct ShiftedRow {
  const float* e;
  float h;
  float at(int64_t j) const { return e[j] - h; }
  __m256 at8(int64_t j) const { return _mm256_sub_ps(_mm256_loadu_ps(e + j), _mm256_set1_ps(h)); }
};

// max(a, |b|), NaN sticky.
float max_abs(float a, float b) {
  b = std::fabs(b);
  return a != a || b != b ? std::numeric_limits<float>::quiet_NaN() : std::max(a, b);
}

}  // namespace

int64_t int8_block_plain_bytes(int64_t c) { return 2 * align64(kInt8Block * c) + Scales::bytes(c); }

int64_t int8_x_bytes(const Ukernel* uk, int64_t n, int64_t c) {
  return align64(n * c) + 2 * align64(n * 4) + (uk ? gemm::prepack_bytes(*uk, n, c) : 0);
}

Int8BlockOps int8_block_quantize(const float* wb, int64_t vb, int64_t c, uint8_t* out) {
  auto* qw = reinterpret_cast<int8_t*>(out);
  auto* qb = qw + align64(kInt8Block * c);
  const Scales s(out + 2 * align64(kInt8Block * c), c);
  for (int64_t v = 0; v < vb; ++v) s.sw[v] = gemm::quantize_row(c, gemm::PlainRow{wb + v * c}, qw + v * c) / 127.0f;
  std::fill(s.sb, s.sb + c, 0.0f);
  for (int64_t v = 0; v < vb; ++v)
    for (int64_t j = 0; j < c; ++j) s.sb[j] = max_abs(s.sb[j], wb[v * c + j]);
  std::fill(s.colterm, s.colterm + c, 0);
  for (int64_t j = 0; j < c; ++j) {
    const float inv = s.sb[j] > 0.0f ? 127.0f / s.sb[j] : 0.0f;  // a NaN column keeps sb NaN: outputs NaN
    int32_t sum = 0;
    for (int64_t v = 0; v < vb; ++v) sum += qb[v * c + j] = gemm::q8_of(wb[v * c + j], inv);
    s.colterm[j] = 127 * sum;
    s.sb[j] /= 127.0f;
  }
  return {qw, s.sw, qb, s.sb, s.colterm};
}

Int8X int8_x_quantize(const Ukernel* uk, const float* x, int64_t n, int64_t c, uint8_t* out) {
  auto* qx = reinterpret_cast<int8_t*>(out);
  auto* sx = reinterpret_cast<float*>(out + align64(n * c));
  auto* corr = reinterpret_cast<int32_t*>(out + align64(n * c) + align64(n * 4));
  for (int64_t i = 0; i < n; ++i) {
    int32_t qsum = 0;
    sx[i] = (uk ? gemm::quantize_row_avx2(c, gemm::PlainRow{x + i * c}, qx + i * c, &qsum)
                : gemm::quantize_row(c, gemm::PlainRow{x + i * c}, qx + i * c)) /
            127.0f;
    corr[i] = uk ? gemm::offset_correction(qsum, uk->b_fmt) : 0;  // the plain loops add no offset
  }
  Int8X r{qx, sx, corr, {}};
  if (uk)
    r.a = gemm::prepack_a(*uk, n, c, gemm::PackAInt8{qx, c, uk->a_fmt},
                          out + align64(n * c) + 2 * align64(n * 4));
  return r;
}

int64_t int8_block_packed_bytes(const Ukernel& uk, int64_t c) {
  const PanelBytes pb{&uk};
  return align64(gemm::prepack_b_bytes(uk, c, kInt8Block, pb)) + align64(gemm::prepack_b_bytes(uk, kInt8Block, c, pb)) +
         Scales::bytes(c);
}

Int8BlockOps int8_block_packed_at(const Ukernel& uk, int64_t, int64_t c, const uint8_t* at) {
  const PanelBytes pb{&uk};
  const int64_t fwd = align64(gemm::prepack_b_bytes(uk, c, kInt8Block, pb));
  const int64_t bwd = align64(gemm::prepack_b_bytes(uk, kInt8Block, c, pb));
  const Scales s(const_cast<uint8_t*>(at + fwd + bwd), c);
  return {nullptr, s.sw, nullptr, s.sb, s.colterm, at, at + fwd};
}

void int8_block_pack(const Ukernel& uk, const float* wb, int64_t vb, int64_t c, uint8_t* plain, uint8_t* out) {
  const Int8BlockOps q = int8_block_quantize(wb, vb, c, plain);
  const Int8BlockOps p = int8_block_packed_at(uk, vb, c, out);
  std::copy(q.sw, q.sw + vb, const_cast<float*>(p.sw));
  std::copy(q.sb, q.sb + c, const_cast<float*>(p.sb));
  std::copy(q.colterm, q.colterm + c, const_cast<int32_t*>(p.colterm));
  const PanelBytes pb{&uk};
  gemm::prepack_b(uk, c, vb, gemm::PackBInt8{q.qw, c, uk.b_fmt}, pb, const_cast<uint8_t*>(p.fwd));
  gemm::prepack_b(uk, vb, c, gemm::PackBInt8Bwd{q.qb, c, uk.b_fmt}, pb, const_cast<uint8_t*>(p.bwd));
}

void int8_logits(const Ukernel* uk, const Int8X& x, int64_t n, int64_t c, const Int8BlockOps& b, int64_t vb,
                 float* l) {
  auto* acc = reinterpret_cast<int32_t*>(l);  // sums in l, each row (tile) turned into floats in place
  if (!uk) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t v = 0; v < vb; ++v) {
        int32_t s = 0;
        for (int64_t k = 0; k < c; ++k) s += int32_t(x.qx[i * c + k]) * b.qw[v * c + k];
        acc[i * vb + v] = s;
      }
      gemm::int8_out_row(acc + i * vb, 0, nullptr, x.sx[i], b.sw, nullptr, 1.0f, vb, l + i * vb);
    }
    return;
  }
  const auto epilogue = [&](int32_t* tile, int64_t ld, int64_t i0, int64_t j0, int rows, int cols) {
    for (int r = 0; r < rows; ++r)
      gemm::int8_out_row(tile + r * ld, x.corr[i0 + r], nullptr, x.sx[i0 + r], b.sw + j0, nullptr, 1.0f, cols,
                         reinterpret_cast<float*>(tile + r * ld));
  };
  if (b.fwd)
    gemm::run_gemm<int32_t>(*uk, n, vb, c, x.a, gemm::prepacked_b_at(*uk, c, vb, PanelBytes{uk}, b.fwd), acc, vb, false,
                            epilogue);
  else
    gemm::run_gemm<int32_t>(*uk, n, vb, c, x.a, gemm::PackBInt8{b.qw, c, uk->b_fmt}, acc, vb, false, epilogue);
}

int32_t int8_e_row(const Ukernel* uk, const float* e, int64_t vb, int8_t* qe, float* se) {
  float mx = 0.0f;  // a NaN is caught by quantize_row below, whatever h it leaves
  for (int64_t v = 0; v < vb; ++v) mx = std::max(mx, e[v]);
  const ShiftedRow row{e, 0.5f * mx};
  int32_t qsum = 0;
  *se = (uk ? gemm::quantize_row_avx2(vb, row, qe, &qsum) : gemm::quantize_row(vb, row, qe)) / 127.0f;
  return uk ? gemm::offset_correction(qsum, uk->b_fmt) : 0;
}

void int8_u_accumulate(const Ukernel* uk, const int8_t* qe, const float* se, const int32_t* corr, int64_t n,
                       int64_t vb, int64_t c, const Int8BlockOps& b, bool first, int32_t* acc, float* u) {
  if (!uk) {
    for (int64_t i = 0; i < n; ++i) {
      int32_t* a = acc + i * c;
      std::fill(a, a + c, 0);
      for (int64_t v = 0; v < vb; ++v)
        for (int64_t j = 0; j < c; ++j) a[j] += int32_t(qe[i * vb + v]) * b.qb[v * c + j];
      float* ur = u + i * c;
      gemm::int8_out_row(a, 0, b.colterm, se[i], b.sb, first ? nullptr : ur, 1.0f, c, ur);
    }
    return;
  }
  const auto epilogue = [&](int32_t* tile, int64_t ld, int64_t i0, int64_t j0, int rows, int cols) {
    for (int r = 0; r < rows; ++r) {
      float* ur = u + (i0 + r) * c + j0;
      gemm::int8_out_row(tile + r * ld, corr[i0 + r], b.colterm + j0, se[i0 + r], b.sb + j0, first ? nullptr : ur,
                         1.0f, cols, ur);
    }
  };
  const gemm::PackAInt8 a{qe, vb, uk->a_fmt};
  if (b.bwd)
    gemm::run_gemm<int32_t>(*uk, n, c, vb, a, gemm::prepacked_b_at(*uk, vb, c, PanelBytes{uk}, b.bwd), acc, c, false,
                            epilogue);
  else
    gemm::run_gemm<int32_t>(*uk, n, c, vb, a, gemm::PackBInt8Bwd{b.qb, c, uk->b_fmt}, acc, c, false, epilogue);
}

}  // namespace nq::loss
