// GELU (tanh approximation): every dispatch level against the scalar reference (bit for bit) and the
// reference against a float64 evaluation, on wide-range data (|x| up to 60, tiny and denormal values,
// the flush boundary near x = -10, specials); outputs poisoned with a marked NaN must all be written;
// beta 0 (dx not read) / 1 / 0.5, every tail length, unaligned and in-place buffers, bad arguments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "activation/gelu.h"
#include "nativequant.h"

namespace {

using nq::activation::kGeluA;
using nq::activation::kGeluC;

// Tolerance vs float64, relative to the result (forward) or to the sum of the magnitudes of the
// derivative's two terms (backward, whose terms cancel near gelu's minimum at x ~ -0.75):
//  - kUnits: the float exp (~1 ulp: Cephes polynomial, Cody-Waite reduction), 1 + e, the division and
//    the products after it (0.5 ulp each), ~4 ulp; 8 with margin.
//  - kZUnits per unit of |2u|: 2u = 2 sqrt(2/pi) (x + a x^3) is rounded in float (x^2, fma, two
//    products: 4 roundings, <= 4 2^-24 relative; 2.9 seen), and exp(-|2u|) turns that absolute error
//    into a relative one. Any float evaluation of u has it (torch's too; its 1 + tanh(u) also cancels
//    for x < 0): up to ~1e-5 relative where gelu(x) ~ x exp(2u) is tiny (x < -3), 1e-6 at x = -3.
//  - kFloor: exp(-|2u|) below 2^-125 is flushed to zero (no denormals), so results smaller than
//    |x| 1.42 2^-125 <= 2^-120 (forward) and |x| 2u' times that <= 2^-110 (derivative) become 0.
constexpr double kUnit = 1.0 / (1 << 24);
constexpr double kUnits = 8.0;
constexpr double kZUnits = 4.0;
constexpr double kFloorForward = 0x1p-120;
constexpr double kFloorDerivative = 0x1p-110;
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

// Output poison: a NaN no computation produces (inputs' NaNs are default ones, arithmetic gives those).
float poison() {
  const uint32_t bits = 0x7fc5a5a5u;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
bool is_poison(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits == 0x7fc5a5a5u;
}
bool same_bits(float a, float b) {  // NaN's sign and payload are not part of the contract
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, 4) == 0;
}

// float64 gelu at the float x (with the float constants): y = x s, s = sigmoid(2u), and
// gelu' = s + 2 x s (1 - s) u', each sigmoid taken from exp(-|2u|) so nothing overflows or cancels.
struct Truth {
  double z;    // 2u
  double y;    // gelu(x)
  double dy;   // gelu'(x)
  double mag;  // |s| + |2 x s (1 - s) u'|
};
Truth truth(float xf) {
  const double x = xf, c = kGeluC, a = kGeluA;
  const double z = 2.0 * c * (x + a * x * x * x);
  const double e = std::exp(-std::fabs(z));
  const double s = (z >= 0 ? 1.0 : e) / (1.0 + e), q = (z >= 0 ? e : 1.0) / (1.0 + e);
  const double t = 2.0 * x * s * q * c * (1.0 + 3.0 * a * x * x);
  return {z, x * s, s + t, std::fabs(s) + std::fabs(t)};
}

struct IsaCap {  // force a dispatch level; restore on scope exit
  explicit IsaCap(nq_isa isa) { nq_cpu_isa_set_max(isa); }
  ~IsaCap() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

std::vector<nq_isa> isas() {
  nq_isa sup = NQ_ISA_SCALAR;
  nq_cpu_isa_supported(&sup);
  std::vector<nq_isa> out;
  for (int i = NQ_ISA_SCALAR; i <= sup; ++i) out.push_back(static_cast<nq_isa>(i));
  return out;
}

// Wide-range inputs: uniform |x| <= 60, normal(0, 3) (activations), the flush boundary [-12, -8], tiny and
// denormal magnitudes of either sign, and specials (NaN, +-Inf, +-0, +-FLT_MAX, +-1e20 whose cube overflows).
std::vector<float> inputs(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> wide(-60.0f, 60.0f), edge(-12.0f, -8.0f), expo(-45.0f, -2.0f);
  std::normal_distribution<float> act(0.0f, 3.0f);
  const float specials[] = {kNaN, kInf, -kInf, 0.0f, -0.0f, std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(), 1e20f, -1e20f, 1e-42f, -1e-42f};
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    switch (rng() % 8) {
      case 0: case 1: x[i] = wide(rng); break;
      case 2: case 3: case 4: x[i] = act(rng); break;
      case 5: x[i] = edge(rng); break;
      case 6: x[i] = (rng() % 2 ? 1.0f : -1.0f) * std::pow(10.0f, expo(rng)); break;
      default: x[i] = rng() % 4 == 0 ? specials[rng() % std::size(specials)] : act(rng) * 0.1f;
    }
  }
  return x;
}

std::vector<float> uniform(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& f : v) f = d(rng);
  return v;
}

