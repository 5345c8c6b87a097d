// Causal attention: the AVX-512 and AVX2 paths and the scalar reference against an independent
// float64 evaluation on strided operands (q with padded rows and batches; k and v interleaved in
// one KV-cache-like buffer whose batch stride exceeds S), outputs poisoned with NaN, gaps between
// rows checked untouched; causal masking, GQA, query offsets, odd sizes, underflowing softmax,
// thread-count determinism and bad arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "nativequant.h"

namespace {

// fp32 vs float64: a score sums D products (relative error ~D * 2^-24 of sum |q_i k_i|, i.e. ~1e-5
// absolute at D = 64 and unit-variance data, times scale), which moves P and o relatively by as much;
// lse carries the same absolute error. Gradients add one more sum over up to S keys or T queries of
// terms of either sign, so they are held to a tolerance relative to the largest |gradient| element.
constexpr double kForwardTol = 2e-5;   // |o - o64| and |lse - lse64|, data of unit scale
constexpr double kBackwardTol = 5e-5;  // |g - g64| / max|g64|
const float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kGap = 12345.0f;  // filler between operand rows, must survive

struct Case {
  int64_t b, t, offset, hq, hkv, d;
};

std::string name(const Case& c) {
  return "B" + std::to_string(c.b) + "_T" + std::to_string(c.t) + "_off" + std::to_string(c.offset) + "_Hq" +
         std::to_string(c.hq) + "_Hkv" + std::to_string(c.hkv) + "_D" + std::to_string(c.d);
}

struct IsaCap {  // force a dispatch level; restore on scope exit
  explicit IsaCap(nq_isa isa) { nq_cpu_isa_set_max(isa); }
  ~IsaCap() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

// q in its own buffer (rows padded by 5 floats, batches by 7); k and v interleaved per row in one buffer
// of capacity S + 4 rows per batch (a KV cache prefix). Gradient buffers share these layouts.
struct Problem {
  Case c;
  nq_attention_shape s{};
  int64_t s_len, q_size, kv_size;
  std::vector<float> q, kv, d_o;  // inputs; gaps hold NaN so reading one shows up
  Problem(const Case& c_, uint64_t seed) : c(c_) {
    s_len = c.offset + c.t;
    s.batch = c.b;
    s.q_len = c.t;
    s.kv_len = s_len;
    s.q_heads = c.hq;
    s.kv_heads = c.hkv;
    s.head_dim = c.d;
    s.query_offset = c.offset;
    s.q_row_stride = c.hq * c.d + 5;
    s.q_batch_stride = c.t * s.q_row_stride + 7;
    s.k_row_stride = s.v_row_stride = 2 * c.hkv * c.d + 3;
    s.k_batch_stride = s.v_batch_stride = (s_len + 4) * s.k_row_stride;
    s.scale = float(1.0 / std::sqrt(double(c.d)));
    q_size = c.b * s.q_batch_stride;
    kv_size = c.b * s.k_batch_stride;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    q = fill(q_size, kNaN, [&](float* p) { *p = n01(rng); }, true);
    kv = fill(kv_size, kNaN, [&](float* p) { *p = n01(rng); }, false);
    d_o.resize(size_t(c.b * c.t * c.hq * c.d));
    for (float& x : d_o) x = n01(rng);
  }
  int64_t qi(int64_t b, int64_t t, int64_t h, int64_t i) const {
    return b * s.q_batch_stride + t * s.q_row_stride + h * c.d + i;
  }
  int64_t ki(int64_t b, int64_t j, int64_t h, int64_t i) const {
    return b * s.k_batch_stride + j * s.k_row_stride + h * c.d + i;
  }
  int64_t vi(int64_t b, int64_t j, int64_t h, int64_t i) const { return ki(b, j, h, i) + c.hkv * c.d; }
  int64_t oi(int64_t b, int64_t t, int64_t h, int64_t i) const { return ((b * c.t + t) * c.hq + h) * c.d + i; }
  // A buffer of `size` holding `gap` except at operand elements, which `f` sets.
  template <class F>
  std::vector<float> fill(int64_t size, float gap, F f, bool is_q) const {
    std::vector<float> x(size_t(size), gap);
    for (int64_t b = 0; b < c.b; ++b)
      for (int64_t l = 0; l < (is_q ? c.t : s_len); ++l)
        for (int64_t h = 0; h < (is_q ? c.hq : c.hkv); ++h)
          for (int64_t i = 0; i < c.d; ++i)
            if (is_q) {
              f(&x[size_t(qi(b, l, h, i))]);
            } else {
              f(&x[size_t(ki(b, l, h, i))]);
              f(&x[size_t(vi(b, l, h, i))]);
            }
    return x;
  }
};

struct Forward {
  std::vector<double> o, lse;
};
struct Grads {
  std::vector<double> dq, dkv;  // in the q and kv layouts (gaps 0)
};

// Direct float64 evaluation, written independently of the kernels.
void reference64(const Problem& p, Forward* f, Grads* g) {
  const Case& c = p.c;
  const double scale = double(p.s.scale);
  f->o.assign(size_t(c.b * c.t * c.hq * c.d), 0.0);
  f->lse.assign(size_t(c.b * c.hq * c.t), 0.0);
  g->dq.assign(p.q.size(), 0.0);
  g->dkv.assign(p.kv.size(), 0.0);
  for (int64_t b = 0; b < c.b; ++b)
    for (int64_t h = 0; h < c.hq; ++h)
      for (int64_t t = 0; t < c.t; ++t) {
        const int64_t kh = h / (c.hq / c.hkv), n = c.offset + t + 1;
        std::vector<double> w(static_cast<size_t>(n)), dp(static_cast<size_t>(n));
        double mx = -INFINITY, sum = 0.0, delta = 0.0;
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0.0;
          for (int64_t i = 0; i < c.d; ++i) acc += double(p.q[p.qi(b, t, h, i)]) * double(p.kv[p.ki(b, j, kh, i)]);
          w[j] = acc * scale;
          mx = std::max(mx, w[j]);
        }
        for (int64_t j = 0; j < n; ++j) sum += w[j] = std::exp(w[j] - mx);
        f->lse[size_t((b * c.hq + h) * c.t + t)] = mx + std::log(sum);
        for (int64_t j = 0; j < n; ++j) {
          w[j] /= sum;
          double acc = 0.0;
          for (int64_t i = 0; i < c.d; ++i) {
            f->o[p.oi(b, t, h, i)] += w[j] * double(p.kv[p.vi(b, j, kh, i)]);
            acc += double(p.d_o[p.oi(b, t, h, i)]) * double(p.kv[p.vi(b, j, kh, i)]);
          }
          dp[j] = acc;
          delta += w[j] * acc;
        }
        for (int64_t j = 0; j < n; ++j) {
          const double ds = w[j] * (dp[j] - delta) * scale;
          for (int64_t i = 0; i < c.d; ++i) {
            g->dq[p.qi(b, t, h, i)] += ds * double(p.kv[p.ki(b, j, kh, i)]);
            g->dkv[p.ki(b, j, kh, i)] += ds * double(p.q[p.qi(b, t, h, i)]);
            g->dkv[p.vi(b, j, kh, i)] += w[j] * double(p.d_o[p.oi(b, t, h, i)]);
          }
        }
      }
}

struct Output {
  std::vector<float> o, lse, dq, dkv;
};

// Forward into NaN-poisoned o / lse, backward adding into gradient buffers that start at 1 (operand
// elements) and kGap (gaps); returns the gradients with the 1 removed.
Output run(const Problem& p) {
  const Case& c = p.c;
  Output r{std::vector<float>(p.d_o.size(), kNaN), std::vector<float>(size_t(c.b * c.hq * c.t), kNaN), {}, {}};
  EXPECT_EQ(nq_attention_forward(&p.s, p.q.data(), p.kv.data(), p.kv.data() + c.hkv * c.d, r.o.data(), r.lse.data()),
            NQ_OK)
      << nq_last_error_message();
  r.dq = p.fill(p.q_size, kGap, [](float* x) { *x = 1.0f; }, true);
  r.dkv = p.fill(p.kv_size, kGap, [](float* x) { *x = 1.0f; }, false);
  EXPECT_EQ(nq_attention_backward(&p.s, p.q.data(), p.kv.data(), p.kv.data() + c.hkv * c.d, p.d_o.data(),
                                  r.lse.data(), r.dq.data(), r.dkv.data(), r.dkv.data() + c.hkv * c.d),
            NQ_OK)
      << nq_last_error_message();
  for (auto* g : {&r.dq, &r.dkv})
    for (float& x : *g)
      if (x != kGap) x -= 1.0f;
  return r;
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// Every element within tol * norm of the float64 value; gap elements (want = kGap marker) untouched.
void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<float>& layout, double tol) {
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    const bool gap = !layout.empty() && std::isnan(layout[i]);
    if (gap) {
      if (got[i] != kGap) ++bad, ADD_FAILURE() << what << "[" << i << "] gap overwritten: " << got[i];
    } else if (!(std::fabs(double(got[i]) - want[i]) <= tol)) {
      ++bad, ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", float64 " << want[i] << ", tol " << tol;
    }
  }
}

