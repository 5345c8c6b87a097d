// Optimizer kernels: 32-bit vs double-precision formulas, 8-bit vs 32-bit within
// bitsandbytes' test_optim tolerances, ISA/thread/paged bit-identity, bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nativequant.h"

namespace {

// ---- tolerances (named, with why) ----
// 32-bit vs double over 100 steps: each step adds ~1 ulp of |p| (~0.1) of rounding, so
// the drift stays far below 1e-6; the state recursions are contractions (beta < 1).
constexpr double kParam32Abs = 2e-6;
constexpr double kState32Rel = 1e-5, kState32Abs = 1e-9;
// Lion takes sign() of a value that can sit at 0 within rounding: a flip moves p by lr or
// 2 lr; bitsandbytes allows 5 such elements per step, and so do we (params re-synced).
constexpr int kLionMaxFlips = 5;
// bitsandbytes tests/test_optim.py::test_optimizer8bit (fp32 gradients), checked every step
// of 100 against a reference step taken from the 8-bit run's params and dequantized state:
//  - params: assert_most_approx_close(p1, p2, patol, prtol) binds (rtol, atol) =
//    (1e-5, 1e-3) positionally; up to 5 elements may differ for Lion, 0 otherwise.
//  - dequantized states: fewer than 20 elements outside isclose(atol 3e-3, rtol 1e-3).
//  - mean |p1 - p2| < 1.2e-4 and mean relative error < 1.2e-3.
constexpr double kParam8Rtol = 1e-5, kParam8Atol = 1e-3;
constexpr double kState8Atol = 3e-3, kState8Rtol = 1e-3;
constexpr int kState8MaxNotClose = 20;
constexpr double kErrMean = 1.2e-4, kRelErrMean = 1.2e-3;

struct IsaCap {  // force a dispatch level; restore on scope exit
  nq_isa saved;
  explicit IsaCap(nq_isa isa) {
    nq_cpu_isa_get(&saved);
    nq_cpu_isa_set_max(isa);
  }
  ~IsaCap() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

std::vector<float> randn(std::mt19937_64& rng, size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng) * scale;
  return v;
}

// Gradients ~ N(0, 0.01^2), except block 0: one large value and 255 tiny ones of both signs,
// so its normalised state lands next to code 0 and the state1 sign rule gets exercised.
std::vector<float> grads(std::mt19937_64& rng, size_t n) {
  std::vector<float> g = randn(rng, n, 0.01f);
  for (size_t i = 0; i < std::min<size_t>(n, NQ_OPTIMIZER8_BLOCKSIZE); ++i) g[i] = i == 0 ? 1.0f : g[i] * 1e-7f;
  return g;
}

std::vector<float> dynamic_map(int is_signed) {
  std::vector<float> c(256);
  EXPECT_EQ(nq_dynamic_map_create(is_signed, c.data()), NQ_OK);
  return c;
}

nq_optimizer_params adamw_params(int64_t step) { return {1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, 1.0f, step}; }
nq_optimizer_params lion_params(int64_t step) { return {1e-4f, 0.9f, 0.99f, 0.0f, 1e-2f, 1.0f, step}; }

int64_t blocks(int64_t n) { return (n + NQ_OPTIMIZER8_BLOCKSIZE - 1) / NQ_OPTIMIZER8_BLOCKSIZE; }

// 8-bit optimizer state (fresh: zero bytes and zero absmax, as bitsandbytes).
struct State8 {
  std::vector<uint8_t> q1, q2;
  std::vector<float> a1, a2;
  State8(int64_t n, bool two) : q1(n, 0), q2(two ? n : 0, 0), a1(blocks(n), 0.0f), a2(two ? blocks(n) : 0, 0.0f) {}
  bool operator==(const State8& o) const { return q1 == o.q1 && q2 == o.q2 && a1 == o.a1 && a2 == o.a2; }
};

nq_status step8(nq_optimizer_kind kind, const nq_optimizer_params& hp, std::vector<float>& p,
                const std::vector<float>& g, State8& s, const std::vector<float>& c1, const std::vector<float>& c2) {
  const bool two = kind == NQ_OPTIMIZER_ADAMW;
  return nq_optimizer8_step(kind, &hp, p.data(), g.data(), s.q1.data(), s.a1.data(), two ? s.q2.data() : nullptr,
                            two ? s.a2.data() : nullptr, c1.data(), two ? c2.data() : nullptr, int64_t(p.size()));
}

std::vector<float> dequantize(const std::vector<uint8_t>& q, const std::vector<float>& absmax,
                              const std::vector<float>& code) {
  std::vector<float> x(q.size(), NAN);
  EXPECT_EQ(nq_blockwise8_dequantize(q.data(), absmax.data(), int64_t(q.size()), NQ_OPTIMIZER8_BLOCKSIZE,
                                     code.data(), x.data()),
            NQ_OK);
  return x;
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// 32-bit vs an independent double-precision formula (torch's form of bias correction).

TEST(Optimizer32, AdamWMatchesDoubleFormulaOver100Steps) {
  for (nq_isa isa : {NQ_ISA_SCALAR, NQ_ISA_AVX512}) {
    IsaCap cap(isa);
    std::mt19937_64 rng(11);
    const int64_t n = 20000 + 13;
    std::vector<float> p = randn(rng, n, 0.1f), m(n, 0.0f), v(n, 0.0f);
    std::vector<double> pd(p.begin(), p.end()), md(n, 0.0), vd(n, 0.0);
    for (int64_t t = 1; t <= 100; ++t) {
      const std::vector<float> g = randn(rng, n, 0.01f);
      nq_optimizer_params hp = adamw_params(t);
      hp.gnorm_scale = 0.75f;  // exercise the clipping hook
      ASSERT_EQ(nq_optimizer32_step(NQ_OPTIMIZER_ADAMW, &hp, p.data(), g.data(), m.data(), v.data(), n), NQ_OK)
          << nq_last_error_message();
      const double b1 = hp.beta1, b2 = hp.beta2, lr = hp.lr;
      for (int64_t i = 0; i < n; ++i) {
        const double gi = double(g[i]) * hp.gnorm_scale;
        md[i] = b1 * md[i] + (1 - b1) * gi;
        vd[i] = b2 * vd[i] + (1 - b2) * gi * gi;
        const double mhat = md[i] / (1 - std::pow(b1, t)), vhat = vd[i] / (1 - std::pow(b2, t));
        pd[i] -= lr * mhat / (std::sqrt(vhat) + hp.eps);
        pd[i] *= 1 - lr * hp.weight_decay;
      }
    }
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
      bad += std::fabs(p[i] - pd[i]) > kParam32Abs;
      bad += std::fabs(m[i] - md[i]) > kState32Abs + kState32Rel * std::fabs(md[i]);
      bad += std::fabs(v[i] - vd[i]) > kState32Abs + kState32Rel * std::fabs(vd[i]);
    }
    EXPECT_EQ(bad, 0) << "isa " << isa;
  }
}

TEST(Optimizer32, LionMatchesDoubleFormulaOver100Steps) {
  for (nq_isa isa : {NQ_ISA_SCALAR, NQ_ISA_AVX512}) {
    IsaCap cap(isa);
    std::mt19937_64 rng(12);
    const int64_t n = 20000 + 7;
    std::vector<float> p = randn(rng, n, 0.1f), m(n, 0.0f);
    std::vector<double> pd(p.begin(), p.end()), md(n, 0.0);
    int flips_max = 0;
    for (int64_t t = 1; t <= 100; ++t) {
      const std::vector<float> g = randn(rng, n, 0.01f);
      const nq_optimizer_params hp = lion_params(t);
      ASSERT_EQ(nq_optimizer32_step(NQ_OPTIMIZER_LION, &hp, p.data(), g.data(), m.data(), nullptr, n), NQ_OK)
          << nq_last_error_message();
      int flips = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double interp = hp.beta1 * md[i] + (1.0 - hp.beta1) * g[i];
        pd[i] *= 1 - double(hp.lr) * hp.weight_decay;
        pd[i] -= hp.lr * double((interp > 0) - (interp < 0));
        md[i] = hp.beta2 * md[i] + (1.0 - hp.beta2) * g[i];
        flips += std::fabs(p[i] - pd[i]) > kParam32Abs;
        pd[i] = p[i];  // a flip is permanent; count new ones per step (as bitsandbytes)
      }
      flips_max = std::max(flips_max, flips);
    }
    int bad_state = 0;
    for (int64_t i = 0; i < n; ++i)
      bad_state += std::fabs(m[i] - md[i]) > kState32Abs + kState32Rel * std::fabs(md[i]);
    EXPECT_LE(flips_max, kLionMaxFlips) << "isa " << isa;
    EXPECT_EQ(bad_state, 0) << "isa " << isa;
  }
}