// Worst error in units of the tolerance (<= 1 passes), for the log.
struct Worst {
  double ratio = 0;
  float x = 0;
  void add(double err, double tol, float xi) {
    if (err / tol > ratio) ratio = err / tol, x = xi;
  }
};

void expect_forward_close(const std::vector<float>& x, const float* y, Worst* worst) {
  for (size_t i = 0; i < x.size(); ++i) {
    const Truth t = truth(x[i]);
    ASSERT_FALSE(is_poison(y[i])) << "y[" << i << "] not written";
    if (std::isnan(t.y)) {
      ASSERT_TRUE(std::isnan(y[i])) << "x = " << x[i];
      continue;
    }
    if (std::isinf(t.y)) {
      ASSERT_EQ(double(y[i]), t.y) << "x = " << x[i];
      continue;
    }
    const double tol = (kUnits + kZUnits * std::fabs(t.z)) * kUnit * std::fabs(t.y) + kFloorForward;
    const double err = std::fabs(double(y[i]) - t.y);
    ASSERT_LE(err, tol) << "x = " << x[i] << " y = " << y[i] << " float64 " << t.y;
    if (t.y == 0) ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i])) << "x = " << x[i];
    worst->add(err, tol, x[i]);
  }
}

void expect_backward_close(const std::vector<float>& x, const std::vector<float>& g, const std::vector<float>& dx0,
                           float beta, const float* dx, Worst* worst) {
  for (size_t i = 0; i < x.size(); ++i) {
    const Truth t = truth(x[i]);
    ASSERT_FALSE(is_poison(dx[i])) << "dx[" << i << "] not written";
    const double keep = beta == 0.0f ? 0.0 : double(beta) * dx0[i];
    const double want = keep + double(g[i]) * t.dy;
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(dx[i])) << "x = " << x[i];
      continue;
    }
    const double mag = std::fabs(keep) + std::fabs(double(g[i])) * t.mag;
    const double tol = (kUnits + kZUnits * std::fabs(t.z)) * kUnit * mag + std::fabs(g[i]) * kFloorDerivative;
    const double err = std::fabs(double(dx[i]) - want);
    ASSERT_LE(err, tol) << "x = " << x[i] << " g = " << g[i] << " dx = " << dx[i] << " float64 " << want;
    worst->add(err, tol, x[i]);
  }
}

const int64_t kLengths[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 100, 1000, 4111, 100003};

