// LLM.int8() forward (fp32 and bf16 X) and backward: vs the scalar reference, vs an explicit
// decomposition built from the library's quantization primitives, vs fp32 in double, with
// planted outlier columns, extreme values at K = 65536 and bad arguments; the int8-compute
// backward vs its reference (bit for bit), float64 and a worst-case element bound, at N = 65536.
#include <algorithm>
#include <cstring>

#include "gemm/gemm_int8.h"
#include "test_gemm_common.h"

using namespace gemm_test;

namespace {

// Row-wise int8 of both operands on randn data: each product carries ~1/254 relative
// rounding from each side; summed over K the output error is ~1% of its norm (bnb-class).
constexpr double kInt8VsFp32RelTol = 0.02;
// Fast path vs reference/decomposition: identical integer part; only the fp32 order of the
// outlier sum and one-ulp scale differences remain.
constexpr double kSameMathRelTol = 1e-5;
// Outliers handled in 16-bit must beat pure int8 on planted |x| = 20 columns by at least
// this factor (pure int8 stretches every row's step from ~3/127 to 20/127).
constexpr double kOutlierGainMin = 3.0;
// fp32 / bf16 backward against the double product of the dequantised W.
constexpr double kF32RelTol = 1e-5, kBf16RelTol = 1e-2;
// Int8 backward element bound: each of G's N products is off by at most half a step of its
// row (absmax_i / 127 / 2) times |W|; the slack covers fp32 rounding of G and the epilogue.
constexpr double kInt8BwdFpSlack = 1e-5;

struct W8 {
  std::vector<int8_t> q;
  std::vector<float> scb, deq;
};

W8 make_w(int64_t n, int64_t k, uint64_t seed) {
  W8 w;
  const auto wf = randn(size_t(n * k), seed);
  w.q.resize(wf.size());
  w.scb.resize(size_t(n));
  EXPECT_EQ(nq_int8_rowwise_quantize(wf.data(), n, k, w.q.data(), w.scb.data()), NQ_OK);
  w.deq.resize(wf.size());
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < k; ++c) w.deq[j * k + c] = float(w.q[j * k + c]) * w.scb[j] / 127.0f;
  return w;
}

std::vector<double> exact_xwt(const std::vector<float>& x, const W8& w, int64_t m, int64_t n, int64_t k,
                              const float* bias) {
  std::vector<double> y(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double a = bias ? bias[j] : 0.0;
      for (int64_t c = 0; c < k; ++c) a += double(x[i * k + c]) * w.deq[j * k + c];
      y[i * n + j] = a;
    }
  return y;
}

// Explicit decomposition from the primitives: zero the outlier columns, nq_int8_rowwise_
// quantize X, exact integer product, dequantise, add the bf16 outlier product.
std::vector<double> decomposition(const std::vector<float>& x, const W8& w, int64_t m, int64_t n, int64_t k,
                                  const std::vector<int32_t>& cols, const float* bias) {
  std::vector<float> xz = x;
  for (int64_t i = 0; i < m; ++i)
    for (int32_t c : cols) xz[i * k + c] = 0.0f;
  std::vector<int8_t> qx(xz.size());
  std::vector<float> sx(static_cast<size_t>(m));
  EXPECT_EQ(nq_int8_rowwise_quantize(xz.data(), m, k, qx.data(), sx.data()), NQ_OK);
  std::vector<double> y(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t acc = 0;
      for (int64_t c = 0; c < k; ++c) acc += int64_t(qx[i * k + c]) * w.q[j * k + c];
      double out = 0;
      for (int32_t c : cols)
        out += double(nq::gemm::round_bf16(x[i * k + c])) * nq::gemm::round_bf16(w.deq[j * k + c]);
      y[i * n + j] = double(acc) * sx[i] * w.scb[j] / (127.0 * 127.0) + out + (bias ? bias[j] : 0.0);
    }
  return y;
}

struct Case {
  int64_t m, n, k;
};
// M <= 4 takes the VNNI GEMV (k % 64 != 0 exercises its masked tail; {4, 1031, 1100} splits N).
const Case kCases[] = {{1, 1, 4},      {1, 37, 301},    {5, 64, 256},   {7, 130, 1027}, {33, 70, 4096},
                       {3, 20, 16384}, {2, 67, 200},    {4, 1031, 1100}};