// ---------------------------------------------------------------------------------------
// 8-bit vs 32-bit, bitsandbytes' protocol.

namespace {

void check_8bit_vs_32bit(nq_optimizer_kind kind) {
  const bool two = kind == NQ_OPTIMIZER_ADAMW;
  const std::vector<float> c1 = dynamic_map(1), c2 = dynamic_map(0);
  std::mt19937_64 rng(two ? 21 : 22);
  const int64_t n = 1024 * 1024 + 77;  // bitsandbytes' 1024 x 1024 plus a partial block
  std::vector<float> p8 = randn(rng, n, 0.1f), p32 = p8, m32(n, 0.0f), v32(two ? n : 0, 0.0f);
  State8 s(n, two);
  std::vector<float> m_old(n, 0.0f), v_old(two ? n : 0, 0.0f);
  std::vector<double> pd(n), md(n), vd(two ? n : 0);
  int param_not_close_max = 0, state_not_close_max = 0, drift_not_close = 0;
  double err_mean_max = 0, relerr_mean_max = 0, drift_err_mean_max = 0;
  for (int64_t t = 1; t <= 100; ++t) {
    const std::vector<float> g = randn(rng, n, 0.01f);
    const nq_optimizer_params hp = two ? adamw_params(t) : lion_params(t);
    // bitsandbytes' protocol: an independent reference step (here in double, torch's form)
    // from the 8-bit run's params and dequantized state.
    const double b1 = hp.beta1, b2 = hp.beta2, lr = hp.lr, decay = 1 - lr * hp.weight_decay;
    for (int64_t i = 0; i < n; ++i) {
      const double gi = g[i];
      if (two) {
        md[i] = b1 * m_old[i] + (1 - b1) * gi;
        vd[i] = b2 * v_old[i] + (1 - b2) * gi * gi;
        const double mhat = md[i] / (1 - std::pow(b1, t)), vhat = vd[i] / (1 - std::pow(b2, t));
        pd[i] = (p8[i] - lr * mhat / (std::sqrt(vhat) + hp.eps)) * decay;
      } else {
        const double interp = b1 * m_old[i] + (1 - b1) * gi;
        pd[i] = p8[i] * decay - lr * double((interp > 0) - (interp < 0));
        md[i] = b2 * m_old[i] + (1 - b2) * gi;
      }
    }
    ASSERT_EQ(step8(kind, hp, p8, g, s, c1, c2), NQ_OK) << nq_last_error_message();
    // A long-running 32-bit twin (params re-synced, state never) bounds the drift that the
    // 8-bit state's quantization error accumulates over the 100 steps.
    ASSERT_EQ(nq_optimizer32_step(kind, &hp, p32.data(), g.data(), m32.data(), two ? v32.data() : nullptr, n),
              NQ_OK);
    int param_not_close = 0;
    double err = 0, relerr = 0, drift = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = std::fabs(pd[i] - p8[i]);
      param_not_close += d > kParam8Atol + kParam8Rtol * std::fabs(p8[i]);
      err += d;
      relerr += d / (std::fabs(pd[i]) + 1e-9);
      drift += std::fabs(double(p32[i]) - p8[i]);
    }
    m_old = dequantize(s.q1, s.a1, c1);
    if (two) v_old = dequantize(s.q2, s.a2, c2);
    for (int k = 0; k < (two ? 2 : 1); ++k) {
      const std::vector<double>& ref = k == 0 ? md : vd;
      const std::vector<float>& deq = k == 0 ? m_old : v_old;
      const std::vector<float>& twin = k == 0 ? m32 : v32;
      int not_close = 0;
      for (int64_t i = 0; i < n; ++i) {
        not_close += !(std::fabs(ref[i] - deq[i]) <= kState8Atol + kState8Rtol * std::fabs(deq[i]));
        drift_not_close += t == 100 && !(std::fabs(twin[i] - deq[i]) <= kState8Atol + kState8Rtol * std::fabs(deq[i]));
      }
      state_not_close_max = std::max(state_not_close_max, not_close);
    }
    param_not_close_max = std::max(param_not_close_max, param_not_close);
    err_mean_max = std::max(err_mean_max, err / n);
    relerr_mean_max = std::max(relerr_mean_max, relerr / n);
    drift_err_mean_max = std::max(drift_err_mean_max, drift / n);
    p32 = p8;
  }
  EXPECT_LE(param_not_close_max, two ? 0 : 5);
  EXPECT_LT(state_not_close_max, kState8MaxNotClose);
  EXPECT_LT(err_mean_max, kErrMean);
  EXPECT_LT(relerr_mean_max, kRelErrMean);
  // Drift twin: bitsandbytes' absolute bounds (its relative-error mean is dominated by
  // params near 0 once errors accumulate, so it is only applied per step above).
  EXPECT_LT(drift_err_mean_max, kErrMean);
  EXPECT_LT(drift_not_close, kState8MaxNotClose);
  std::printf("  8-bit vs reference, worst step: params not close %d, states not close %d, mean err %.3g, "
              "mean rel err %.3g; 32-bit twin drift: mean err %.3g, states not close %d\n",
              param_not_close_max, state_not_close_max, err_mean_max, relerr_mean_max, drift_err_mean_max,
              drift_not_close);
}

}  // namespace