TEST(Gelu, ForwardEveryPathMatchesReferenceAndFloat64) {
  Worst worst;
  for (int64_t n : kLengths)
    for (int64_t offset : {0, 1, 3}) {  // unaligned starts
      const std::vector<float> x = inputs(n, uint32_t(n * 7 + offset));
      std::vector<float> ref(n, poison());
      nq::activation::gelu_forward_ref(x.data(), n, ref.data());
      expect_forward_close(x, ref.data(), &worst);
      for (nq_isa isa : isas()) {
        IsaCap cap(isa);
        std::vector<float> xb(n + offset + 1, 1.0f), yb(n + offset + 1, 7.0f);
        std::copy(x.begin(), x.end(), xb.begin() + offset);
        std::fill(yb.begin() + offset, yb.begin() + offset + n, poison());
        ASSERT_EQ(nq_gelu_forward(xb.data() + offset, n, yb.data() + offset), NQ_OK);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_TRUE(same_bits(yb[offset + i], ref[i]))
              << "isa " << isa << " n " << n << " i " << i << " x " << x[i] << ": " << yb[offset + i] << " vs "
              << ref[i];
        for (int64_t i = 0; i < offset; ++i) ASSERT_EQ(yb[i], 7.0f) << "wrote before y";
        ASSERT_EQ(yb[offset + n], 7.0f) << "wrote past y[n - 1], isa " << isa << " n " << n;
      }
    }
  std::printf("forward: worst error %.3f of the tolerance (x = %g)\n", worst.ratio, double(worst.x));
}

TEST(Gelu, BackwardEveryPathMatchesReferenceAndFloat64) {
  Worst worst;
  for (int64_t n : kLengths)
    for (float beta : {0.0f, 1.0f, 0.5f}) {
      const std::vector<float> x = inputs(n, uint32_t(n * 3 + 11)), g = uniform(n, uint32_t(n + 5), -2.0f, 2.0f),
                               dx0 = uniform(n, uint32_t(n + 9), -1.0f, 1.0f);
      // beta 0 must not read dx: start it poisoned (a read would give NaN).
      std::vector<float> ref = beta == 0.0f ? std::vector<float>(n, poison()) : dx0;
      nq::activation::gelu_backward_ref(x.data(), g.data(), n, beta, ref.data());
      expect_backward_close(x, g, dx0, beta, ref.data(), &worst);
      for (nq_isa isa : isas()) {
        IsaCap cap(isa);
        std::vector<float> dx = beta == 0.0f ? std::vector<float>(n, poison()) : dx0;
        dx.push_back(7.0f);
        ASSERT_EQ(nq_gelu_backward(x.data(), g.data(), n, beta, dx.data()), NQ_OK);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_TRUE(same_bits(dx[i], ref[i]))
              << "isa " << isa << " n " << n << " beta " << beta << " i " << i << " x " << x[i] << ": " << dx[i]
              << " vs " << ref[i];
        ASSERT_EQ(dx[n], 7.0f) << "wrote past dx[n - 1], isa " << isa << " n " << n;
      }
    }
  std::printf("backward: worst error %.3f of the tolerance (x = %g)\n", worst.ratio, double(worst.x));
}

// Exact values: specials as the formula gives them, gelu(-0) = -0, saturation, gelu'(0) = 1/2.
TEST(Gelu, SpecialValues) {
  for (nq_isa isa : isas()) {
    IsaCap cap(isa);
    const std::vector<float> x = {kNaN, kInf, -kInf, 0.0f, -0.0f, 30.0f, -30.0f, 1e30f, -1e30f};
    std::vector<float> y(x.size()), d(x.size()), g(x.size(), 1.0f);
    ASSERT_EQ(nq_gelu_forward(x.data(), int64_t(x.size()), y.data()), NQ_OK);
    ASSERT_EQ(nq_gelu_backward(x.data(), g.data(), int64_t(x.size()), 0.0f, d.data()), NQ_OK);
    EXPECT_TRUE(std::isnan(y[0]) && std::isnan(d[0]));
    EXPECT_EQ(y[1], kInf);
    EXPECT_TRUE(std::isnan(d[1]));  // 1 + Inf * 0 in the formula
    EXPECT_TRUE(std::isnan(y[2]) && std::isnan(d[2]));  // -Inf * 0
    EXPECT_TRUE(y[3] == 0.0f && !std::signbit(y[3]));
    EXPECT_TRUE(y[4] == 0.0f && std::signbit(y[4]));
    EXPECT_EQ(d[3], 0.5f);
    EXPECT_EQ(d[4], 0.5f);
    EXPECT_EQ(y[5], 30.0f);
    EXPECT_EQ(d[5], 1.0f);
    EXPECT_TRUE(y[6] == 0.0f && std::signbit(y[6]));
    EXPECT_EQ(d[6], 0.0f);
    EXPECT_EQ(y[7], 1e30f);
    EXPECT_EQ(d[7], 1.0f);
    EXPECT_EQ(y[8], 0.0f);
    EXPECT_EQ(d[8], 0.0f);
  }
}