TEST(GemmInt8, ForwardAllIsasWithAndWithoutOutliers) {
  uint64_t seed = 300;
  for (const Case& cs : kCases)
    for (float threshold : {0.0f, 2.5f}) {  // 2.5 sigma: a few percent of columns become outliers
      const W8 w = make_w(cs.n, cs.k, seed++);
      const auto x = randn(size_t(cs.m * cs.k), seed++);
      const auto bias = randn(size_t(cs.n), seed++);
      const auto exact = exact_xwt(x, w, cs.m, cs.n, cs.k, bias.data());
      std::vector<int32_t> ref_cols(size_t(cs.k));
      int64_t ref_count = -1;
      auto y_ref = poisoned(size_t(cs.m * cs.n));
      nq::gemm::int8_matmul_ref(x.data(), nullptr, cs.m, cs.k, w.q.data(), w.scb.data(), cs.n, threshold,
                                bias.data(), NQ_COMPUTE_BF16, y_ref.data(), ref_cols.data(), &ref_count);
      ref_cols.resize(size_t(ref_count));
      if (threshold > 0 && cs.m * cs.k >= 256) EXPECT_GT(ref_count, 0);  // P(|x| >= 2.5) ~ 1.2%
      const auto dec = decomposition(x, w, cs.m, cs.n, cs.k, ref_cols, bias.data());
      for (nq_isa isa : supported_isas()) {
        IsaScope scope(isa);
        SCOPED_TRACE(testing::Message() << isa_name(isa) << " m=" << cs.m << " n=" << cs.n << " k=" << cs.k
                                        << " threshold=" << threshold);
        auto y = poisoned(size_t(cs.m * cs.n));
        std::vector<int32_t> cols(size_t(cs.k), -1);
        int64_t count = -1;
        ASSERT_EQ(nq_int8_matmul(x.data(), cs.m, cs.k, w.q.data(), w.scb.data(), cs.n, threshold, bias.data(),
                                 NQ_COMPUTE_BF16, y.data(), cols.data(), cs.k, &count),
                  NQ_OK)
            << nq_last_error_message();
        ASSERT_TRUE(all_finite(y));
        ASSERT_EQ(count, ref_count);
        EXPECT_TRUE(std::equal(ref_cols.begin(), ref_cols.end(), cols.begin()));
        EXPECT_LT(rel_error(y, y_ref), kSameMathRelTol);
        EXPECT_LT(rel_error(y, dec), kSameMathRelTol);
        EXPECT_LT(rel_error(y, exact), kInt8VsFp32RelTol);
        // bf16 input variant: the same X rounded to bf16 gives the bf16-input reference.
        const auto xb = to_bf16(x);
        auto yb = poisoned(y.size()), yb_ref = poisoned(y.size());
        std::vector<int32_t> cb(size_t(cs.k));
        int64_t nb = -1, nb_ref = -1;
        ASSERT_EQ(nq_int8_matmul_bf16(xb.data(), cs.m, cs.k, w.q.data(), w.scb.data(), cs.n, threshold,
                                      bias.data(), NQ_COMPUTE_F32, yb.data(), cb.data(), cs.k, &nb),
                  NQ_OK)
            << nq_last_error_message();
        nq::gemm::int8_matmul_ref(nullptr, xb.data(), cs.m, cs.k, w.q.data(), w.scb.data(), cs.n, threshold,
                                  bias.data(), NQ_COMPUTE_F32, yb_ref.data(), cb.data(), &nb_ref);
        ASSERT_TRUE(all_finite(yb));
        EXPECT_EQ(nb, nb_ref);
        EXPECT_LT(rel_error(yb, yb_ref), kSameMathRelTol);
        EXPECT_LT(rel_error(yb, exact), kInt8VsFp32RelTol);
      }
    }
}

