// nq_layernorm_forward/backward: the AVX-512 path vs the scalar reference (ISA capped) vs float64,
// on fresh random rows of odd widths, with large offsets, tiny-variance and constant rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "nativequant.h"

namespace {

constexpr double kEps32 = 1.0 / (1 << 24);  // float unit roundoff
// y vs float64, relative to (|xhat w| + |b| + 1): a few roundings of the float ops (<= 4 u), plus
// mean rounded to float (|mean| u absolute in x - mean, times rstd |w|: large for offset, tiny-variance rows).
constexpr double kYTol = 8 * kEps32;
// mean/rstd: fast and reference sum in double in different orders, then round to float: 1 ulp.
constexpr double kStatUlps = 1.0;
// dx and dw/db vs float64: float sums of C (or rows) terms, worst case C u of the largest term;
// C <= 1000 here, so 1e-4 of the per-row magnitude rstd * max|g| * (1 + max|xhat|).
constexpr double kGradTol = 1e-4;

struct IsaCap {
  explicit IsaCap(nq_isa isa) { nq_cpu_isa_set_max(isa); }
  ~IsaCap() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

struct Data {
  int64_t rows, c;
  std::vector<float> x, w, b, dy, dx0, dw0, db0;
};

Data make(int64_t rows, int64_t c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  auto vec = [&](size_t n, float s, float o) {
    std::vector<float> v(n);
    for (auto& e : v) e = o + s * n01(rng);
    return v;
  };
  Data d{rows, c, {}, vec(size_t(c), 0.5f, 1.0f), vec(size_t(c), 0.5f, 0.0f), vec(size_t(rows * c), 1.0f, 0.0f),
         vec(size_t(rows * c), 1.0f, 0.0f), vec(size_t(c), 1.0f, 0.0f), vec(size_t(c), 1.0f, 0.0f)};
  const float spreads[] = {1.0f, 1e-4f, 0.0f, 30.0f}, offsets[] = {0.0f, 1000.0f, 3.0f, -50.0f};
  for (int64_t r = 0; r < rows; ++r) {
    auto row = vec(size_t(c), spreads[r % 4], offsets[(r / 4) % 4]);
    d.x.insert(d.x.end(), row.begin(), row.end());
  }
  return d;
}

struct Out {
  std::vector<float> y, mean, rstd, dx, dw, db;
};

Out run(const Data& d, float eps) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Out o{std::vector<float>(d.x.size(), nan), std::vector<float>(size_t(d.rows), nan),
        std::vector<float>(size_t(d.rows), nan), d.dx0, d.dw0, d.db0};
  EXPECT_EQ(nq_layernorm_forward(d.x.data(), d.rows, d.c, d.w.data(), d.b.data(), eps, o.y.data(), o.mean.data(),
                                 o.rstd.data()),
            NQ_OK);
  EXPECT_EQ(nq_layernorm_backward(d.x.data(), d.dy.data(), d.rows, d.c, d.w.data(), o.mean.data(), o.rstd.data(),
                                  o.dx.data(), o.dw.data(), o.db.data()),
            NQ_OK);
  return o;
}

bool near_ulps(float a, float b, double ulps) {
  return std::fabs(double(a) - double(b)) <= ulps * std::fabs(double(b)) * 2 * kEps32;
}

class LayerNorm : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(LayerNorm, FastMatchesReferenceAndFloat64) {
  const auto [rows, c] = GetParam();
  const float eps = 1e-5f;
  const Data d = make(rows, c, uint64_t(rows * 1000 + c));
  const Out fast = run(d, eps);
  Out ref;
  {
    IsaCap cap(NQ_ISA_SCALAR);
    ref = run(d, eps);
  }
  std::vector<double> dw64(d.dw0.begin(), d.dw0.end()), db64(d.db0.begin(), d.db0.end());
  std::vector<double> pmag(size_t(c), 0.0);  // per column: Σ rows |dy| (1 + |xhat|)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = d.x.data() + r * c;
    const float* dy = d.dy.data() + r * c;
    double mu = 0, var = 0;
    for (int64_t i = 0; i < c; ++i) mu += x[i];
    mu /= double(c);
    for (int64_t i = 0; i < c; ++i) var += (x[i] - mu) * (x[i] - mu);
    const double s64 = 1.0 / std::sqrt(var / double(c) + eps);
    for (const Out* o : std::initializer_list<const Out*>{&fast, &ref}) {
      ASSERT_TRUE(near_ulps(o->mean[size_t(r)], float(mu), kStatUlps)) << "row " << r;
      ASSERT_TRUE(near_ulps(o->rstd[size_t(r)], float(s64), kStatUlps)) << "row " << r;
    }
    for (int64_t i = 0; i < c; ++i) {
      const size_t k = size_t(r * c + i);
      const double xhat64 = (x[i] - mu) * s64;
      const double y64 = xhat64 * d.w[size_t(i)] + d.b[size_t(i)];
      const double tol = kYTol * (std::fabs(xhat64 * d.w[size_t(i)]) + std::fabs(d.b[size_t(i)]) + 1) +
                         2 * std::fabs(mu) * kEps32 * s64 * std::fabs(d.w[size_t(i)]);
      ASSERT_NEAR(fast.y[k], y64, tol) << "row " << r << " i " << i;
      ASSERT_NEAR(ref.y[k], y64, tol) << "row " << r << " i " << i;
    }
    // Backward against float64 from the forward's (float) mean and rstd, the backward's inputs.
    const double m = ref.mean[size_t(r)], s = ref.rstd[size_t(r)];
    double sum = 0, dot = 0, gmax = 0, xmax = 0;
    for (int64_t i = 0; i < c; ++i) {
      const double g = double(dy[i]) * d.w[size_t(i)], xhat = (x[i] - m) * s;
      sum += g;
      dot += g * xhat;
      gmax = std::max(gmax, std::fabs(g));
      xmax = std::max(xmax, std::fabs(xhat));
      dw64[size_t(i)] += dy[i] * xhat;
      db64[size_t(i)] += dy[i];
      pmag[size_t(i)] += std::fabs(dy[i]) * (1 + std::fabs(xhat));
    }
    const double tol = kGradTol * s * gmax * (1 + xmax) + 1e-6;
    for (int64_t i = 0; i < c; ++i) {
      const size_t k = size_t(r * c + i);
      const double dx64 = d.dx0[k] + s * (double(dy[i]) * d.w[size_t(i)] - sum / double(c) - (x[i] - m) * s * dot / double(c));
      ASSERT_NEAR(ref.dx[k], dx64, tol) << "row " << r << " i " << i;
      // fast reads its own mean/rstd: equal to the reference's within kStatUlps, checked above
      ASSERT_NEAR(fast.dx[k], dx64, 2 * tol) << "row " << r << " i " << i;
    }
  }
  for (int64_t i = 0; i < c; ++i) {
    const double tol = kGradTol * pmag[size_t(i)] + 1e-6;
    ASSERT_NEAR(ref.dw[size_t(i)], dw64[size_t(i)], tol) << "column " << i;
    ASSERT_NEAR(fast.dw[size_t(i)], dw64[size_t(i)], 2 * tol) << "column " << i;
    ASSERT_NEAR(ref.db[size_t(i)], db64[size_t(i)], tol) << "column " << i;
    // db reads no statistics and both paths add rows in order: identical
    ASSERT_EQ(fast.db[size_t(i)], ref.db[size_t(i)]) << "column " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayerNorm,
                         ::testing::Values(std::make_tuple(int64_t(16), int64_t(1)), std::make_tuple(int64_t(16), int64_t(7)),
                                           std::make_tuple(int64_t(16), int64_t(16)), std::make_tuple(int64_t(20), int64_t(17)),
                                           std::make_tuple(int64_t(33), int64_t(768)),
                                           std::make_tuple(int64_t(256), int64_t(1000))));  // threaded: >= 2^17

TEST(LayerNorm, NullGradientsAreSkipped) {
  const Data d = make(8, 40, 5);
  const Out full = run(d, 1e-5f);
  std::vector<float> dx = d.dx0, db = d.db0;
  ASSERT_EQ(nq_layernorm_backward(d.x.data(), d.dy.data(), 8, 40, nullptr, full.mean.data(), full.rstd.data(),
                                  nullptr, nullptr, db.data()),
            NQ_OK);
  EXPECT_EQ(db, full.db);
  ASSERT_EQ(nq_layernorm_backward(d.x.data(), d.dy.data(), 8, 40, d.w.data(), full.mean.data(), full.rstd.data(),
                                  dx.data(), nullptr, nullptr),
            NQ_OK);
  EXPECT_EQ(dx, full.dx);
}

TEST(LayerNorm, BadArgumentsReturnStatus) {
  float x[4] = {1, 2, 3, 4}, w[2] = {1, 1}, b[2] = {0, 0}, y[4], m[2], s[2], dx[4];
  EXPECT_EQ(nq_layernorm_forward(x, -1, 2, w, b, 1e-5f, y, m, s), NQ_ERR_SHAPE);
  EXPECT_EQ(nq_layernorm_forward(x, 2, 0, w, b, 1e-5f, y, m, s), NQ_ERR_SHAPE);
  EXPECT_EQ(nq_layernorm_forward(x, 2, 2, w, b, NAN, y, m, s), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_layernorm_forward(x, 2, 2, w, b, -1.0f, y, m, s), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_layernorm_forward(nullptr, 2, 2, w, b, 1e-5f, y, m, s), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_layernorm_forward(x, 2, 2, w, nullptr, 1e-5f, y, m, s), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_layernorm_forward(x, 2, 2, w, b, 1e-5f, y, m, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_layernorm_forward(nullptr, 0, 2, nullptr, nullptr, 1e-5f, nullptr, nullptr, nullptr), NQ_OK);
  EXPECT_EQ(nq_layernorm_backward(x, x, 2, -3, w, m, s, dx, nullptr, nullptr), NQ_ERR_SHAPE);
  EXPECT_EQ(nq_layernorm_backward(x, nullptr, 2, 2, w, m, s, dx, nullptr, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_layernorm_backward(x, x, 2, 2, w, nullptr, s, dx, nullptr, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_layernorm_backward(x, x, 2, 2, nullptr, m, s, dx, nullptr, nullptr), NQ_ERR_NULL_POINTER);
}

}  // namespace
