// NQ_COMPUTE_INT8 for the NF4/FP4 GEMM forward and backward (quant4_int8.h): every ISA path vs
// the scalar reference (bit for bit: the sums are exact integers and the epilogue rounds the same
// way) and vs a float64 product with the dequantised weight, within the quantization error bound;
// tails, blocks straddling rows, NaN rows, argument checks.
#include <cstring>

#include "gemm/gemm_quant4.h"
#include "gemm/quant4_int8.h"
#include "test_gemm_common.h"
#include "test_quant4_weight.h"

using namespace gemm_test;

namespace {

// vs float64, typical: rounding each operand to int8 against its row's (column's) absmax is a
// uniform error of <= absmax / 254 per element; on Gaussian data (absmax ~3-4 sigma) the product's
// relative error is ~1%, measured 0.6-1.3% below. 3e-2 bounds it with room.
constexpr double kInt8RelTol = 3e-2;

// M 5..33 (M <= 4 with k % 32 == 0 takes the fp32 GEMV on AVX-512) and 3 with k % 32 != 0; N around the
// 64-column VNNI and 16-column AVX2 tiles and over NC (512); K odd, not a multiple of the block (blocks
// straddle rows: per-element backward scales), over KC (1536 u8 / 768 int16); bs 32 .. 4096.
const Case kCases[] = {{8, 64, 64, 64},     {5, 100, 130, 64},  {7, 98, 77, 32},       {6, 200, 1000, 128},
                       {33, 300, 768, 64},  {24, 1000, 1600, 256}, {17, 96, 4096, 4096}, {9, 50, 200, 64},
                       {13, 520, 832, 32},  {8, 192, 2, 64},    {9, 200, 320, 64},     {3, 100, 70, 64}};

// The bound of one output: |x_q w_q - x w| <= sum_t |dx_t| |w_t| + |x_t| |dw_t| + |dx_t| |dw_t| with
// |dx_t| <= ax / 254 (ax = the row's absmax) and |dw_t| <= s / 254 (s = the weight column's scale),
// plus fp32 rounding of the epilogue (a few ulps of the sum's magnitude).
double bound(double ax, double s, double sum_abs_x, double sum_abs_w, int64_t len, double mag) {
  const double ex = ax / 254.0, ew = s / 254.0;
  return ex * sum_abs_w + ew * sum_abs_x + ex * ew * double(len) + 1e-6 * mag + 1e-30;
}

// Forward: every output within its bound of float64.
void expect_forward_bounds(const std::vector<float>& y, const std::vector<double>& y64, const std::vector<float>& x,
                           int64_t m, const Q4& q, const float* bias, const std::string& at) {
  const int64_t n = q.w.n, k = q.w.k;
  std::vector<float> sb(static_cast<size_t>(n)), inv(static_cast<size_t>(n));
  nq::gemm::quant4_int8_scales(q.w, false, sb.data(), inv.data());
  for (int64_t i = 0; i < m; ++i) {
    double ax = 0, sx = 0;
    for (int64_t t = 0; t < k; ++t) {
      ax = std::max(ax, std::fabs(double(x[size_t(i * k + t)])));
      sx += std::fabs(double(x[size_t(i * k + t)]));
    }
    for (int64_t j = 0; j < n; ++j) {
      double sw = 0, wmax = 0, mag = bias ? std::fabs(bias[j]) : 0.0;
      for (int64_t t = 0; t < k; ++t) {
        const double w = q.deq[size_t(j * k + t)];
        sw += std::fabs(w);
        wmax = std::max(wmax, std::fabs(w));
        mag += std::fabs(w * x[size_t(i * k + t)]);
      }
      ASSERT_GE(double(sb[size_t(j)]) * 127.0 * (1 + 1e-6), wmax) << at << " scale of column " << j;
      const double err = std::fabs(double(y[size_t(i * n + j)]) - y64[size_t(i * n + j)]);
      ASSERT_LE(err, bound(ax, double(sb[size_t(j)]) * 127.0, sx, sw, k, mag)) << at << " y[" << i << "," << j << "]";
    }
  }
}

TEST(GemmInt8Quant4, ForwardMatchesReferenceAndFloat64) {
  for (const Case& c : kCases)
    for (int v = 0; v < 3; ++v) {
      const ForwardProblem p(c.m, c.n, c.k, c.bs, v);
      const auto& [q, x, bias, y64] = p;
      auto ref = poisoned(size_t(c.m * c.n));
      nq::gemm::quant4_gemm_int8_ref(x.data(), c.m, q.w, bias.data(), ref.data());
      const std::string shape = std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) + " bs " +
                                std::to_string(c.bs) + " v" + std::to_string(v);
      ASSERT_TRUE(all_finite(ref)) << shape;
      EXPECT_LT(rel_error(ref, y64), kInt8RelTol) << shape;
      expect_forward_bounds(ref, y64, x, c.m, q, bias.data(), "reference " + shape);
      for (nq_isa isa : supported_isas()) {
        IsaScope cap(isa);
        auto y = poisoned(size_t(c.m * c.n));
        ASSERT_EQ(nq_quant4_gemm(x.data(), c.m, &q.w, bias.data(), NQ_COMPUTE_INT8, y.data()), NQ_OK)
            << nq_last_error_message();
        ASSERT_TRUE(all_finite(y)) << isa_name(isa) << " " << shape;
        ASSERT_EQ(std::memcmp(y.data(), ref.data(), y.size() * 4), 0) << isa_name(isa) << " " << shape;
      }
    }
}