TEST(GemmInt8, PlantedOutlierColumnsAreFarCloserToFp32ThanPureInt8) {
  const int64_t m = 64, n = 96, k = 4096;
  const W8 w = make_w(n, k, 41);
  auto x = randn(size_t(m * k), 42);
  std::vector<int32_t> planted = {17, 1000, 2222, 4001};  // ~0.1% of the columns
  for (int64_t i = 0; i < m; ++i)
    for (int32_t c : planted) x[i * k + c] = (i % 2 ? 20.0f : -20.0f);
  const auto exact = exact_xwt(x, w, m, n, k, nullptr);
  for (nq_isa isa : supported_isas()) {
    IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    auto y6 = poisoned(size_t(m * n)), y0 = poisoned(size_t(m * n));
    std::vector<int32_t> cols(static_cast<size_t>(k));
    int64_t count = 0;
    ASSERT_EQ(nq_int8_matmul(x.data(), m, k, w.q.data(), w.scb.data(), n, 6.0f, nullptr, NQ_COMPUTE_BF16,
                             y6.data(), cols.data(), k, &count),
              NQ_OK);
    ASSERT_EQ(count, int64_t(planted.size()));
    EXPECT_TRUE(std::equal(planted.begin(), planted.end(), cols.begin()));
    ASSERT_EQ(nq_int8_matmul(x.data(), m, k, w.q.data(), w.scb.data(), n, 0.0f, nullptr, NQ_COMPUTE_BF16,
                             y0.data(), nullptr, 0, &count),
              NQ_OK);
    EXPECT_EQ(count, 0);
    const double e6 = rel_error(y6, exact), e0 = rel_error(y0, exact);
    EXPECT_LT(e6, kInt8VsFp32RelTol);
    EXPECT_GT(e0 / e6, kOutlierGainMin) << "mixed " << e6 << " pure int8 " << e0;
  }
}

TEST(GemmInt8, Int32AccumulationDoesNotOverflowAtMaxK) {
  const int64_t m = 2, n = 3, k = nq::gemm::kInt8MaxK;
  std::vector<float> x(size_t(m * k));
  W8 w;
  w.q.resize(size_t(n * k));
  w.scb = {1.0f, 2.0f, 0.5f};
  for (int64_t c = 0; c < k; ++c) {
    x[c] = 3.0f;        // q = +127 everywhere (u8 255 on VNNI)
    x[k + c] = -3.0f;   // q = -127
    w.q[c] = 127;
    w.q[k + c] = -127;
    w.q[2 * k + c] = int8_t(c % 2 ? 127 : -127);
  }
  for (nq_isa isa : supported_isas()) {
    IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    auto y = poisoned(size_t(m * n));
    int64_t count = -1;
    ASSERT_EQ(nq_int8_matmul(x.data(), m, k, w.q.data(), w.scb.data(), n, 0.0f, nullptr, NQ_COMPUTE_F32, y.data(),
                             nullptr, 0, &count),
              NQ_OK);
    // y = sum_k (+-3) * (+-127 * scb / 127): exactly representable.
    const double expect[] = {3.0 * k, -6.0 * k, 0.0, -3.0 * k, 6.0 * k, 0.0};
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(y[i], expect[i], 1e-6 * 6.0 * k) << i;
  }
}

TEST(GemmInt8, BackwardMatchesDequantisedProduct) {
  uint64_t seed = 900;
  for (const Case& cs : kCases) {
    const W8 w = make_w(cs.n, cs.k, seed++);
    const auto dy = randn(size_t(cs.m * cs.n), seed++), dx0 = randn(size_t(cs.m * cs.k), seed++);
    for (nq_compute_type ct : {NQ_COMPUTE_F32, NQ_COMPUTE_BF16}) {
      std::vector<double> exact(dx0.size());
      for (int64_t i = 0; i < cs.m; ++i)
        for (int64_t c = 0; c < cs.k; ++c) {
          double a = dx0[i * cs.k + c];
          for (int64_t j = 0; j < cs.n; ++j) {
            const float d = dy[i * cs.n + j], v = w.deq[j * cs.k + c];
            a += ct == NQ_COMPUTE_BF16 ? double(nq::gemm::round_bf16(d)) * nq::gemm::round_bf16(v) : double(d) * v;
          }
          exact[i * cs.k + c] = a;
        }
      auto ref = dx0;
      nq::gemm::int8_matmul_backward_ref(dy.data(), cs.m, cs.n, w.q.data(), w.scb.data(), cs.k, ct, 1.0f,
                                         ref.data());
      for (nq_isa isa : supported_isas()) {
        IsaScope scope(isa);
        SCOPED_TRACE(testing::Message() << isa_name(isa) << " m=" << cs.m << " n=" << cs.n << " k=" << cs.k
                                        << " compute=" << ct);
        auto dx = dx0;
        ASSERT_EQ(nq_int8_matmul_backward(dy.data(), cs.m, cs.n, w.q.data(), w.scb.data(), cs.k, ct, 1.0f,
                                          dx.data()),
                  NQ_OK)
            << nq_last_error_message();
        const double tol = ct == NQ_COMPUTE_BF16 ? kBf16RelTol : kF32RelTol;
        EXPECT_LT(rel_error(dx, exact), tol);
        EXPECT_LT(rel_error(dx, ref), tol);
        auto over = poisoned(dx0.size());
        ASSERT_EQ(nq_int8_matmul_backward(dy.data(), cs.m, cs.n, w.q.data(), w.scb.data(), cs.k, ct, 0.0f,
                                          over.data()),
                  NQ_OK);
        ASSERT_TRUE(all_finite(over));
      }
    }
  }
}