const char* isa_name(nq_isa isa) { return isa == NQ_ISA_SCALAR ? "scalar" : isa == NQ_ISA_AVX2 ? "avx2" : "avx512"; }

// The SIMD levels this CPU can run (the blocked paths under test).
std::vector<nq_isa> fast_isas() {
  nq_isa sup;
  nq_cpu_isa_supported(&sup);
  std::vector<nq_isa> isas;
  for (nq_isa isa : {NQ_ISA_AVX2, NQ_ISA_AVX512})
    if (sup >= isa) isas.push_back(isa);
  return isas;
}

void check_against_float64(const Case& c, nq_isa isa) {
  SCOPED_TRACE(name(c) + " " + isa_name(isa));
  IsaCap cap(isa);
  const Problem p(c, uint64_t(c.t * 131 + c.d * 7 + c.offset));
  Forward f;
  Grads g;
  reference64(p, &f, &g);
  const Output r = run(p);
  expect_close("o", r.o, f.o, {}, kForwardTol);
  expect_close("lse", r.lse, f.lse, {}, kForwardTol);
  expect_close("dq", r.dq, g.dq, p.q, kBackwardTol * max_abs(g.dq));
  expect_close("dkv", r.dkv, g.dkv, p.kv, kBackwardTol * max_abs(g.dkv));
}

