// A 4-bit weight for the GEMM tests, built with the library's own quantizers (plain or
// double-quantized absmax), plus its dequantised copy and the float64 products with it.
#pragma once

#include "test_gemm_common.h"

namespace gemm_test {

struct Q4 {
  std::vector<uint8_t> packed, absmax_q;
  std::vector<float> absmax, nested, dyn_code, deq;
  nq_quant4_weight w{};
};

inline Q4 make_weight(int64_t n, int64_t k, int32_t bs, nq_quant4_type type, bool double_quant, uint64_t seed,
                      float scale = 1.0f) {
  Q4 q;
  const auto wf = randn(size_t(n * k), seed, scale);
  const int64_t blocks = (n * k + bs - 1) / bs;
  q.packed.resize(size_t(n * k / 2));
  q.absmax.resize(size_t(blocks));
  EXPECT_EQ(nq_quant4_quantize(type, wf.data(), n * k, bs, q.packed.data(), q.absmax.data()), NQ_OK)
      << nq_last_error_message();
  q.w.packed = q.packed.data();
  q.w.n = n;
  q.w.k = k;
  q.w.blocksize = bs;
  q.w.type = type;
  if (double_quant) {
    q.dyn_code.resize(256);
    EXPECT_EQ(nq_dynamic_map_create(1, q.dyn_code.data()), NQ_OK);
    q.absmax_q.resize(size_t(blocks));
    q.nested.resize(size_t((blocks + 255) / 256));
    EXPECT_EQ(nq_absmax_compress(q.absmax.data(), blocks, 256, q.dyn_code.data(), q.absmax_q.data(),
                                 q.nested.data(), &q.w.nested_offset),
              NQ_OK)
        << nq_last_error_message();
    q.w.absmax_q = q.absmax_q.data();
    q.w.nested_absmax = q.nested.data();
    q.w.nested_code = q.dyn_code.data();
    q.w.nested_blocksize = 256;
    // The effective absmax is the decompressed one.
    EXPECT_EQ(nq_absmax_decompress(q.absmax_q.data(), q.nested.data(), q.w.nested_offset, blocks, 256,
                                   q.dyn_code.data(), q.absmax.data()),
              NQ_OK);
  } else {
    q.w.absmax = q.absmax.data();
  }
  q.deq.resize(size_t(n * k));
  EXPECT_EQ(nq_quant4_dequantize(type, q.packed.data(), q.absmax.data(), n * k, bs, q.deq.data()), NQ_OK);
  return q;
}

// y = x W^T + bias in float64.
inline std::vector<double> forward64(const std::vector<float>& x, int64_t m, const Q4& q, const float* bias) {
  const int64_t n = q.w.n, k = q.w.k;
  std::vector<double> y(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = bias ? bias[j] : 0.0;
      for (int64_t t = 0; t < k; ++t) s += double(x[size_t(i * k + t)]) * q.deq[size_t(j * k + t)];
      y[size_t(i * n + j)] = s;
    }
  return y;
}

// dx = beta * dx0 + dy W in float64.
inline std::vector<double> backward64(const std::vector<float>& dy, int64_t m, const Q4& q, float beta,
                                      const std::vector<float>& dx0) {
  const int64_t n = q.w.n, k = q.w.k;
  std::vector<double> dx(size_t(m * k));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t = 0; t < k; ++t) {
      double s = beta == 0.0f ? 0.0 : double(beta) * dx0[size_t(i * k + t)];
      for (int64_t j = 0; j < n; ++j) s += double(dy[size_t(i * n + j)]) * q.deq[size_t(j * k + t)];
      dx[size_t(i * k + t)] = s;
    }
  return dx;
}

// A GEMM test shape: M rows, W (n, k) in blocks of bs.
struct Case {
  int64_t m, n, k;
  int32_t bs;
};

// One forward problem of the 4-bit GEMM tests: variant v 0 = NF4, 1 = FP4, 2 = NF4 double-quantized; x, bias
// and the float64 product.
struct ForwardProblem {
  Q4 q;
  std::vector<float> x, bias;
  std::vector<double> y64;
  ForwardProblem(int64_t m, int64_t n, int64_t k, int32_t bs, int v)
      : q(make_weight(n, k, bs, v == 1 ? NQ_QUANT4_FP4 : NQ_QUANT4_NF4, v == 2, uint64_t(n * 31 + k + v))),
        x(randn(size_t(m * k), uint64_t(m + k * 7 + v))),
        bias(randn(size_t(n), 99)),
        y64(forward64(x, m, q, bias.data())) {}
};

// One backward problem: beta 0 / 1 / 0.5 picks NF4 / FP4 / NF4 double-quantized; dy, the old dx and the float64
// result.
struct BackwardProblem {
  Q4 q;
  std::vector<float> dy, dx0;
  std::vector<double> dx64;
  BackwardProblem(int64_t m, int64_t n, int64_t k, int32_t bs, float beta)
      : q(make_weight(n, k, bs, beta == 1.0f ? NQ_QUANT4_FP4 : NQ_QUANT4_NF4, beta == 0.5f,
                      uint64_t(n * 17 + k + (beta == 0.5f ? 2 : beta == 1.0f ? 1 : 0)))),
        dy(randn(size_t(m * n), uint64_t(m * 5 + n + (beta == 0.5f ? 2 : beta == 1.0f ? 1 : 0)))),
        dx0(randn(size_t(m * k), 7)),
        dx64(backward64(dy, m, q, beta, dx0)) {}
  // The output buffer before the call: NaN when beta = 0 (must be overwritten), else the old dx.
  std::vector<float> initial(float beta) const { return beta == 0.0f ? poisoned(dx0.size()) : dx0; }
};

// Rows 2, 5 and 8 of X and of dY (9 rows; W 130 x 200) hold a NaN, +Inf or -Inf; runs the forward and
// the backward with `compute` at each ISA level of `isas` and asserts flagged(v) for every output of those rows
// and !flagged(v) for every other one.
template <class Flagged>
void check_nonfinite_rows(nq_compute_type compute, const std::vector<nq_isa>& isas, Flagged flagged) {
  const int64_t m = 9, n = 130, k = 200;
  const Q4 q = make_weight(n, k, 64, NQ_QUANT4_NF4, false, 3);
  auto x = randn(size_t(m * k), 8);
  auto dy = randn(size_t(m * n), 9);
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (int b = 0; b < 3; ++b) {
    x[size_t((2 + 3 * b) * k + 70 + b)] = bad[b];
    dy[size_t((2 + 3 * b) * n + 100 + b)] = bad[b];
  }
  for (nq_isa isa : isas) {
    IsaScope cap(isa);
    auto y = poisoned(size_t(m * n));
    auto dx = poisoned(size_t(m * k));
    ASSERT_EQ(nq_quant4_gemm(x.data(), m, &q.w, nullptr, compute, y.data()), NQ_OK);
    ASSERT_EQ(nq_quant4_gemm_backward(dy.data(), m, &q.w, compute, 0.0f, dx.data()), NQ_OK);
    for (int64_t i = 0; i < m; ++i) {
      const bool bad_row = i % 3 == 2;
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(flagged(y[size_t(i * n + j)]), bad_row) << isa_name(isa) << " y " << i << "," << j;
      for (int64_t t = 0; t < k; ++t)
        ASSERT_EQ(flagged(dx[size_t(i * k + t)]), bad_row) << isa_name(isa) << " dx " << i << "," << t;
    }
  }
}

}  // namespace gemm_test
