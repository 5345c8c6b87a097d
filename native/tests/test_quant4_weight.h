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

}  // namespace gemm_test