// Int8 backward shapes: odd N (the reduction: partial last k-quad, KC = 1536 crossed with a
// remainder), K around the 32-column interleave and 64-column panel edges, M = 1, and
// {70, 1001, 300} above the serial cut-off (threads split dX's columns).
const Case kBwdCases[] = {{1, 3, 5},      {1, 4099, 33},  {2, 1, 1},     {7, 1537, 65}, {13, 2050, 200},
                          {6, 130, 4096}, {37, 603, 130}, {64, 256, 96}, {5, 4, 1027},  {70, 1001, 300}};

TEST(GemmInt8, Int8BackwardMatchesReferenceAndFp64) {
  uint64_t seed = 1200;
  for (const Case& cs : kBwdCases) {
    const W8 w = make_w(cs.n, cs.k, seed++);
    const auto dy = randn(size_t(cs.m * cs.n), seed++), dx0 = randn(size_t(cs.m * cs.k), seed++);
    // float64 product and the worst-case int8 error bound per element.
    std::vector<double> prod(dx0.size()), bound(dx0.size());
    for (int64_t i = 0; i < cs.m; ++i) {
      double amax = 0;
      for (int64_t j = 0; j < cs.n; ++j) amax = std::max(amax, std::fabs(double(dy[i * cs.n + j]) * w.scb[j] / 127));
      for (int64_t c = 0; c < cs.k; ++c) {
        double a = 0, wsum = 0, gsum = 0;
        for (int64_t j = 0; j < cs.n; ++j) {
          const double g = double(dy[i * cs.n + j]) * w.scb[j] / 127, q = w.q[j * cs.k + c];
          a += g * q;
          wsum += std::fabs(q);
          gsum += std::fabs(g * q);
        }
        prod[i * cs.k + c] = a;
        bound[i * cs.k + c] = 0.5 * amax / 127 * wsum * (1 + kInt8BwdFpSlack) + kInt8BwdFpSlack * gsum;
      }
    }
    for (float beta : {0.0f, 1.0f, 0.5f}) {
      std::vector<double> exact(dx0.size());
      for (size_t e = 0; e < exact.size(); ++e) exact[e] = double(beta) * dx0[e] + prod[e];
      auto ref = beta == 0.0f ? poisoned(dx0.size()) : dx0;
      nq::gemm::int8_matmul_backward_ref(dy.data(), cs.m, cs.n, w.q.data(), w.scb.data(), cs.k, NQ_COMPUTE_INT8,
                                         beta, ref.data());
      ASSERT_TRUE(all_finite(ref));
      for (nq_isa isa : supported_isas()) {
        IsaScope scope(isa);
        SCOPED_TRACE(testing::Message() << isa_name(isa) << " m=" << cs.m << " n=" << cs.n << " k=" << cs.k
                                        << " beta=" << beta);
        auto dx = beta == 0.0f ? poisoned(dx0.size()) : dx0;
        ASSERT_EQ(nq_int8_matmul_backward(dy.data(), cs.m, cs.n, w.q.data(), w.scb.data(), cs.k, NQ_COMPUTE_INT8,
                                          beta, dx.data()),
                  NQ_OK)
            << nq_last_error_message();
        ASSERT_TRUE(all_finite(dx));
        // Same integer sums and the same epilogue expression as the reference: bit for bit.
        EXPECT_EQ(std::memcmp(dx.data(), ref.data(), dx.size() * 4), 0) << rel_error(dx, ref);
        EXPECT_LT(rel_error(dx, exact), kInt8VsFp32RelTol);
        int bad = 0;
        for (size_t e = 0; e < dx.size(); ++e) bad += std::fabs(dx[e] - exact[e]) > bound[e];
        EXPECT_EQ(bad, 0);
      }
    }
  }
}