const Case kCases[] = {
    {1, 64, 0, 4, 4, 64},    // GPT-2 head size, one chunk
    {1, 129, 3, 2, 2, 64},   // forward chunk boundaries (64) and a 1-row tail, offset
    {1, 263, 2, 2, 1, 24},   // backward chunk boundary (256): dk, dv summed over two chunks; GQA
    {2, 37, 0, 6, 2, 48},    // stories15M head size, GQA, partial tiles
    {2, 13, 20, 4, 2, 40},   // query offset with S > T, partial vector of D
    {1, 1, 9, 6, 6, 48},     // decode step (scores read k in place)
    {2, 1, 100, 4, 1, 64},   // decode with GQA and 7 key blocks
    {1, 5, 0, 3, 1, 7},      // T < 6 (direct path on both), D below one vector
    {1, 7, 4, 2, 2, 12},     // AVX2 packs at T >= 6, AVX-512 reads in place at T < 8; D = 8 + 4
    {1, 20, 2, 2, 1, 80},    // D over one 64-column pass
    {1, 9, 0, 1, 1, 1},      // D = 1
    {3, 17, 0, 2, 2, 16},    // batch > 1, one vector of D
};

TEST(Attention, FastPathsMatchFloat64) {
  for (nq_isa isa : fast_isas())
    for (const Case& c : kCases) check_against_float64(c, isa);
}

TEST(Attention, ScalarReferenceMatchesFloat64) {
  for (const Case& c : kCases) check_against_float64(c, NQ_ISA_SCALAR);
}

