// nq_cross_entropy_rows: the SIMD path of the active ISA (AVX-512 or AVX2) vs the scalar reference (ISA capped) vs a float64
// computation, on fresh random rows of many widths, spreads and offsets, with ignored rows.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "nativequant.h"

namespace {

// Gradient elements, in units of scale: p in [0, 1] with a ~1 ulp exp (the polynomial: 1.2e-7 relative
// max, cpu/exp_avx512.h and cpu/exp_avx2.h) plus the rounding of x - max (|d| 2^-24 relative, d e^-d <= 1/e): <= 5e-7.
constexpr double kGradTol = 1e-6;
// NLL, absolute: log of a double sum whose terms carry the errors above, p-weighted: <= 6e-8 *
// entropy (<= ln V ~ 10.8) + 1.2e-7 ~ 8e-7.
constexpr double kNllTol = 2e-6;

struct IsaCap {
  explicit IsaCap(nq_isa isa) { nq_cpu_isa_set_max(isa); }
  ~IsaCap() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

struct Case {
  std::vector<float> logits;
  std::vector<int32_t> targets;
  int64_t rows, v;
};

constexpr int32_t kIgnore = -100;

// Rows of N(offset, spread) logits; every 4th row ignored; one row holds a -3e38 logit and one is constant.
Case make_case(int64_t rows, int64_t v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  const float spreads[] = {1.0f, 30.0f, 0.0f, 5.0f};
  const float offsets[] = {0.0f, 1e4f, -1e4f, -80.0f, 90.0f};
  Case c{std::vector<float>(size_t(rows * v)), std::vector<int32_t>(size_t(rows)), rows, v};
  for (int64_t r = 0; r < rows; ++r) {
    const float spread = spreads[r % 4], offset = offsets[r % 5];
    for (int64_t i = 0; i < v; ++i) c.logits[size_t(r * v + i)] = offset + spread * n01(rng);
    if (r == 1) c.logits[size_t(r * v + v / 2)] = -3e38f;
    c.targets[size_t(r)] = r % 4 == 3 ? kIgnore : int32_t(rng() % uint64_t(v));
  }
  return c;
}

void run(Case c, std::vector<float>& grad, std::vector<double>& nll, float scale) {
  grad = c.logits;
  nll.assign(size_t(c.rows), std::numeric_limits<double>::quiet_NaN());
  ASSERT_EQ(nq_cross_entropy_rows(grad.data(), c.rows, c.v, c.targets.data(), kIgnore, scale, nll.data()), NQ_OK);
}

class CrossEntropyRows : public ::testing::TestWithParam<int64_t> {};

TEST_P(CrossEntropyRows, FastMatchesReferenceAndFloat64) {
  const int64_t v = GetParam(), rows = 10;
  const float scale = 1.0f / 7.0f;
  const Case c = make_case(rows, v, uint64_t(v) * 31 + 7);
  std::vector<float> fast, ref;
  std::vector<double> nll_fast, nll_ref;
  run(c, fast, nll_fast, scale);
  {
    IsaCap cap(NQ_ISA_SCALAR);
    run(c, ref, nll_ref, scale);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = c.logits.data() + r * v;
    const int32_t t = c.targets[size_t(r)];
    if (t == kIgnore) {
      EXPECT_EQ(nll_fast[size_t(r)], 0.0);
      EXPECT_EQ(nll_ref[size_t(r)], 0.0);
      for (int64_t i = 0; i < v; ++i) ASSERT_EQ(fast[size_t(r * v + i)], 0.0f) << "row " << r << " i " << i;
      continue;
    }
    double m = x[0], sum = 0.0;
    for (int64_t i = 1; i < v; ++i) m = std::max(m, double(x[i]));
    for (int64_t i = 0; i < v; ++i) sum += std::exp(double(x[i]) - m);
    const double nll64 = m + std::log(sum) - x[t];
    EXPECT_NEAR(nll_fast[size_t(r)], nll64, kNllTol) << "row " << r;
    EXPECT_NEAR(nll_ref[size_t(r)], nll64, kNllTol) << "row " << r;
    EXPECT_NEAR(nll_fast[size_t(r)], nll_ref[size_t(r)], kNllTol) << "row " << r;
    for (int64_t i = 0; i < v; ++i) {
      const double g64 = scale * (std::exp(double(x[i]) - m) / sum - (i == t ? 1.0 : 0.0));
      const size_t k = size_t(r * v + i);
      ASSERT_NEAR(fast[k], g64, kGradTol * scale) << "row " << r << " i " << i;
      ASSERT_NEAR(ref[k], g64, kGradTol * scale) << "row " << r << " i " << i;
      ASSERT_NEAR(fast[k], ref[k], kGradTol * scale) << "row " << r << " i " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Widths, CrossEntropyRows, ::testing::Values(1, 5, 16, 17, 31, 32, 33, 63, 1000, 50257));

TEST(CrossEntropyRows, ZeroRowsIsANoOp) {
  EXPECT_EQ(nq_cross_entropy_rows(nullptr, 0, 5, nullptr, kIgnore, 1.0f, nullptr), NQ_OK);
}

TEST(CrossEntropyRows, BadArgumentsReturnStatusAndLeaveRowsUntouched) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  const std::vector<float> x0 = x;
  std::vector<double> nll(2, -1.0);
  int32_t t_ok[] = {1, kIgnore}, t_high[] = {0, 3}, t_neg[] = {-1, 0};
  EXPECT_EQ(nq_cross_entropy_rows(x.data(), -1, 3, t_ok, kIgnore, 1.0f, nll.data()), NQ_ERR_SHAPE);
  EXPECT_EQ(nq_cross_entropy_rows(x.data(), 2, 0, t_ok, kIgnore, 1.0f, nll.data()), NQ_ERR_SHAPE);
  EXPECT_EQ(nq_cross_entropy_rows(nullptr, 2, 3, t_ok, kIgnore, 1.0f, nll.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_cross_entropy_rows(x.data(), 2, 3, nullptr, kIgnore, 1.0f, nll.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_cross_entropy_rows(x.data(), 2, 3, t_ok, kIgnore, 1.0f, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_cross_entropy_rows(x.data(), 2, 3, t_ok, kIgnore, NAN, nll.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_cross_entropy_rows(x.data(), 2, 3, t_high, kIgnore, 1.0f, nll.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_cross_entropy_rows(x.data(), 2, 3, t_neg, kIgnore, 1.0f, nll.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(x, x0);
  EXPECT_EQ(nll, std::vector<double>(2, -1.0));
}

}  // namespace
