// int8 absmax (per tensor / row / column) and zero-point quantization.
#include <algorithm>
#include <cmath>

#include "test_quant_util.h"

namespace {

// fp32 x * (127 / absmax) may land on the other side of a .5 than the exact quotient only
// within a few ulps of 127: allow that much beyond the half-step.
constexpr double kHalfStepSlack = 1e-4;
// Dequantized values are (q * absmax) * (1/127f): two fp32 roundings plus the fp32 constant.
constexpr double kDequantRel = 4e-7;

enum class Mode { Tensor, Row, Col };

// Quantize x (rows, cols) under `isa` with q pre-filled by `poison`; absmax has 1/rows/cols entries.
void run_int8(nq_isa isa, Mode m, const std::vector<float>& x, int64_t rows, int64_t cols, int8_t poison,
              std::vector<int8_t>& q, std::vector<float>& a) {
  qt::IsaScope scope(isa);
  q.assign(rows * cols, poison);
  a = qt::nan_filled(m == Mode::Tensor ? 1 : m == Mode::Row ? rows : cols);
  nq_status s = m == Mode::Tensor ? nq_int8_absmax_quantize(x.data(), rows * cols, q.data(), a.data())
                : m == Mode::Row  ? nq_int8_rowwise_quantize(x.data(), rows, cols, q.data(), a.data())
                                  : nq_int8_colwise_quantize(x.data(), rows, cols, q.data(), a.data());
  ASSERT_EQ(s, NQ_OK) << nq_last_error_message();
}

void run_dequant(nq_isa isa, Mode m, const std::vector<int8_t>& q, const std::vector<float>& a, int64_t rows,
                 int64_t cols, std::vector<float>& y) {
  qt::IsaScope scope(isa);
  y = qt::nan_filled(rows * cols);
  nq_status s = m == Mode::Tensor ? nq_int8_absmax_dequantize(q.data(), rows * cols, a[0], y.data())
                : m == Mode::Row  ? nq_int8_rowwise_dequantize(q.data(), a.data(), rows, cols, y.data())
                                  : nq_int8_colwise_dequantize(q.data(), a.data(), rows, cols, y.data());
  ASSERT_EQ(s, NQ_OK) << nq_last_error_message();
}

TEST(Int8Absmax, AllModesIsaIdenticalAndMatchDouble) {
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 17}, {64, 1000}, {300, 1537}, {1, 200003}};
  for (Mode m : {Mode::Tensor, Mode::Row, Mode::Col}) {
    for (auto [rows, cols] : shapes) {
      auto x = qt::randn(rows * cols, uint32_t(rows * 31 + cols), 3.0f);
      if (rows > 2) std::fill(x.begin() + cols, x.begin() + 2 * cols, 0.0f);  // an all-zero row
      std::vector<int8_t> q_ref, q;
      std::vector<float> a_ref, a, y_ref, y;
      run_int8(NQ_ISA_SCALAR, m, x, rows, cols, 0, q_ref, a_ref);
      run_dequant(NQ_ISA_SCALAR, m, q_ref, a_ref, rows, cols, y_ref);
      for (nq_isa isa : qt::isas()) {
        for (int8_t poison : {int8_t(-128), int8_t(99)}) {
          run_int8(isa, m, x, rows, cols, poison, q, a);
          ASSERT_EQ(q, q_ref) << "isa=" << isa << " mode=" << int(m) << " " << rows << "x" << cols;
          ASSERT_EQ(std::memcmp(a.data(), a_ref.data(), a.size() * 4), 0);
        }
        run_dequant(isa, m, q_ref, a_ref, rows, cols, y);
        ASSERT_EQ(std::memcmp(y.data(), y_ref.data(), y.size() * 4), 0) << "isa=" << isa;
      }
      // Independent double computation: group absmax, then every element.
      std::vector<double> amax(a_ref.size(), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          double& g = amax[m == Mode::Tensor ? 0 : m == Mode::Row ? r : c];
          g = std::max(g, std::fabs(double(x[r * cols + c])));
        }
      for (size_t g = 0; g < amax.size(); ++g) ASSERT_EQ(double(a_ref[g]), amax[g]) << "group " << g;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t i = r * cols + c;
          const int64_t g = m == Mode::Tensor ? 0 : m == Mode::Row ? r : c;
          const double want = a_ref[g] > 0 ? double(x[i]) * 127.0 / a_ref[g] : 0.0;
          ASSERT_LE(std::fabs(q_ref[i] - want), 0.5 + kHalfStepSlack) << "i=" << i;
          const double back = double(q_ref[i]) * a_ref[g] / 127.0;
          ASSERT_NEAR(y_ref[i], back, kDequantRel * std::fabs(back) + 1e-30) << "i=" << i;
        }
      }
    }
  }
}

TEST(Int8Absmax, ExtremesMapToPlusMinus127) {
  std::vector<float> x = {0.5f, -2.0f, 1.0f, 2.0f, 0.0f, -0.0f, 1.0f / 127.0f * 2.0f};
  std::vector<int8_t> q;
  std::vector<float> a;
  for (nq_isa isa : qt::isas()) {
    run_int8(isa, Mode::Tensor, x, 1, x.size(), 5, q, a);
    EXPECT_EQ(a[0], 2.0f);
    EXPECT_EQ(q, (std::vector<int8_t>{32, -127, 64, 127, 0, 0, 1}));  // 31.75 -> 32, 63.5 -> 64 (even), 1
  }
}

