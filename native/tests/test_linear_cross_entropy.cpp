// nq_linear_cross_entropy: against a float64 head + softmax on fresh random data (vocabularies of one
// block, a few blocks and every segment, targets on block edges, ignored and confident rows), against the
// unfused path (nq_gemm_f32_compute + nq_cross_entropy_rows + the dX product), thread-count independence,
// a packed W (bitwise the unpacked results), every output written, and argument errors. NQ_COMPUTE_INT8 against
// its error bound from float64 and every ISA level against its plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "nativequant.h"

namespace {

constexpr int32_t kIgnore = -100;

struct Head {
  int64_t n, c, v;
  std::vector<float> x, w;
  std::vector<int32_t> t;
};

// x ~ N(0, 1), w ~ N(0, 0.3); every 5th row ignored, targets on block edges (383, 384) and the ends; row 1
// confident: x is 4 w[t] scaled so its logit leads the others by ~30 (p_t ~ 1 - 1e-13 at c = 64).
Head make_head(int64_t n, int64_t c, int64_t v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> x01(0.0f, 1.0f), w01(0.0f, 0.3f);
  Head h{n, c, v, std::vector<float>(size_t(n * c)), std::vector<float>(size_t(v * c)), std::vector<int32_t>(size_t(n))};
  for (auto& e : h.x) e = x01(rng);
  for (auto& e : h.w) e = w01(rng);
  const int64_t edges[] = {0, v - 1, 383, 384};
  for (int64_t r = 0; r < n; ++r)
    h.t[size_t(r)] = r % 5 == 4 ? kIgnore : r < 4 && edges[r] < v ? int32_t(edges[r]) : int32_t(rng() % uint64_t(v));
  if (n > 1) {
    const int64_t t = h.t[1];
    double norm = 0.0;
    for (int64_t k = 0; k < c; ++k) norm += double(h.w[size_t(t * c + k)]) * h.w[size_t(t * c + k)];
    for (int64_t k = 0; k < c; ++k) h.x[size_t(c + k)] = float(30.0 * h.w[size_t(t * c + k)] / norm);
  }
  return h;
}

struct Out {
  std::vector<double> nll;
  std::vector<float> dx;
};

Out fused(const Head& h, float scale, nq_compute_type ct, bool with_dx = true, const void* packed = nullptr) {
  Out o{std::vector<double>(size_t(h.n), std::numeric_limits<double>::quiet_NaN()),
        std::vector<float>(with_dx ? size_t(h.n * h.c) : 0, std::numeric_limits<float>::quiet_NaN())};
  EXPECT_EQ(nq_linear_cross_entropy(h.x.data(), h.n, h.c, h.w.data(), packed, h.v, h.t.data(), kIgnore, scale, ct,
                                    o.nll.data(), with_dx ? o.dx.data() : nullptr),
            NQ_OK);
  return o;
}

// 64-byte aligned bytes for a packed W, filled with 0xff (fp16 NaN) so a byte the packer skips shows.
struct Packed {
  std::vector<uint8_t> raw;
  void* p = nullptr;
  explicit Packed(uint64_t bytes) : raw(size_t(bytes) + 64, 0xff) {
    p = raw.data() + (64 - reinterpret_cast<uintptr_t>(raw.data()) % 64) % 64;
  }
};

// The unfused path the fused op replaces: logits, cross-entropy rows, dX = dlogits W.
Out unfused(const Head& h, float scale, nq_compute_type ct) {
  std::vector<float> logits(size_t(h.n * h.v));
  Out o{std::vector<double>(size_t(h.n)), std::vector<float>(size_t(h.n * h.c))};
  EXPECT_EQ(nq_gemm_f32_compute(0, 1, h.n, h.v, h.c, h.x.data(), h.w.data(), 0.0f, nullptr, ct, logits.data()), NQ_OK);
  EXPECT_EQ(nq_cross_entropy_rows(logits.data(), h.n, h.v, h.t.data(), kIgnore, scale, o.nll.data()), NQ_OK);
  EXPECT_EQ(nq_gemm_f32_compute(0, 0, h.n, h.c, h.v, logits.data(), h.w.data(), 0.0f, nullptr, ct, o.dx.data()), NQ_OK);
  return o;
}

// float64 outputs, and per row the logit error bound of a product in precision `unit` (relative rounding
// per operation): c * unit * max_v Σ_k |x_k w_vk| (the usual γ_c bound of a dot product).
struct Ref {
  std::vector<double> nll, dx, logit_err;
  std::vector<double> w_max;  // max |w| (for dx tolerances)
};

// Row i's logit j in float64; *abs_sum = Σ_k |x_k w_jk|.
double logit(const Head& h, int64_t i, int64_t j, double* abs_sum) {
  double s = 0.0, a = 0.0;
  for (int64_t k = 0; k < h.c; ++k) {
    const double p = double(h.x[size_t(i * h.c + k)]) * h.w[size_t(j * h.c + k)];
    s += p;
    a += std::fabs(p);
  }
  *abs_sum = a;
  return s;
}

Ref reference(const Head& h, float scale, double unit) {
  Ref r{std::vector<double>(size_t(h.n)), std::vector<double>(size_t(h.n * h.c)), std::vector<double>(size_t(h.n)), {0.0}};
  for (float e : h.w) r.w_max[0] = std::max(r.w_max[0], double(std::fabs(e)));
  std::vector<double> l(size_t(h.v));
  for (int64_t i = 0; i < h.n; ++i) {
    double m = -INFINITY, worst = 0.0;
    for (int64_t j = 0; j < h.v; ++j) {
      double a = 0.0;
      const double s = l[size_t(j)] = logit(h, i, j, &a);
      m = std::max(m, s);
      worst = std::max(worst, a);
    }
    r.logit_err[size_t(i)] = double(h.c) * unit * worst;
    const int32_t t = h.t[size_t(i)];
    if (t == kIgnore) continue;
    double z = 0.0;
    for (int64_t j = 0; j < h.v; ++j) z += std::exp(l[size_t(j)] - m);
    r.nll[size_t(i)] = m + std::log(z) - l[size_t(t)];
    for (int64_t j = 0; j < h.v; ++j) {
      const double g = scale * (std::exp(l[size_t(j)] - m) / z - (j == t ? 1.0 : 0.0));
      for (int64_t k = 0; k < h.c; ++k) r.dx[size_t(i * h.c + k)] += g * h.w[size_t(j * h.c + k)];
    }
  }
  return r;
}

// NQ_COMPUTE_INT8's bounds (loss/head_int8.h) per row, from float64: a logit is off by at most half a step of
// each operand, (ax/254) Σ_k |w_vk| + (aw_v/254) Σ_k |x_k| + c (ax/254)(aw_v/254), plus the fp32 epilogue
// (2^-22 of Σ|x w|); U's product by half a step of E' per entry, vb max_blk(p) / 508 summed over the blocks
// (p without the target, e^(4e) for the logits' error), plus half a step of W's column scale, <= max|w| / 254
// weighted by Σ p <= 1. `product` is relative to scale max|w|, as expect_near_reference takes it.
struct Int8Bound {
  std::vector<double> logit_err, product;
};

Int8Bound int8_bound(const Head& h) {
  Int8Bound b{std::vector<double>(size_t(h.n)), std::vector<double>(size_t(h.n))};
  std::vector<double> aw(size_t(h.v)), sw(size_t(h.v)), l(size_t(h.v));
  for (int64_t j = 0; j < h.v; ++j)
    for (int64_t k = 0; k < h.c; ++k) {
      aw[size_t(j)] = std::max(aw[size_t(j)], double(std::fabs(h.w[size_t(j * h.c + k)])));
      sw[size_t(j)] += std::fabs(h.w[size_t(j * h.c + k)]);
    }
  for (int64_t i = 0; i < h.n; ++i) {
    double ax = 0.0, sx = 0.0, e = 0.0, m = -INFINITY;
    for (int64_t k = 0; k < h.c; ++k) {
      ax = std::max(ax, double(std::fabs(h.x[size_t(i * h.c + k)])));
      sx += std::fabs(h.x[size_t(i * h.c + k)]);
    }
    for (int64_t j = 0; j < h.v; ++j) {
      double a = 0.0;
      const double s = l[size_t(j)] = logit(h, i, j, &a);
      m = std::max(m, s);
      e = std::max(e, ax / 254 * sw[size_t(j)] + aw[size_t(j)] / 254 * sx + double(h.c) * ax * aw[size_t(j)] / 64516 +
                          0x1p-22 * a);
    }
    b.logit_err[size_t(i)] = e;
    double z = 0.0;
    for (int64_t j = 0; j < h.v; ++j) z += std::exp(l[size_t(j)] - m);
    double prod = 0.0;
    for (int64_t v0 = 0; v0 < h.v; v0 += 384) {
      const int64_t vb = std::min<int64_t>(384, h.v - v0);
      double pmax = 0.0;
      for (int64_t j = v0; j < v0 + vb; ++j)
        if (j != h.t[size_t(i)]) pmax = std::max(pmax, std::exp(l[size_t(j)] - m) / z);
      prod += double(vb) * pmax / 508;
    }
    b.product[size_t(i)] = prod * std::exp(4 * e) + 1.0 / 254 * (1 + 1.0 / 254);
  }
  return b;
}

// Tolerances from the logit error e of the precision: the NLL moves by <= 2e (the target's logit and the
// log-sum-exp); each softmax weight by a factor e^(±2e), so dx by <= scale max|w| (4e) plus the rounding of
// the dX product itself (`product`, relative to scale max|w|).
void expect_near_reference(const Head& h, const Out& o, const Ref& r, float scale, double product, const char* what,
                           const Int8Bound* int8 = nullptr) {
  for (int64_t i = 0; i < h.n; ++i) {
    const double e = int8 ? int8->logit_err[size_t(i)] : r.logit_err[size_t(i)];
    if (int8) product = int8->product[size_t(i)];
    if (h.t[size_t(i)] == kIgnore) {
      EXPECT_EQ(o.nll[size_t(i)], 0.0) << what << " row " << i;
    } else {
      EXPECT_NEAR(o.nll[size_t(i)], r.nll[size_t(i)], 2 * e + 1e-9) << what << " row " << i;
    }
    const double tol = scale * r.w_max[0] * (4 * e + product);
    for (int64_t k = 0; k < h.c; ++k)
      ASSERT_NEAR(o.dx[size_t(i * h.c + k)], r.dx[size_t(i * h.c + k)], tol) << what << " row " << i << " k " << k;
  }
}

struct Shape {
  int64_t n, c, v;
};

class LinearCrossEntropy : public ::testing::TestWithParam<Shape> {};

// fp32 products: unit 2^-24. The dX product adds the rounding of U's block sums and of the softmax weights
// (a few ulps of scale max|w| per term; 1e-5 covers 384-term blocks).
TEST_P(LinearCrossEntropy, F32MatchesFloat64) {
  const Shape s = GetParam();
  const Head h = make_head(s.n, s.c, s.v, uint64_t(s.v * 7 + s.c));
  const float scale = 1.0f / 9.0f;
  expect_near_reference(h, fused(h, scale, NQ_COMPUTE_F32), reference(h, scale, 0x1p-24), scale, 1e-5, "f32");
}

// fp16 chunk scheme (f16_chunk.h): operands rounded to 11 bits (2^-12 each) and 64-term fp16 sums (~2^-11
// sqrt(32) measured ~1.2e-3): unit 2^-9 bounds it for the logits; the dX product is another such product,
// relative 2^-9 * 8 of scale max|w| (its terms are softmax weights summing to <= 2).
TEST_P(LinearCrossEntropy, F16MatchesFloat64AndTheUnfusedPath) {
  const Shape s = GetParam();
  const Head h = make_head(s.n, s.c, s.v, uint64_t(s.v * 5 + s.c));
  const float scale = 1.0f / 9.0f;
  const Out f = fused(h, scale, NQ_COMPUTE_F16);
  const Ref r = reference(h, scale, 0x1p-9);
  expect_near_reference(h, f, r, scale, 0x1p-6, "f16 fused");
  expect_near_reference(h, unfused(h, scale, NQ_COMPUTE_F16), r, scale, 0x1p-6, "f16 unfused");
}

// int8 products (head_int8.h) within int8_bound of float64, for the fast path and the plain loops.
TEST_P(LinearCrossEntropy, Int8MatchesFloat64WithinItsBound) {
  const Shape s = GetParam();
  const Head h = make_head(s.n, s.c, s.v, uint64_t(s.v * 13 + s.c));
  const float scale = 1.0f / 9.0f;
  const Ref r = reference(h, scale, 0.0);
  const Int8Bound b = int8_bound(h);
  expect_near_reference(h, fused(h, scale, NQ_COMPUTE_INT8), r, scale, 0.0, "int8", &b);
  nq_isa isa = NQ_ISA_SCALAR;
  ASSERT_EQ(nq_cpu_isa_get(&isa), NQ_OK);
  ASSERT_EQ(nq_cpu_isa_set_max(NQ_ISA_SCALAR), NQ_OK);
  const Out plain = fused(h, scale, NQ_COMPUTE_INT8);
  ASSERT_EQ(nq_cpu_isa_set_max(isa), NQ_OK);
  expect_near_reference(h, plain, r, scale, 0.0, "int8 plain loops", &b);
}

// Every ISA level against the plain loops (NQ_ISA_SCALAR): the logits are the same integers through the same
// epilogue (test_head_int8.cpp checks the block products bit for bit), but the row passes' exp differs by ~1 ulp,
// so a value of E' may round to the neighbouring level, moving dx by one step, se max|w| <= scale max|w| / 254, and
// the NLL by ~1e-7 relative.
TEST_P(LinearCrossEntropy, Int8IsaLevelsMatchThePlainLoops) {
  const Shape s = GetParam();
  const Head h = make_head(s.n, s.c, s.v, uint64_t(s.v * 17 + s.c));
  nq_isa isa = NQ_ISA_SCALAR;
  ASSERT_EQ(nq_cpu_isa_get(&isa), NQ_OK);
  const auto at = [&](nq_isa max) {
    EXPECT_EQ(nq_cpu_isa_set_max(max), NQ_OK);
    const Out o = fused(h, 0.5f, NQ_COMPUTE_INT8);
    EXPECT_EQ(nq_cpu_isa_set_max(isa), NQ_OK);
    return o;
  };
  const Out plain = at(NQ_ISA_SCALAR);
  double w_max = 0.0;
  for (float e : h.w) w_max = std::max(w_max, double(std::fabs(e)));
  for (int level = NQ_ISA_AVX2; level <= int(isa); ++level) {
    const Out o = at(static_cast<nq_isa>(level));
    for (size_t i = 0; i < plain.nll.size(); ++i)
      ASSERT_NEAR(o.nll[i], plain.nll[i], 1e-6 * std::max(1.0, std::fabs(plain.nll[i]))) << "level " << level << " row " << i;
    for (size_t i = 0; i < plain.dx.size(); ++i)
      ASSERT_NEAR(o.dx[i], plain.dx[i], 0.5 * w_max / 254) << "level " << level << " element " << i;
  }
}

TEST_P(LinearCrossEntropy, ResultsDoNotDependOnThreadsAndDxIsOptional) {
  const Shape s = GetParam();
  const Head h = make_head(s.n, s.c, s.v, uint64_t(s.v * 3 + s.c));
  int32_t threads = 1;
  ASSERT_EQ(nq_threads_get(&threads), NQ_OK);
  for (nq_compute_type ct : {NQ_COMPUTE_F32, NQ_COMPUTE_F16, NQ_COMPUTE_INT8}) {
    const Out all = fused(h, 0.25f, ct);
    ASSERT_EQ(nq_threads_set(1), NQ_OK);
    const Out one = fused(h, 0.25f, ct);
    ASSERT_EQ(nq_threads_set(threads), NQ_OK);
    for (size_t i = 0; i < all.nll.size(); ++i) ASSERT_EQ(all.nll[i], one.nll[i]) << "row " << i;
    for (size_t i = 0; i < all.dx.size(); ++i) ASSERT_EQ(all.dx[i], one.dx[i]) << "element " << i;  // NaN-filled before
    const Out nll_only = fused(h, 0.25f, ct, false);
    for (size_t i = 0; i < all.nll.size(); ++i) ASSERT_EQ(all.nll[i], nll_only.nll[i]) << "row " << i;
  }
}

void expect_packed_matches_unpacked(const Head& h, nq_compute_type ct) {
  uint64_t bytes = 1;
  ASSERT_EQ(nq_linear_cross_entropy_pack_bytes(h.v, h.c, ct, &bytes), NQ_OK);
  if (bytes == 0) return;  // no AVX512-FP16 (f16) or AVX2 (int8): packing does not apply
  const int64_t elem = ct == NQ_COMPUTE_F16 ? 2 : 1;
  EXPECT_GE(bytes, uint64_t(h.v * h.c * elem * 2)) << "two layouts";
  Packed pk(bytes);
  ASSERT_EQ(nq_linear_cross_entropy_pack(h.w.data(), h.v, h.c, ct, pk.p, bytes), NQ_OK);
  for (const uint8_t* q = static_cast<const uint8_t*>(pk.p) + bytes; q < pk.raw.data() + pk.raw.size(); ++q)
    ASSERT_EQ(*q, 0xff) << "written past the " << bytes << " bytes pack_bytes gave";
  int32_t threads = 1;
  ASSERT_EQ(nq_threads_get(&threads), NQ_OK);
  const Out plain = fused(h, 0.25f, ct);
  for (int32_t t : {threads, 1}) {
    ASSERT_EQ(nq_threads_set(t), NQ_OK);
    const Out packed = fused(h, 0.25f, ct, true, pk.p);
    const Out nll_only = fused(h, 0.25f, ct, false, pk.p);
    ASSERT_EQ(nq_threads_set(threads), NQ_OK);
    for (size_t i = 0; i < plain.nll.size(); ++i) {
      ASSERT_EQ(packed.nll[i], plain.nll[i]) << "row " << i << ", " << t << " threads";
      ASSERT_EQ(nll_only.nll[i], plain.nll[i]) << "row " << i << ", " << t << " threads";
    }
    for (size_t i = 0; i < plain.dx.size(); ++i)
      ASSERT_EQ(packed.dx[i], plain.dx[i]) << "element " << i << ", " << t << " threads";
  }
}

// A packed W (fp16 compute on AVX512-FP16, int8 compute on AVX2 and up) gives the unpacked results bit for bit,
// on 1 and all threads, with and without dx: the pack holds exactly what each call would convert. Every byte
// the products read was written (the buffer starts as fp16 NaN, int8 -1).
TEST_P(LinearCrossEntropy, PackedWeightMatchesUnpackedBitwise) {
  const Shape s = GetParam();
  const Head h = make_head(s.n, s.c, s.v, uint64_t(s.v * 5 + s.c));
  uint64_t bytes = 1;
  ASSERT_EQ(nq_linear_cross_entropy_pack_bytes(h.v, h.c, NQ_COMPUTE_F32, &bytes), NQ_OK);
  EXPECT_EQ(bytes, 0u) << "fp32 compute reads W in place";
  for (const nq_compute_type ct : {NQ_COMPUTE_F16, NQ_COMPUTE_INT8}) {
    SCOPED_TRACE(ct == NQ_COMPUTE_F16 ? "f16" : "int8");
    expect_packed_matches_unpacked(h, ct);
  }
}

// Row 1 is confident (max |dx| ~ 4e-6 of scale at v = 50257): dx = scale (Σ_{v≠t} p_v w_v - (1 - p_t) w_t). The
// fused op forms 1 - p_t as Σ_{v≠t} e / Σ e and never subtracts w_t from a near-equal vector, so the row keeps the
// relative accuracy of its logits (measured 3.6e-7 of the row's largest element; fp32 logits are within
// c 2^-24 Σ|x w| ~ 1.5e-4 here, and only their differences matter); the unfused path rounds p_t - 1 in fp32 and
// is off by 4.9e-4 of it, which the 1e-4 bound rejects.
TEST(LinearCrossEntropy, ConfidentRowKeepsItsRelativeAccuracy) {
  const Head h = make_head(6, 64, 50257, 11);
  const float scale = 1.0f / 5.0f;
  const Ref r = reference(h, scale, 0x1p-24);
  const Out f = fused(h, scale, NQ_COMPUTE_F32), u = unfused(h, scale, NQ_COMPUTE_F32);
  double big = 0.0, err = 0.0, err_unfused = 0.0;
  for (int64_t k = 0; k < h.c; ++k) {
    const double ref = r.dx[size_t(h.c + k)];
    big = std::max(big, std::fabs(ref));
    err = std::max(err, std::fabs(f.dx[size_t(h.c + k)] - ref));
    err_unfused = std::max(err_unfused, std::fabs(u.dx[size_t(h.c + k)] - ref));
  }
  EXPECT_LT(big, 1e-4 * scale) << "row 1 is not confident: the test lost its point";
  EXPECT_LT(err, 1e-4 * big);
  EXPECT_GT(err_unfused, 1e-4 * big) << "the unfused path got as accurate: the bound no longer shows the point";
}

// One block (v < 384), a partial last block, several segments of several blocks (50257: 131 blocks in 16
// segments), rows that are not a multiple of the micro-kernels' 8.
INSTANTIATE_TEST_SUITE_P(Shapes, LinearCrossEntropy,
                         ::testing::Values(Shape{3, 16, 5}, Shape{13, 64, 383}, Shape{21, 96, 1000},
                                           Shape{37, 64, 50257}, Shape{8, 130, 3100}),
                         [](const auto& i) {
                           return "n" + std::to_string(i.param.n) + "_c" + std::to_string(i.param.c) + "_v" +
                                  std::to_string(i.param.v);
                         });

TEST(LinearCrossEntropyArgs, ZeroRowsIsANoOp) {
  EXPECT_EQ(
      nq_linear_cross_entropy(nullptr, 0, 4, nullptr, nullptr, 5, nullptr, kIgnore, 1.0f, NQ_COMPUTE_F32, nullptr, nullptr),
      NQ_OK);
}

TEST(LinearCrossEntropyArgs, BadArgumentsReturnStatusAndWriteNothing) {
  const Head h = make_head(2, 4, 3, 1);
  std::vector<double> nll(2, -1.0);
  std::vector<float> dx(8, -1.0f);
  const int32_t t_high[] = {0, 3}, t_neg[] = {-1, 0};
  const auto call = [&](const float* x, int64_t n, int64_t c, const float* w, int64_t v, const int32_t* t, float sc,
                        int ct, double* nl, float* d) {
    return nq_linear_cross_entropy(x, n, c, w, nullptr, v, t, kIgnore, sc, static_cast<nq_compute_type>(ct), nl, d);
  };
  const float* x = h.x.data();
  const float* w = h.w.data();
  const int32_t* t = h.t.data();
  EXPECT_EQ(call(x, -1, 4, w, 3, t, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_SHAPE);
  EXPECT_EQ(call(x, 2, 0, w, 3, t, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(x, 2, 4, w, 0, t, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(nullptr, 2, 4, w, 3, t, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(call(x, 2, 4, nullptr, 3, t, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(call(x, 2, 4, w, 3, nullptr, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(call(x, 2, 4, w, 3, t, 1.0f, 0, nullptr, dx.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(call(x, 2, 4, w, 3, t, NAN, 0, nll.data(), dx.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(x, 2, 4, w, 3, t, 1.0f, 7, nll.data(), dx.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(x, 2, 4, w, 3, t_high, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(x, 2, 4, w, 3, t_neg, 1.0f, 0, nll.data(), dx.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(call(x, 2, 4, w, 3, t, 1.0f, 0, nll.data(), const_cast<float*>(x) + 1), NQ_ERR_OVERLAP);
  EXPECT_EQ(nll, std::vector<double>(2, -1.0));
  EXPECT_EQ(dx, std::vector<float>(8, -1.0f));
}

TEST(LinearCrossEntropyArgs, PackRejectsBadArgumentsAndMismatchedUse) {
  const Head h = make_head(3, 64, 500, 2);
  uint64_t bytes = 0;
  EXPECT_EQ(nq_linear_cross_entropy_pack_bytes(0, 64, NQ_COMPUTE_F16, &bytes), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_linear_cross_entropy_pack_bytes(500, 64, static_cast<nq_compute_type>(7), &bytes), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_linear_cross_entropy_pack_bytes(500, 64, NQ_COMPUTE_F16, nullptr), NQ_ERR_NULL_POINTER);
  ASSERT_EQ(nq_linear_cross_entropy_pack_bytes(500, 64, NQ_COMPUTE_F16, &bytes), NQ_OK);
  Packed pk(bytes + 64);
  if (bytes == 0) {
    EXPECT_EQ(nq_linear_cross_entropy_pack(h.w.data(), 500, 64, NQ_COMPUTE_F16, pk.p, 1 << 20), NQ_ERR_UNSUPPORTED);
    GTEST_SKIP() << "no AVX512-FP16: packing does not apply";
  }
  EXPECT_EQ(nq_linear_cross_entropy_pack(h.w.data(), 500, 64, NQ_COMPUTE_F32, pk.p, bytes), NQ_ERR_UNSUPPORTED);
  EXPECT_EQ(nq_linear_cross_entropy_pack(h.w.data(), 500, 64, NQ_COMPUTE_F16, pk.p, bytes - 1), NQ_ERR_SHAPE);
  EXPECT_EQ(nq_linear_cross_entropy_pack(h.w.data(), 500, 64, NQ_COMPUTE_F16, static_cast<uint8_t*>(pk.p) + 4, bytes),
            NQ_ERR_ALIGNMENT);
  EXPECT_EQ(nq_linear_cross_entropy_pack(nullptr, 500, 64, NQ_COMPUTE_F16, pk.p, bytes), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_linear_cross_entropy_pack(h.w.data(), 500, 64, NQ_COMPUTE_F16, const_cast<float*>(h.w.data()), bytes),
            NQ_ERR_OVERLAP);
  std::vector<uint8_t> junk(256, 0x5a);
  std::vector<double> nll(3, -1.0);
  const auto call = [&](const void* packed, int64_t v, nq_compute_type ct) {
    return nq_linear_cross_entropy(h.x.data(), 3, 64, h.w.data(), packed, v, h.t.data(), kIgnore, 1.0f, ct, nll.data(),
                                   nullptr);
  };
  EXPECT_EQ(call(junk.data(), 500, NQ_COMPUTE_F16), NQ_ERR_INVALID_ARGUMENT) << "not a pack";
  ASSERT_EQ(nq_linear_cross_entropy_pack(h.w.data(), 500, 64, NQ_COMPUTE_F16, pk.p, bytes), NQ_OK);
  EXPECT_EQ(call(pk.p, 499, NQ_COMPUTE_F16), NQ_ERR_INVALID_ARGUMENT) << "another vocabulary";
  EXPECT_EQ(call(pk.p, 500, NQ_COMPUTE_F32), NQ_ERR_INVALID_ARGUMENT) << "another compute type";
  nq_isa isa = NQ_ISA_SCALAR;
  ASSERT_EQ(nq_cpu_isa_get(&isa), NQ_OK);
  ASSERT_EQ(nq_cpu_isa_set_max(NQ_ISA_AVX2), NQ_OK);
  EXPECT_EQ(call(pk.p, 500, NQ_COMPUTE_F16), NQ_ERR_UNSUPPORTED) << "packed for an ISA no longer in use";
  ASSERT_EQ(nq_cpu_isa_set_max(isa), NQ_OK);
  EXPECT_EQ(nll, std::vector<double>(3, -1.0));
  EXPECT_EQ(call(pk.p, 500, NQ_COMPUTE_F16), NQ_OK);
}

// An int8 pack is laid out for the kernel that packed it (VNNI u8 quads or AVX2 int16 pairs); int8 needs c <= 65536.
TEST(LinearCrossEntropyArgs, Int8PackBelongsToItsKernel) {
  const Head h = make_head(3, 64, 500, 3);
  std::vector<double> nll(3, -1.0);
  EXPECT_EQ(nq_linear_cross_entropy(nullptr, 1, 65537, nullptr, nullptr, 5, nullptr, kIgnore, 1.0f, NQ_COMPUTE_INT8,
                                    nll.data(), nullptr),
            NQ_ERR_INVALID_ARGUMENT);
  nq_isa isa = NQ_ISA_SCALAR;
  ASSERT_EQ(nq_cpu_isa_get(&isa), NQ_OK);
  if (isa < NQ_ISA_AVX2) GTEST_SKIP() << "no int8 kernel: packing does not apply";
  uint64_t bytes = 0;
  ASSERT_EQ(nq_linear_cross_entropy_pack_bytes(500, 64, NQ_COMPUTE_INT8, &bytes), NQ_OK);
  ASSERT_GT(bytes, 0u);
  Packed pk(bytes);
  ASSERT_EQ(nq_linear_cross_entropy_pack(h.w.data(), 500, 64, NQ_COMPUTE_INT8, pk.p, bytes), NQ_OK);
  const auto call = [&] {
    return nq_linear_cross_entropy(h.x.data(), 3, 64, h.w.data(), pk.p, 500, h.t.data(), kIgnore, 1.0f,
                                   NQ_COMPUTE_INT8, nll.data(), nullptr);
  };
  if (isa >= NQ_ISA_AVX512_VNNI) {
    ASSERT_EQ(nq_cpu_isa_set_max(NQ_ISA_AVX2), NQ_OK);
    EXPECT_EQ(call(), NQ_ERR_UNSUPPORTED) << "packed as VNNI quads, AVX2 reads int16 pairs";
  }
  ASSERT_EQ(nq_cpu_isa_set_max(NQ_ISA_SCALAR), NQ_OK);
  EXPECT_EQ(call(), NQ_ERR_UNSUPPORTED) << "the plain loops read no pack";
  ASSERT_EQ(nq_cpu_isa_set_max(isa), NQ_OK);
  EXPECT_EQ(nll, std::vector<double>(3, -1.0));
  EXPECT_EQ(call(), NQ_OK);
}

}  // namespace