TEST(GemmInt8Quant4, BackwardMatchesReferenceAndFloat64) {
  for (const Case& c : kCases)
    for (float beta : {0.0f, 1.0f, 0.5f}) {
      const BackwardProblem p(c.m, c.n, c.k, c.bs, beta);
      const auto& [q, dy, dx0, dx64] = p;
      auto ref = p.initial(beta);
      nq::gemm::quant4_gemm_backward_int8_ref(dy.data(), c.m, q.w, beta, ref.data());
      const std::string shape = std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) + " bs " +
                                std::to_string(c.bs) + " beta " + std::to_string(beta);
      ASSERT_TRUE(all_finite(ref)) << shape;
      EXPECT_LT(rel_error(ref, dx64), kInt8RelTol) << shape;
      // The bound, per element: dY's row absmax and W's column scale (backward direction).
      std::vector<float> sb(static_cast<size_t>(c.k)), inv(static_cast<size_t>(c.k));
      nq::gemm::quant4_int8_scales(q.w, true, sb.data(), inv.data());
      for (int64_t i = 0; i < c.m; ++i) {
        double ay = 0, sy = 0;
        for (int64_t j = 0; j < c.n; ++j) {
          ay = std::max(ay, std::fabs(double(dy[size_t(i * c.n + j)])));
          sy += std::fabs(double(dy[size_t(i * c.n + j)]));
        }
        for (int64_t t = 0; t < c.k; ++t) {
          double sw = 0, wmax = 0, mag = beta == 0.0f ? 0.0 : std::fabs(beta * dx0[size_t(i * c.k + t)]);
          for (int64_t j = 0; j < c.n; ++j) {
            const double w = q.deq[size_t(j * c.k + t)];
            sw += std::fabs(w);
            wmax = std::max(wmax, std::fabs(w));
            mag += std::fabs(w * dy[size_t(i * c.n + j)]);
          }
          ASSERT_GE(double(sb[size_t(t)]) * 127.0 * (1 + 1e-6), wmax) << shape << " scale of column " << t;
          const double err = std::fabs(double(ref[size_t(i * c.k + t)]) - dx64[size_t(i * c.k + t)]);
          ASSERT_LE(err, bound(ay, double(sb[size_t(t)]) * 127.0, sy, sw, c.n, mag)) << shape << " dx " << i << "," << t;
        }
      }
      for (nq_isa isa : supported_isas()) {
        IsaScope cap(isa);
        auto dx = p.initial(beta);
        ASSERT_EQ(nq_quant4_gemm_backward(dy.data(), c.m, &q.w, NQ_COMPUTE_INT8, beta, dx.data()), NQ_OK)
            << nq_last_error_message();
        ASSERT_TRUE(all_finite(dx)) << isa_name(isa) << " " << shape;
        ASSERT_EQ(std::memcmp(dx.data(), ref.data(), dx.size() * 4), 0) << isa_name(isa) << " " << shape;
      }
    }
}