TEST(Optimizer8, AdamWWithinBitsandbytesToleranceOf32Bit) { check_8bit_vs_32bit(NQ_OPTIMIZER_ADAMW); }
TEST(Optimizer8, LionWithinBitsandbytesToleranceOf32Bit) { check_8bit_vs_32bit(NQ_OPTIMIZER_LION); }

// One step from a non-trivial state: recompute the fp32 states independently and check the
// stored absmax is max |state| and each code is the nearest one (or, for state1, the
// neighbour that restores the sign).
TEST(Optimizer8, RequantizesToNearestCodeWithSignRule) {
  const std::vector<float> c1 = dynamic_map(1), c2 = dynamic_map(0);
  std::mt19937_64 rng(23);
  const int64_t n = 8 * 256 + 100;
  std::vector<float> p = randn(rng, n, 0.1f);
  State8 s(n, true);
  for (int t = 1; t <= 3; ++t)  // build up a state with both signs
    ASSERT_EQ(step8(NQ_OPTIMIZER_ADAMW, adamw_params(t), p, grads(rng, n), s, c1, c2), NQ_OK);
  const std::vector<float> m_old = dequantize(s.q1, s.a1, c1), v_old = dequantize(s.q2, s.a2, c2);
  const std::vector<float> g = grads(rng, n);
  const nq_optimizer_params hp = adamw_params(4);
  ASSERT_EQ(step8(NQ_OPTIMIZER_ADAMW, hp, p, g, s, c1, c2), NQ_OK);
  int wrong = 0, sign_fixed = 0;
  for (int k = 0; k < 2; ++k) {
    const std::vector<float>& code = k == 0 ? c1 : c2;
    for (int64_t b = 0; b < blocks(n); ++b) {
      const int64_t i0 = b * 256, i1 = std::min(n, i0 + 256);
      std::vector<double> st;
      double mx = 0;
      for (int64_t i = i0; i < i1; ++i) {
        const double x = k == 0 ? hp.beta1 * double(m_old[i]) + (1.0 - hp.beta1) * g[i]
                                : hp.beta2 * double(v_old[i]) + (1.0 - hp.beta2) * double(g[i]) * g[i];
        st.push_back(x);
        mx = std::max(mx, std::fabs(x));
      }
      const float absmax = k == 0 ? s.a1[b] : s.a2[b];
      EXPECT_NEAR(absmax, mx, 1e-6 * mx) << "block " << b;
      for (int64_t i = i0; i < i1; ++i) {
        const double x = st[i - i0] / mx;
        int best = 0;
        for (int c = 1; c < 256; ++c)
          if (std::fabs(code[c] - x) < std::fabs(code[best] - x)) best = c;
        const int q = k == 0 ? s.q1[i] : s.q2[i];
        // Within float rounding of a midpoint either neighbour is acceptable.
        const bool tie = std::fabs(std::fabs(code[best] - x) - std::fabs(code[q] - x)) < 1e-6;
        const bool sign_rule = k == 0 && std::signbit(code[best]) != std::signbit(x) &&
                               q == best + (x > 0 ? 1 : -1) && std::signbit(code[q]) == std::signbit(x);
        sign_fixed += sign_rule;
        wrong += !(q == best || tie || sign_rule);
      }
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(sign_fixed, 0) << "block 0 should exercise the sign rule";
  std::printf("  state1 codes moved by the sign rule: %d\n", sign_fixed);
}

// ---------------------------------------------------------------------------------------
// Bit identity: ISA paths, thread counts.

namespace {

struct RunResult {
  std::vector<float> p, m, v;
  State8 s;
};

RunResult run_steps(nq_optimizer_kind kind, bool eight, int steps, uint64_t seed, int64_t n) {
  const bool two = kind == NQ_OPTIMIZER_ADAMW;
  const std::vector<float> c1 = dynamic_map(1), c2 = dynamic_map(0);
  std::mt19937_64 rng(seed);
  RunResult r{randn(rng, n, 0.1f), std::vector<float>(n, 0.0f), std::vector<float>(two ? n : 0, 0.0f), State8(n, two)};
  for (int t = 1; t <= steps; ++t) {
    const std::vector<float> g = grads(rng, n);
    nq_optimizer_params hp = two ? adamw_params(t) : lion_params(t);
    hp.gnorm_scale = 0.5f;
    const nq_status st = eight ? step8(kind, hp, r.p, g, r.s, c1, c2)
                               : nq_optimizer32_step(kind, &hp, r.p.data(), g.data(), r.m.data(),
                                                     two ? r.v.data() : nullptr, n);
    EXPECT_EQ(st, NQ_OK) << nq_last_error_message();
  }
  return r;
}

}  // namespace

TEST(OptimizerBits, SimdMatchesReferenceBitwiseAcrossThreadCounts) {
  nq_isa sup;
  ASSERT_EQ(nq_cpu_isa_supported(&sup), NQ_OK);
  if (sup < NQ_ISA_AVX512) GTEST_SKIP() << "no AVX-512 on this CPU";
  int32_t threads = 1;
  ASSERT_EQ(nq_threads_get(&threads), NQ_OK);
  const int64_t n = 3 * 16384 + 5 * 256 + 77;  // several parallel chunks and a partial block
  for (nq_optimizer_kind kind : {NQ_OPTIMIZER_ADAMW, NQ_OPTIMIZER_LION}) {
    for (bool eight : {false, true}) {
      const RunResult ref = [&] {
        IsaCap cap(NQ_ISA_SCALAR);
        return run_steps(kind, eight, 20, 31, n);
      }();
      IsaCap cap(NQ_ISA_AVX512);
      const RunResult simd = run_steps(kind, eight, 20, 31, n);
      ASSERT_EQ(nq_threads_set(1), NQ_OK);
      const RunResult simd1 = run_steps(kind, eight, 20, 31, n);
      ASSERT_EQ(nq_threads_set(threads), NQ_OK);
      for (const RunResult* r : {&simd, &simd1}) {
        EXPECT_TRUE(bits_equal(ref.p, r->p)) << "kind " << kind << " 8-bit " << eight;
        EXPECT_TRUE(bits_equal(ref.m, r->m) && bits_equal(ref.v, r->v)) << "kind " << kind;
        EXPECT_TRUE(ref.s == r->s) << "kind " << kind << " 8-bit state";
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Paged state (budget 25% of the state: constant eviction) vs unpaged, bitwise.

namespace {

void check_paged(nq_optimizer_kind kind, bool eight, int steps) {
  const bool two = kind == NQ_OPTIMIZER_ADAMW;
  const std::vector<float> c1 = dynamic_map(1), c2 = dynamic_map(0);
  const int64_t n = 256 * 1024 + 77;
  const uint64_t state_bytes =
      (eight ? uint64_t(n) + 4 * blocks(n) : 4 * uint64_t(n)) * (two ? 2 : 1);
  nq_pager* pager = nullptr;
  ASSERT_EQ(nq_pager_create(state_bytes / 4, 4096, "/tmp", &pager), NQ_OK) << nq_last_error_message();
  int64_t b1 = -1, b2 = -1, a1 = -1, a2 = -1;
  ASSERT_EQ(nq_pager_alloc(pager, eight ? n : 4 * n, &b1), NQ_OK);
  if (two) ASSERT_EQ(nq_pager_alloc(pager, eight ? n : 4 * n, &b2), NQ_OK);
  if (eight) ASSERT_EQ(nq_pager_alloc(pager, 4 * blocks(n), &a1), NQ_OK);
  if (eight && two) ASSERT_EQ(nq_pager_alloc(pager, 4 * blocks(n), &a2), NQ_OK);

  std::mt19937_64 rng(41);
  std::vector<float> p = randn(rng, n, 0.1f), pp = p, m(n, 0.0f), v(two ? n : 0, 0.0f);
  State8 s(n, two);
  for (int t = 1; t <= steps; ++t) {
    const std::vector<float> g = randn(rng, n, 0.01f);
    const nq_optimizer_params hp = two ? adamw_params(t) : lion_params(t);
    if (eight) {
      ASSERT_EQ(step8(kind, hp, p, g, s, c1, c2), NQ_OK);
      ASSERT_EQ(nq_optimizer8_step_paged(kind, &hp, pp.data(), g.data(), pager, b1, a1, b2, a2, c1.data(),
                                         two ? c2.data() : nullptr, n),
                NQ_OK)
          << nq_last_error_message();
    } else {
      ASSERT_EQ(nq_optimizer32_step(kind, &hp, p.data(), g.data(), m.data(), two ? v.data() : nullptr, n), NQ_OK);
      ASSERT_EQ(nq_optimizer32_step_paged(kind, &hp, pp.data(), g.data(), pager, b1, b2, n), NQ_OK)
          << nq_last_error_message();
    }
    ASSERT_TRUE(bits_equal(p, pp)) << "step " << t;
  }
  nq_pager_stats st{};
  ASSERT_EQ(nq_pager_stats_get(pager, &st), NQ_OK);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_GT(st.page_ins, st.allocated_bytes / st.page_bytes);  // pages came back after eviction
  EXPECT_LE(st.resident_bytes, st.budget_bytes);
  EXPECT_EQ(st.pinned_bytes, 0u);
  std::printf("  paged (budget %llu of %llu bytes): %llu evictions, %llu page-ins\n",
              (unsigned long long)st.budget_bytes, (unsigned long long)state_bytes,
              (unsigned long long)st.evictions, (unsigned long long)st.page_ins);
  // The paged state itself equals the unpaged state byte for byte (read in budget-sized pieces).
  auto same = [&](int64_t id, const void* want, uint64_t bytes) {
    for (uint64_t off = 0; off < bytes; off += st.budget_bytes / 2) {
      const uint64_t len = std::min<uint64_t>(st.budget_bytes / 2, bytes - off);
      void* ptr = nullptr;
      ASSERT_EQ(nq_pager_acquire(pager, id, off, len, &ptr), NQ_OK) << nq_last_error_message();
      EXPECT_EQ(std::memcmp(ptr, static_cast<const uint8_t*>(want) + off, len), 0) << "buffer " << id;
      ASSERT_EQ(nq_pager_release(pager, id, off, len), NQ_OK);
    }
  };
  if (eight) {
    same(b1, s.q1.data(), n);
    same(a1, s.a1.data(), 4 * blocks(n));
    if (two) same(b2, s.q2.data(), n);
    if (two) same(a2, s.a2.data(), 4 * blocks(n));
  } else {
    same(b1, m.data(), 4 * n);
    if (two) same(b2, v.data(), 4 * n);
  }
  ASSERT_EQ(nq_pager_destroy(pager), NQ_OK);
}

}  // namespace

TEST(OptimizerPaged, AdamW8BitPagedMatchesUnpagedBitwiseOver100Steps) { check_paged(NQ_OPTIMIZER_ADAMW, true, 100); }
TEST(OptimizerPaged, Lion8BitPagedMatchesUnpagedBitwise) { check_paged(NQ_OPTIMIZER_LION, true, 10); }
TEST(OptimizerPaged, AdamW32BitPagedMatchesUnpagedBitwise) { check_paged(NQ_OPTIMIZER_ADAMW, false, 10); }

// ---------------------------------------------------------------------------------------
// Bad input: a status and a message naming the argument.

namespace {

void expect_error(nq_status got, nq_status want, const char* needle) {
  EXPECT_EQ(got, want) << nq_last_error_message();
  EXPECT_NE(std::strstr(nq_last_error_message(), needle), nullptr)
      << "message '" << nq_last_error_message() << "' should mention '" << needle << "'";
}

}  // namespace

TEST(OptimizerArgs, RejectsBadInput) {
  const int64_t n = 1000;
  std::vector<float> p(n, 0.5f), g(n, 0.1f), m(n, 0.0f), v(n, 0.0f);
  std::vector<uint8_t> q1(n), q2(n);
  std::vector<float> a1(blocks(n)), a2(blocks(n));
  const std::vector<float> c1 = dynamic_map(1), c2 = dynamic_map(0);
  nq_optimizer_params hp = adamw_params(1);
  const auto k = NQ_OPTIMIZER_ADAMW;
  expect_error(nq_optimizer32_step(k, nullptr, p.data(), g.data(), m.data(), v.data(), n), NQ_ERR_NULL_POINTER,
               "params");
  expect_error(nq_optimizer32_step(static_cast<nq_optimizer_kind>(7), &hp, p.data(), g.data(), m.data(), v.data(), n),
               NQ_ERR_INVALID_ARGUMENT, "kind");
  expect_error(nq_optimizer32_step(k, &hp, p.data(), g.data(), m.data(), v.data(), 0), NQ_ERR_INVALID_ARGUMENT, "'n'");
  expect_error(nq_optimizer32_step(k, &hp, p.data(), g.data(), m.data(), nullptr, n), NQ_ERR_NULL_POINTER, "state2");
  expect_error(nq_optimizer32_step(NQ_OPTIMIZER_LION, &hp, p.data(), g.data(), m.data(), v.data(), n),
               NQ_ERR_INVALID_ARGUMENT, "state2");
  expect_error(nq_optimizer32_step(k, &hp, p.data(), p.data() + 10, m.data(), v.data(), n - 10), NQ_ERR_OVERLAP,
               "overlap");
  for (auto mutate : std::vector<std::pair<const char*, void (*)(nq_optimizer_params&)>>{
           {"step", [](nq_optimizer_params& h) { h.step = 0; }},
           {"beta1", [](nq_optimizer_params& h) { h.beta1 = 1.0f; }},
           {"beta2", [](nq_optimizer_params& h) { h.beta2 = -0.1f; }},
           {"eps", [](nq_optimizer_params& h) { h.eps = 0.0f; }},
           {"lr", [](nq_optimizer_params& h) { h.lr = NAN; }},
           {"weight_decay", [](nq_optimizer_params& h) { h.weight_decay = -1.0f; }},
           {"gnorm_scale", [](nq_optimizer_params& h) { h.gnorm_scale = 0.0f; }}}) {
    nq_optimizer_params bad = adamw_params(1);
    mutate.second(bad);
    expect_error(nq_optimizer32_step(k, &bad, p.data(), g.data(), m.data(), v.data(), n), NQ_ERR_INVALID_ARGUMENT,
                 mutate.first);
  }
  // Lion ignores eps.
  nq_optimizer_params lion = lion_params(1);
  lion.eps = 0.0f;
  EXPECT_EQ(nq_optimizer32_step(NQ_OPTIMIZER_LION, &lion, p.data(), g.data(), m.data(), nullptr, n), NQ_OK);

  std::vector<float> unsorted = c1;
  std::swap(unsorted[10], unsorted[11]);
  expect_error(nq_optimizer8_step(k, &hp, p.data(), g.data(), q1.data(), a1.data(), q2.data(), a2.data(),
                                  unsorted.data(), c2.data(), n),
               NQ_ERR_INVALID_ARGUMENT, "code1");
  expect_error(nq_optimizer8_step(k, &hp, p.data(), g.data(), q1.data(), a1.data(), q2.data(), a2.data(), c1.data(),
                                  nullptr, n),
               NQ_ERR_NULL_POINTER, "code2");
  expect_error(nq_optimizer8_step(k, &hp, p.data(), g.data(), q1.data(), nullptr, q2.data(), a2.data(), c1.data(),
                                  c2.data(), n),
               NQ_ERR_NULL_POINTER, "absmax1");
  expect_error(nq_optimizer8_step(k, &hp, p.data(), g.data(), q1.data(), a1.data(), q1.data(), a2.data(), c1.data(),
                                  c2.data(), n),
               NQ_ERR_OVERLAP, "overlap");
}

TEST(OptimizerArgs, PagedStepRejectsWrongBuffersAndTinyBudget) {
  const int64_t n = 100000;
  std::vector<float> p(n, 0.5f), g(n, 0.1f);
  const std::vector<float> c1 = dynamic_map(1), c2 = dynamic_map(0);
  const nq_optimizer_params hp = adamw_params(1);
  nq_pager* pager = nullptr;
  ASSERT_EQ(nq_pager_create(16 * 4096, 4096, "/tmp", &pager), NQ_OK);
  int64_t q1, q2, a1, a2, small;
  ASSERT_EQ(nq_pager_alloc(pager, n, &q1), NQ_OK);
  ASSERT_EQ(nq_pager_alloc(pager, n, &q2), NQ_OK);
  ASSERT_EQ(nq_pager_alloc(pager, 4 * blocks(n), &a1), NQ_OK);
  ASSERT_EQ(nq_pager_alloc(pager, 4 * blocks(n), &a2), NQ_OK);
  ASSERT_EQ(nq_pager_alloc(pager, n / 2, &small), NQ_OK);
  expect_error(nq_optimizer8_step_paged(NQ_OPTIMIZER_ADAMW, &hp, p.data(), g.data(), pager, small, a1, q2, a2,
                                        c1.data(), c2.data(), n),
               NQ_ERR_SHAPE, "state1");
  expect_error(nq_optimizer8_step_paged(NQ_OPTIMIZER_ADAMW, &hp, p.data(), g.data(), pager, q1, a1, q2, 99,
                                        c1.data(), c2.data(), n),
               NQ_ERR_INVALID_ARGUMENT, "absmax2");
  expect_error(nq_optimizer8_step_paged(NQ_OPTIMIZER_ADAMW, &hp, p.data(), g.data(), pager, q1, a1, q1, a2,
                                        c1.data(), c2.data(), n),
               NQ_ERR_OVERLAP, "state2");
  expect_error(nq_optimizer8_step_paged(NQ_OPTIMIZER_ADAMW, &hp, p.data(), g.data(), pager, q1, a1, q2, a2,
                                        c1.data(), c2.data(), n),
               NQ_ERR_INVALID_ARGUMENT, "budget");
  ASSERT_EQ(nq_pager_destroy(pager), NQ_OK);
}