// Outputs that are exactly an input (dx = g, dx = x, y = x; beta 0 and 1) give the out-of-place bits.
TEST(Gelu, InPlace) {
  const int64_t n = 1001;
  const std::vector<float> x = inputs(n, 5), g = uniform(n, 6, -1.0f, 1.0f);
  std::vector<float> y(n), d(n), dx_acc = x;  // beta 1 out of place, dx starting as a copy of x
  ASSERT_EQ(nq_gelu_forward(x.data(), n, y.data()), NQ_OK);
  ASSERT_EQ(nq_gelu_backward(x.data(), g.data(), n, 0.0f, d.data()), NQ_OK);
  ASSERT_EQ(nq_gelu_backward(x.data(), g.data(), n, 1.0f, dx_acc.data()), NQ_OK);
  std::vector<float> a = x, b = g, c = x, e = x;
  ASSERT_EQ(nq_gelu_forward(a.data(), n, a.data()), NQ_OK);
  ASSERT_EQ(nq_gelu_backward(x.data(), b.data(), n, 0.0f, b.data()), NQ_OK);
  ASSERT_EQ(nq_gelu_backward(c.data(), g.data(), n, 0.0f, c.data()), NQ_OK);
  ASSERT_EQ(nq_gelu_backward(e.data(), g.data(), n, 1.0f, e.data()), NQ_OK);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(same_bits(a[i], y[i])) << i;
    ASSERT_TRUE(same_bits(b[i], d[i])) << i;
    ASSERT_TRUE(same_bits(c[i], d[i])) << i;
    ASSERT_TRUE(same_bits(e[i], dx_acc[i])) << i;
  }
}

TEST(Gelu, BadArguments) {
  std::vector<float> x(64, 1.0f), g(64, 1.0f), y(64);
  EXPECT_EQ(nq_gelu_forward(nullptr, 4, y.data()), NQ_ERR_NULL_POINTER);
  EXPECT_NE(std::strstr(nq_last_error_message(), "'x'"), nullptr);
  EXPECT_EQ(nq_gelu_forward(x.data(), 4, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_gelu_forward(x.data(), 0, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_gelu_forward(x.data(), -3, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(nq_last_error_message(), "'n'"), nullptr);
  EXPECT_EQ(nq_gelu_forward(x.data(), 8, x.data() + 1), NQ_ERR_OVERLAP);
  EXPECT_EQ(nq_gelu_forward(x.data() + 1, 8, x.data()), NQ_ERR_OVERLAP);
  EXPECT_EQ(nq_gelu_backward(nullptr, g.data(), 4, 0.0f, y.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_gelu_backward(x.data(), nullptr, 4, 0.0f, y.data()), NQ_ERR_NULL_POINTER);
  EXPECT_NE(std::strstr(nq_last_error_message(), "'g'"), nullptr);
  EXPECT_EQ(nq_gelu_backward(x.data(), g.data(), 4, 0.0f, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_gelu_backward(x.data(), g.data(), 0, 0.0f, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_gelu_backward(x.data(), g.data(), 4, kNaN, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::strstr(nq_last_error_message(), "'beta'"), nullptr);
  EXPECT_EQ(nq_gelu_backward(x.data(), g.data(), 4, kInf, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_gelu_backward(x.data(), g.data(), 8, 1.0f, x.data() + 4), NQ_ERR_OVERLAP);
  EXPECT_EQ(nq_gelu_backward(x.data(), g.data(), 8, 1.0f, g.data() + 7), NQ_ERR_OVERLAP);
  EXPECT_NE(std::strstr(nq_last_error_message(), "'g'"), nullptr);
  for (float v : y) EXPECT_EQ(v, 0.0f) << "a rejected call wrote its output";
}

}  // namespace