TEST(GemmInt8, Int8BackwardInt32DoesNotOverflowAtMaxN) {
  // q(G) = +-127 everywhere and W at its extremes: |sum| reaches 127 * 255 * 65536 with the u8 offset.
  const int64_t m = 2, n = nq::gemm::kInt8MaxK, k = 37;
  std::vector<float> dy(size_t(m * n)), scb(size_t(n), 2.0f);
  std::vector<int8_t> w(size_t(n * k));
  for (int64_t j = 0; j < n; ++j) {
    dy[j] = 1.0f;
    dy[n + j] = -1.0f;
    for (int64_t c = 0; c < k; ++c) w[j * k + c] = int8_t(c % 3 == 0 ? 127 : c % 3 == 1 ? -128 : (j % 2 ? 127 : -127));
  }
  for (nq_isa isa : supported_isas()) {
    IsaScope scope(isa);
    SCOPED_TRACE(isa_name(isa));
    auto dx = poisoned(size_t(m * k));
    ASSERT_EQ(nq_int8_matmul_backward(dy.data(), m, n, w.data(), scb.data(), k, NQ_COMPUTE_INT8, 0.0f, dx.data()),
              NQ_OK)
        << nq_last_error_message();
    // dX = sum_j (+-1) * w * 2 / 127: G is constant per row, so int8 is exact up to fp32 scale rounding.
    for (int64_t i = 0; i < m; ++i)
      for (int64_t c = 0; c < k; ++c) {
        const double wv = c % 3 == 0 ? 127 * n : c % 3 == 1 ? -128 * n : 0;
        const double expect = (i == 0 ? 1 : -1) * wv * 2 / 127;
        EXPECT_NEAR(dx[i * k + c], expect, 1e-6 * 2 * 128 * n) << i << "," << c;
      }
  }
}

TEST(GemmInt8, BadArgumentsReportStatusAndArgument) {
  const W8 w = make_w(4, 64, 7);
  auto x = randn(2 * 64, 8);
  x[5] = 50.0f;  // one outlier column
  std::vector<float> y(8);
  int64_t count = 0;
  int32_t one = 0;
  EXPECT_EQ(nq_int8_matmul(x.data(), 2, 64, w.q.data(), nullptr, 4, 6.0f, nullptr, NQ_COMPUTE_F32, y.data(),
                           nullptr, 0, &count),
            NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(message_mentions("scb"));
  EXPECT_EQ(nq_int8_matmul(x.data(), 2, 70000, w.q.data(), w.scb.data(), 4, 6.0f, nullptr, NQ_COMPUTE_F32,
                           y.data(), nullptr, 0, &count),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("'k'"));
  EXPECT_EQ(nq_int8_matmul(x.data(), 2, 64, w.q.data(), w.scb.data(), 4, -1.0f, nullptr, NQ_COMPUTE_F32,
                           y.data(), nullptr, 0, &count),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("threshold"));
  EXPECT_EQ(nq_int8_matmul(x.data(), 2, 64, w.q.data(), w.scb.data(), 4, 6.0f, nullptr, NQ_COMPUTE_F32, y.data(),
                           &one, 0, &count),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("outlier_capacity"));
  EXPECT_EQ(count, 1);
  EXPECT_EQ(nq_int8_matmul_backward(y.data(), 2, 4, w.q.data(), w.scb.data(), 64, NQ_COMPUTE_F32, 0.0f, nullptr),
            NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(message_mentions("dx"));
  std::vector<float> dy(size_t(2 * 70000));
  std::vector<int8_t> wbig(size_t(70000));
  std::vector<float> scbig(size_t(70000), 1.0f);
  EXPECT_EQ(nq_int8_matmul_backward(dy.data(), 2, 70000, wbig.data(), scbig.data(), 1, NQ_COMPUTE_INT8, 0.0f, y.data()),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("'n'"));
  EXPECT_EQ(nq_int8_matmul_backward(y.data(), 2, 4, w.q.data(), w.scb.data(), 64, nq_compute_type(3), 0.0f, x.data()),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("compute"));
}

// NQ_COMPUTE_INT8 is a compute type of the int8 backward and of the 4-bit matmuls (test_gemm_int8_quant4.cpp),
// not of the outlier part of the forward.
TEST(GemmInt8, OtherKernelsRejectInt8Compute) {
  const W8 w = make_w(4, 64, 9);
  const auto x = randn(2 * 64, 10);
  std::vector<float> y(8);
  int64_t count = 0;
  EXPECT_EQ(nq_int8_matmul(x.data(), 2, 64, w.q.data(), w.scb.data(), 4, 6.0f, nullptr, NQ_COMPUTE_INT8, y.data(),
                           nullptr, 0, &count),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("outlier_compute"));
}

}  // namespace