// The paths compute in fp32 with different summation orders: they agree to a few fp32 ulps of the
// sums, far inside the float64 tolerances, so compare them directly at a tighter bound.
TEST(Attention, FastPathsMatchScalarReference) {
  constexpr double kTol = 1e-5;
  for (const Case& c : kCases) {
    const Problem p(c, 99);
    Output ref;
    {
      IsaCap cap(NQ_ISA_SCALAR);
      ref = run(p);
    }
    for (nq_isa isa : fast_isas()) {
      SCOPED_TRACE(name(c) + " " + isa_name(isa));
      IsaCap cap(isa);
      const Output fast = run(p);
      for (auto [a, b, what] : {std::tuple{&fast.o, &ref.o, "o"}, {&fast.lse, &ref.lse, "lse"},
                                {&fast.dq, &ref.dq, "dq"}, {&fast.dkv, &ref.dkv, "dkv"}}) {
        std::vector<double> want(b->begin(), b->end());
        double scale = 0.0;
        for (float x : *b) scale = std::max(scale, x == kGap ? 0.0 : std::fabs(double(x)));
        expect_close(what, *a, want, {}, kTol * std::max(1.0, scale));
      }
    }
  }
}

// Scores far apart (q scaled by 40: exp arguments down to about -1000) must give P = 0, not garbage from an
// exponent field that wrapped: every path stays finite and matches the reference. A score carries an absolute
// error ~40x the unit-data one, so o, lse and the gradients get 40x the float64 tolerances.
TEST(Attention, PeakedSoftmaxUnderflowsToZero) {
  const Case c{1, 70, 3, 2, 1, 64};
  Problem p(c, 11);
  for (float& x : p.q) x *= 40.0f;
  Output ref;
  {
    IsaCap cap(NQ_ISA_SCALAR);
    ref = run(p);
  }
  for (nq_isa isa : fast_isas()) {
    SCOPED_TRACE(isa_name(isa));
    IsaCap cap(isa);
    const Output fast = run(p);
    for (auto [a, b, what, tol] : {std::tuple{&fast.o, &ref.o, "o", 40 * kForwardTol},
                                   {&fast.lse, &ref.lse, "lse", 40 * kForwardTol},
                                   {&fast.dq, &ref.dq, "dq", 40 * kBackwardTol},
                                   {&fast.dkv, &ref.dkv, "dkv", 40 * kBackwardTol}}) {
      std::vector<double> want(b->begin(), b->end());
      double scale = 0.0;
      for (float x : *b) scale = std::max(scale, x == kGap ? 0.0 : std::fabs(double(x)));
      expect_close(what, *a, want, {}, tol * std::max(1.0, scale));
    }
  }
}

// Keys after a query's position must not influence it: change them and compare bitwise.
TEST(Attention, FutureKeysDoNotChangeOutputs) {
  for (nq_isa isa : {NQ_ISA_SCALAR, NQ_ISA_AVX2, NQ_ISA_AVX512_BF16}) {
    IsaCap cap(isa);
    const Case c{1, 40, 5, 2, 1, 32};
    Problem p(c, 5);
    const Output a = run(p);
    const int64_t t = 17;  // perturb keys and values after position offset + t
    for (int64_t j = c.offset + t + 1; j < p.s_len; ++j)
      for (int64_t i = 0; i < c.d; ++i) {
        p.kv[p.ki(0, j, 0, i)] += 3.0f;
        p.kv[p.vi(0, j, 0, i)] -= 2.0f;
      }
    const Output b = run(p);
    for (int64_t h = 0; h < c.hq; ++h)
      for (int64_t tt = 0; tt <= t; ++tt) {
        EXPECT_EQ(a.lse[(h * c.t) + tt], b.lse[(h * c.t) + tt]) << "h " << h << " t " << tt;
        for (int64_t i = 0; i < c.d; ++i) EXPECT_EQ(a.o[p.oi(0, tt, h, i)], b.o[p.oi(0, tt, h, i)]);
      }
  }
}