TEST(Int8ZeroPoint, IsaIdenticalAndWithinHalfStep) {
  for (int per_row : {0, 1}) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 100}, {7, 333}, {128, 2048}}) {
      auto x = qt::randu(rows * cols, uint32_t(rows + cols), -0.5f, 2.0f);  // asymmetric range
      if (rows > 1) std::fill(x.begin(), x.begin() + cols, 0.0f);             // a constant-zero row
      const int64_t groups = per_row ? rows : 1, len = per_row ? cols : rows * cols;
      std::vector<int8_t> q_ref(rows * cols);
      std::vector<float> s_ref(groups), z_ref(groups);
      {
        qt::IsaScope scope(NQ_ISA_SCALAR);
        ASSERT_EQ(nq_int8_zeropoint_quantize(x.data(), rows, cols, per_row, q_ref.data(), s_ref.data(), z_ref.data()),
                  NQ_OK);
      }
      for (nq_isa isa : qt::isas()) {
        qt::IsaScope scope(isa);
        for (int8_t poison : {int8_t(0), int8_t(-1)}) {
          std::vector<int8_t> q(rows * cols, poison);
          std::vector<float> s = qt::nan_filled(groups), z = qt::nan_filled(groups);
          ASSERT_EQ(nq_int8_zeropoint_quantize(x.data(), rows, cols, per_row, q.data(), s.data(), z.data()), NQ_OK);
          ASSERT_EQ(q, q_ref) << "isa=" << isa;
          ASSERT_EQ(std::memcmp(s.data(), s_ref.data(), groups * 4), 0);
          ASSERT_EQ(std::memcmp(z.data(), z_ref.data(), groups * 4), 0);
        }
        std::vector<float> y = qt::nan_filled(rows * cols);
        ASSERT_EQ(nq_int8_zeropoint_dequantize(q_ref.data(), s_ref.data(), z_ref.data(), rows, cols, per_row, y.data()),
                  NQ_OK);
        for (int64_t i = 0; i < rows * cols; ++i) {
          const int64_t g = i / len;
          // independent double check of the documented formulas
          double lo = 0, hi = 0;
          if (i % len == 0) {
            for (int64_t k = g * len; k < (g + 1) * len; ++k) {
              lo = std::min(lo, double(x[k]));
              hi = std::max(hi, double(x[k]));
            }
            ASSERT_NEAR(s_ref[g], (hi - lo) / 255.0, 1e-6 * (hi - lo) + 1e-30);
          }
          if (s_ref[g] == 0) {
            ASSERT_EQ(y[i], 0.0f);
            continue;
          }
          ASSERT_EQ(double(y[i]), double(float((double(q_ref[i]) - z_ref[g]) * s_ref[g])) ) << i;
          ASSERT_LE(std::fabs(double(y[i]) - x[i]), 0.5 * s_ref[g] * (1 + 1e-4)) << "i=" << i << " isa=" << isa;
        }
      }
    }
  }
}

TEST(Int8, RejectsBadArguments) {
  auto x = qt::randn(64, 9);
  std::vector<int8_t> q(64);
  std::vector<float> a(8), y(64), z(8);
  EXPECT_EQ(nq_int8_absmax_quantize(nullptr, 64, q.data(), a.data()), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'x'"));
  EXPECT_EQ(nq_int8_rowwise_quantize(x.data(), 0, 8, q.data(), a.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'rows'"));
  EXPECT_EQ(nq_int8_colwise_quantize(x.data(), 8, -1, q.data(), a.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'cols'"));
  EXPECT_EQ(nq_int8_rowwise_quantize(x.data(), 8, 8, reinterpret_cast<int8_t*>(x.data() + 3), a.data()), NQ_ERR_OVERLAP);
  EXPECT_EQ(nq_int8_colwise_dequantize(q.data(), a.data(), 8, 8, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_int8_zeropoint_quantize(x.data(), 8, 8, 2, q.data(), a.data(), z.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'per_row'"));
  EXPECT_EQ(nq_int8_zeropoint_quantize(x.data(), 8, 8, 1, q.data(), a.data(), a.data() + 4), NQ_ERR_OVERLAP);
  for (nq_isa isa : qt::isas()) {
    qt::IsaScope scope(isa);
    auto xn = x;
    xn[5 * 8 + 2] = NAN;
    EXPECT_EQ(nq_int8_rowwise_quantize(xn.data(), 8, 8, q.data(), a.data()), NQ_ERR_NON_FINITE);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "row 5")) << nq_last_error_message();
    EXPECT_EQ(nq_int8_colwise_quantize(xn.data(), 8, 8, q.data(), a.data()), NQ_ERR_NON_FINITE);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "column 2")) << nq_last_error_message();
    EXPECT_EQ(nq_int8_absmax_quantize(xn.data(), 64, q.data(), a.data()), NQ_ERR_NON_FINITE);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "element 42")) << nq_last_error_message();
    EXPECT_EQ(nq_int8_zeropoint_quantize(xn.data(), 8, 8, 1, q.data(), a.data(), z.data()), NQ_ERR_NON_FINITE);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "row 5")) << nq_last_error_message();
  }
  EXPECT_EQ(nq_int8_absmax_dequantize(q.data(), 64, INFINITY, y.data()), NQ_ERR_NON_FINITE);
}

}  // namespace