// A NaN or Inf in a row of X (dY) makes every output of that row NaN (not garbage from a NaN cast
// to int8); other rows are unaffected.
TEST(GemmInt8Quant4, NonFiniteRowsBecomeNaN) {
  check_nonfinite_rows(NQ_COMPUTE_INT8, supported_isas(), [](float v) { return std::isnan(v); });
}

// The weight rule: scales are the largest |code * absmax| a column can hold, values round to nearest
// even and stay in [-127, 127]; NaN products give 0.
TEST(GemmInt8Quant4, WeightRule) {
  using nq::gemm::q8_of;
  EXPECT_EQ(q8_of(1.0f, 127.0f), 127);
  EXPECT_EQ(q8_of(-1.0f, 127.0f), -127);
  EXPECT_EQ(q8_of(1.0001f, 127.0f), 127);  // clamped
  EXPECT_EQ(q8_of(2.5f, 1.0f), 2);         // half to even
  EXPECT_EQ(q8_of(std::numeric_limits<float>::quiet_NaN(), 1.0f), 0);
  const int64_t n = 6, k = 256;
  const Q4 q = make_weight(n, k, 64, NQ_QUANT4_NF4, false, 21);
  std::vector<float> sf(static_cast<size_t>(n)), invf(static_cast<size_t>(n)), sbk(static_cast<size_t>(k)), invb(static_cast<size_t>(k));
  nq::gemm::quant4_int8_scales(q.w, false, sf.data(), invf.data());
  nq::gemm::quant4_int8_scales(q.w, true, sbk.data(), invb.data());
  for (int64_t o = 0; o < n; ++o) {
    float mx = 0;
    for (int b = 0; b < 4; ++b) mx = std::max(mx, q.absmax[size_t(o * 4 + b)]);  // NF4's largest |code| is 1
    EXPECT_EQ(sf[size_t(o)], mx / 127.0f) << o;
    EXPECT_EQ(invf[size_t(o)], 127.0f / mx) << o;
  }
  for (int64_t i = 0; i < k; ++i) {
    float mx = 0;
    for (int64_t o = 0; o < n; ++o) mx = std::max(mx, q.absmax[size_t(o * 4 + i / 64)]);
    EXPECT_EQ(sbk[size_t(i)], mx / 127.0f) << i;
  }
}

TEST(GemmInt8Quant4, ArgumentChecks) {
  const Q4 q = make_weight(8, 64, 64, NQ_QUANT4_NF4, false, 1);
  std::vector<float> x(8 * 64, 1.0f), y(64);
  nq_compute_type bad;
  const int five = 5;
  std::memcpy(&bad, &five, sizeof bad);
  EXPECT_EQ(nq_quant4_gemm(x.data(), 8, &q.w, nullptr, bad, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("NQ_COMPUTE_INT8"));
  // int32 sums: the reduction length is bounded (w.k forward, w.n backward).
  const Q4 wide = make_weight(2, 65600, 64, NQ_QUANT4_NF4, false, 2);
  std::vector<float> xw(65600), yw(2);
  EXPECT_EQ(nq_quant4_gemm(xw.data(), 1, &wide.w, nullptr, NQ_COMPUTE_INT8, yw.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("w.k"));
  EXPECT_EQ(nq_quant4_gemm(xw.data(), 1, &wide.w, nullptr, NQ_COMPUTE_F32, yw.data()), NQ_OK);
  const Q4 tall = make_weight(65600, 2, 64, NQ_QUANT4_NF4, false, 3);
  std::vector<float> dyt(65600), dxt(2);
  EXPECT_EQ(nq_quant4_gemm_backward(dyt.data(), 1, &tall.w, NQ_COMPUTE_INT8, 0.0f, dxt.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("w.n"));
}

}  // namespace