// Each output element is computed by one work item in a fixed order: any thread count gives the same bits.
TEST(Attention, ThreadCountDoesNotChangeBits) {
  int32_t saved;
  nq_threads_get(&saved);
  const Problem p({2, 200, 8, 4, 2, 64}, 7);
  for (nq_isa isa : fast_isas()) {
    SCOPED_TRACE(isa_name(isa));
    IsaCap cap(isa);
    nq_threads_set(1);
    const Output one = run(p);
    nq_threads_set(2);
    const Output two = run(p);
    EXPECT_EQ(0, std::memcmp(one.o.data(), two.o.data(), one.o.size() * 4));
    EXPECT_EQ(0, std::memcmp(one.lse.data(), two.lse.data(), one.lse.size() * 4));
    EXPECT_EQ(0, std::memcmp(one.dq.data(), two.dq.data(), one.dq.size() * 4));
    EXPECT_EQ(0, std::memcmp(one.dkv.data(), two.dkv.data(), one.dkv.size() * 4));
  }
  nq_threads_set(saved);
}

void expect_status(nq_status got, nq_status want, const char* needle) {
  EXPECT_EQ(got, want) << nq_last_error_message();
  EXPECT_NE(std::string(nq_last_error_message()).find(needle), std::string::npos) << nq_last_error_message();
}

TEST(Attention, BadArgumentsReturnStatus) {
  const Problem p({1, 4, 2, 4, 2, 8}, 3);
  const float *q = p.q.data(), *k = p.kv.data(), *v = p.kv.data() + 16;
  std::vector<float> o(p.d_o.size()), lse(16), dq(p.q.size()), dkv(p.kv.size());
  auto fwd = [&](const nq_attention_shape& s) { return nq_attention_forward(&s, q, k, v, o.data(), lse.data()); };
  auto with = [&](auto edit) {
    nq_attention_shape s = p.s;
    edit(s);
    return s;
  };
  expect_status(nq_attention_forward(nullptr, q, k, v, o.data(), lse.data()), NQ_ERR_NULL_POINTER, "shape");
  expect_status(nq_attention_forward(&p.s, nullptr, k, v, o.data(), lse.data()), NQ_ERR_NULL_POINTER, "'q'");
  expect_status(nq_attention_forward(&p.s, q, k, v, nullptr, lse.data()), NQ_ERR_NULL_POINTER, "'o'");
  expect_status(fwd(with([](auto& s) { s.q_heads = 3; })), NQ_ERR_SHAPE, "q_heads");
  expect_status(fwd(with([](auto& s) { s.kv_len = 5; })), NQ_ERR_SHAPE, "kv_len");
  expect_status(fwd(with([](auto& s) { s.query_offset = -1; })), NQ_ERR_SHAPE, "query_offset");
  expect_status(fwd(with([](auto& s) { s.head_dim = 0; })), NQ_ERR_SHAPE, "head_dim");
  expect_status(fwd(with([](auto& s) { s.scale = 0.0f; })), NQ_ERR_INVALID_ARGUMENT, "scale");
  expect_status(fwd(with([](auto& s) { s.scale = kNaN; })), NQ_ERR_INVALID_ARGUMENT, "scale");
  expect_status(fwd(with([](auto& s) { s.k_row_stride = 15; })), NQ_ERR_SHAPE, "k_row_stride");
  expect_status(fwd(with([](auto& s) {
                  s.batch = 2;
                  s.q_batch_stride = 3;
                })),
                NQ_ERR_SHAPE, "q_batch_stride");
  expect_status(nq_attention_forward(&p.s, q, k, v, const_cast<float*>(q) + 1, lse.data()), NQ_ERR_OVERLAP, "'q'");
  expect_status(nq_attention_forward(&p.s, q, k, v, o.data(), o.data() + 2), NQ_ERR_OVERLAP, "'lse'");
  expect_status(nq_attention_backward(&p.s, q, k, v, p.d_o.data(), nullptr, dq.data(), nullptr, nullptr),
                NQ_ERR_NULL_POINTER, "lse");
  expect_status(nq_attention_backward(&p.s, q, k, v, p.d_o.data(), lse.data(), dq.data(),
                                      const_cast<float*>(k), nullptr),
                NQ_ERR_OVERLAP, "'dk'");
  // dk and dv interleaved in one buffer (narrow views of a fused gradient) are fine.
  EXPECT_EQ(nq_attention_backward(&p.s, q, k, v, p.d_o.data(), lse.data(), nullptr, dkv.data(), dkv.data() + 16),
            NQ_OK)
      << nq_last_error_message();
}

}  // namespace
