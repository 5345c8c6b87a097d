// fp32 / bf16 GEMM: every transpose variant, each ISA path, vs the scalar reference and a
// float64 computation on fresh random data.
#include <cstring>

#include "gemm/gemm_f32.h"
#include "test_gemm_common.h"

using namespace gemm_test;

namespace {

// fp32 accumulation over K <= 4096 of unit-variance products: relative error ~ 1e-7 *
// sqrt(K); 1e-5 leaves margin for blocked summation order yet catches any wrong element.
constexpr double kF32RelTol = 1e-5;
// bf16 inputs keep 8 bits of mantissa (2^-9 relative rounding per input); the product
// error is ~4e-3 relative on random data, so 1e-2 bounds it vs the fp32-input double.
constexpr double kBf16VsFloatRelTol = 1e-2;
// The same bf16 inputs accumulated in fp32 vs in double: only fp32 summation error.
constexpr double kBf16VsExactRelTol = 1e-5;

struct Shape {
  int64_t m, n, k;
};
const Shape kShapes[] = {{1, 1, 1},    {1, 37, 300},  {5, 64, 256},  {7, 130, 513},
                         {33, 77, 1000}, {64, 200, 96}, {2, 65, 4100},
                         {3, 67, 100},   {4, 1031, 300},   // M <= 4: GEMV, serial and split over N
                         {1000, 100, 100},   // M > N, split over M when A is packed (transposed or bf16)
                         {40, 50, 3}};       // K <= 4: rank-k update when B is row-major

// op(A) op(B) in double; a, b are the stored matrices.
template <class FA, class FB>
std::vector<double> reference(int ta, int tb, const Shape& s, FA a, FB b, const std::vector<double>& c0,
                              double beta, const float* bias) {
  std::vector<double> c(size_t(s.m * s.n));
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < s.k; ++p) acc += a(ta ? p * s.m + i : i * s.k + p) * b(tb ? j * s.k + p : p * s.n + j);
      c[i * s.n + j] = acc + (beta == 0 ? 0.0 : beta * c0[i * s.n + j]) + (bias ? bias[j] : 0.0);
    }
  return c;
}

TEST(Gemm, F32AllVariantsAllIsasMatchDoubleAndReference) {
  uint64_t seed = 1;
  for (const Shape& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          const auto a = randn(size_t(s.m * s.k), seed++), b = randn(size_t(s.n * s.k), seed++);
          const auto bias = randn(size_t(s.n), seed++);
          const auto c0 = randn(size_t(s.m * s.n), seed++);
          const float* bp = beta == 0.5f ? bias.data() : nullptr;
          const auto exact = reference(
              ta, tb, s, [&](int64_t i) { return double(a[i]); }, [&](int64_t i) { return double(b[i]); },
              std::vector<double>(c0.begin(), c0.end()), beta, bp);
          std::vector<float> ref = c0;
          nq::gemm::gemm_f32_ref(ta, tb, s.m, s.n, s.k, a.data(), b.data(), beta, bp, ref.data());
          for (nq_isa isa : supported_isas()) {
            IsaScope scope(isa);
            std::vector<float> c = beta == 0.0f ? poisoned(c0.size()) : c0;
            ASSERT_EQ(nq_gemm_f32(ta, tb, s.m, s.n, s.k, a.data(), b.data(), beta, bp, c.data()), NQ_OK)
                << nq_last_error_message();
            SCOPED_TRACE(testing::Message() << isa_name(isa) << " ta=" << ta << " tb=" << tb << " m=" << s.m
                                            << " n=" << s.n << " k=" << s.k << " beta=" << beta);
            ASSERT_TRUE(all_finite(c));
            EXPECT_LT(rel_error(c, exact), kF32RelTol);
            EXPECT_LT(rel_error(c, ref), kF32RelTol);
          }
        }
}

// An AVX-512 kernel for C = beta*C + op(A) B + bias with B row-major (A in either layout), called directly
// on every shape for both A layouts and beta 0 (C poisoned) / 1 / 0.5 with bias, against the scalar
// reference and float64.
using RowBKernel = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, float,
                            const float*, float*);
void check_row_b_kernel(RowBKernel kernel, const std::vector<Shape>& shapes, uint64_t seed) {
  nq_isa sup = NQ_ISA_SCALAR;
  nq_cpu_isa_supported(&sup);
  if (sup < NQ_ISA_AVX512) GTEST_SKIP() << "no AVX-512";
  for (const Shape& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        const auto a = randn(size_t(s.m * s.k), seed++), b = randn(size_t(s.k * s.n), seed++);
        const auto bias = randn(size_t(s.n), seed++), c0 = randn(size_t(s.m * s.n), seed++);
        const float* bp = beta == 0.5f ? bias.data() : nullptr;
        const auto exact = reference(
            ta, 0, s, [&](int64_t i) { return double(a[i]); }, [&](int64_t i) { return double(b[i]); },
            std::vector<double>(c0.begin(), c0.end()), beta, bp);
        std::vector<float> ref = c0;
        nq::gemm::gemm_f32_ref(ta, 0, s.m, s.n, s.k, a.data(), b.data(), beta, bp, ref.data());
        std::vector<float> c = beta == 0.0f ? poisoned(c0.size()) : c0;
        kernel(s.m, s.n, s.k, a.data(), ta ? 1 : s.k, ta ? s.m : 1, b.data(), beta, bp, c.data());
        SCOPED_TRACE(testing::Message() << "ta=" << ta << " m=" << s.m << " n=" << s.n << " k=" << s.k
                                        << " beta=" << beta);
        ASSERT_TRUE(all_finite(c));
        EXPECT_LT(rel_error(c, exact), kF32RelTol);
        EXPECT_LT(rel_error(c, ref), kF32RelTol);
      }
}

TEST(Gemm, F32SmallMRowBKernelMatchesDoubleAndReference) {
  // Every m <= 4, columns around the 16-lane masks and 64-column blocks, k down to 1; the last shape
  // streams 16.8 MB of B x m, so it is split over threads.
  check_row_b_kernel(nq::gemm::gemv_f32_nn_avx512,
                     {{1, 1, 1}, {2, 16, 9}, {3, 63, 300}, {4, 64, 1}, {1, 65, 77}, {4, 200, 300}, {2, 1031, 40},
                      {3, 2000, 700}},
                     500);
}

TEST(Gemm, F32RankKUpdateKernelMatchesDoubleAndReference) {
  // Every k <= 4, columns around the 16-lane masks; the last shape writes and reads 9.6 MB of C, so it
  // is split over threads.
  check_row_b_kernel(nq::gemm::gemm_f32_rank_avx512,
                     {{1, 1, 1}, {5, 15, 2}, {9, 16, 3}, {33, 17, 4}, {100, 300, 1}, {1200, 1000, 2}}, 600);
}

// Rows i < m of op(A) B for A with `extra` more rows (fresh values), stored as trans_a says.
std::vector<float> stack_rows(const std::vector<float>& a, const std::vector<float>& more, int ta, int64_t m,
                              int64_t extra, int64_t k) {
  std::vector<float> out(size_t((m + extra) * k));
  for (int64_t i = 0; i < m + extra; ++i)
    for (int64_t p = 0; p < k; ++p) {
      const float v = i < m ? a[ta ? p * m + i : i * k + p] : more[ta ? p * extra + (i - m) : (i - m) * k + p];
      out[ta ? p * (m + extra) + i : i * k + p] = v;
    }
  return out;
}

TEST(Gemm, F32PathsGiveTheBlockedDriversBits) {
  // The packing-free paths sum K in the driver's KC blocks and update C as it does, so a row of a product
  // does not change with the path M or K selects (e.g. a fused head's last chunk of <= 4 rows vs the
  // unfused product). Small M (B row-major): rows of an m-row product vs the same rows of an (m + 8)-row
  // one. Rank-k (k <= 4): B row-major vs the same B stored transposed (blocked path). K > KC with a tail.
  uint64_t seed = 700;
  for (nq_isa isa : supported_isas()) {
    IsaScope scope(isa);
    for (int ta = 0; ta < 2; ++ta)
      for (float beta : {0.0f, 1.0f, 0.5f})
        for (const Shape& s : {Shape{1, 70, 1000}, Shape{3, 33, 385}, Shape{4, 130, 7}}) {
          const int64_t extra = 8;
          const auto a = randn(size_t(s.m * s.k), seed++), more = randn(size_t(extra * s.k), seed++);
          const auto b = randn(size_t(s.k * s.n), seed++), bias = randn(size_t(s.n), seed++);
          const auto c0 = randn(size_t((s.m + extra) * s.n), seed++);
          const float* bp = beta == 0.5f ? bias.data() : nullptr;
          const auto big_a = stack_rows(a, more, ta, s.m, extra, s.k);
          std::vector<float> small(c0.begin(), c0.begin() + s.m * s.n), big = c0;
          ASSERT_EQ(nq_gemm_f32(ta, 0, s.m, s.n, s.k, a.data(), b.data(), beta, bp, small.data()), NQ_OK);
          ASSERT_EQ(nq_gemm_f32(ta, 0, s.m + extra, s.n, s.k, big_a.data(), b.data(), beta, bp, big.data()), NQ_OK);
          SCOPED_TRACE(testing::Message() << isa_name(isa) << " ta=" << ta << " m=" << s.m << " n=" << s.n
                                          << " k=" << s.k << " beta=" << beta);
          ASSERT_TRUE(all_finite(small));
          EXPECT_EQ(0, std::memcmp(small.data(), big.data(), small.size() * sizeof(float)));
        }
    for (int ta = 0; ta < 2; ++ta)
      for (float beta : {0.0f, 1.0f, 0.5f})
        for (const Shape& s : {Shape{9, 100, 1}, Shape{40, 17, 4}, Shape{300, 1000, 2}}) {
          const auto a = randn(size_t(s.m * s.k), seed++), b = randn(size_t(s.k * s.n), seed++);
          const auto bias = randn(size_t(s.n), seed++), c0 = randn(size_t(s.m * s.n), seed++);
          std::vector<float> bt(b.size());
          for (int64_t p = 0; p < s.k; ++p)
            for (int64_t j = 0; j < s.n; ++j) bt[size_t(j * s.k + p)] = b[size_t(p * s.n + j)];
          const float* bp = beta == 0.5f ? bias.data() : nullptr;
          std::vector<float> rank = c0, blocked = c0;
          ASSERT_EQ(nq_gemm_f32(ta, 0, s.m, s.n, s.k, a.data(), b.data(), beta, bp, rank.data()), NQ_OK);
          ASSERT_EQ(nq_gemm_f32(ta, 1, s.m, s.n, s.k, a.data(), bt.data(), beta, bp, blocked.data()), NQ_OK);
          SCOPED_TRACE(testing::Message() << isa_name(isa) << " rank ta=" << ta << " m=" << s.m << " n=" << s.n
                                          << " k=" << s.k << " beta=" << beta);
          ASSERT_TRUE(all_finite(rank));
          EXPECT_EQ(0, std::memcmp(rank.data(), blocked.data(), rank.size() * sizeof(float)));
        }
  }
}

// Skinny products (n at most a third of the tile, e.g. LoRA's rank 8) run transposed; every column must keep the
// bits it has inside a wide product (the same B plus 48 more columns, which takes the direct path).
TEST(Gemm, F32SkinnyProductsGiveTheWideProductsBits) {
  uint64_t seed = 900;
  for (nq_isa isa : supported_isas()) {
    IsaScope scope(isa);
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (float beta : {0.0f, 1.0f, 0.5f})
          for (const Shape& s : {Shape{256, 8, 768}, Shape{200, 1, 7}, Shape{130, 5, 1000}, Shape{96, 16, 64}}) {
            const int64_t extra = 48, wide = s.n + extra;
            const auto a = randn(size_t(s.m * s.k), seed++), bw = randn(size_t(wide * s.k), seed++);
            const auto bias = randn(size_t(wide), seed++), cw0 = randn(size_t(s.m * wide), seed++);
            // B (wide) as stored for tb, and its first n columns in the same layout.
            std::vector<float> b(size_t(s.n * s.k));
            for (int64_t j = 0; j < s.n; ++j)
              for (int64_t p = 0; p < s.k; ++p)
                b[size_t(tb ? j * s.k + p : p * s.n + j)] = bw[size_t(tb ? j * s.k + p : p * wide + j)];
            std::vector<float> c(size_t(s.m * s.n)), cw = cw0;
            for (int64_t i = 0; i < s.m; ++i)
              for (int64_t j = 0; j < s.n; ++j) c[size_t(i * s.n + j)] = cw0[size_t(i * wide + j)];
            const float* bp = beta == 0.5f ? bias.data() : nullptr;
            ASSERT_EQ(nq_gemm_f32(ta, tb, s.m, s.n, s.k, a.data(), b.data(), beta, bp, c.data()), NQ_OK);
            ASSERT_EQ(nq_gemm_f32(ta, tb, s.m, wide, s.k, a.data(), bw.data(), beta, bp, cw.data()), NQ_OK);
            SCOPED_TRACE(testing::Message() << isa_name(isa) << " ta=" << ta << " tb=" << tb << " m=" << s.m
                                            << " n=" << s.n << " k=" << s.k << " beta=" << beta);
            ASSERT_TRUE(all_finite(c));
            for (int64_t i = 0; i < s.m; ++i)
              ASSERT_EQ(0, std::memcmp(&c[size_t(i * s.n)], &cw[size_t(i * wide)], size_t(s.n) * sizeof(float))) << "row " << i;
          }
  }
}

TEST(Gemm, F32LargeKLinearLayerShapes) {
  // Y = X W^T at K = 16384 (long accumulation) through the fastest path.
  const Shape s{3, 96, 16384};
  const auto x = randn(size_t(s.m * s.k), 77), w = randn(size_t(s.n * s.k), 78);
  const auto exact = reference(
      0, 1, s, [&](int64_t i) { return double(x[i]); }, [&](int64_t i) { return double(w[i]); }, {}, 0.0,
      nullptr);
  auto y = poisoned(size_t(s.m * s.n));
  ASSERT_EQ(nq_gemm_f32(0, 1, s.m, s.n, s.k, x.data(), w.data(), 0.0f, nullptr, y.data()), NQ_OK);
  ASSERT_TRUE(all_finite(y));
  EXPECT_LT(rel_error(y, exact), kF32RelTol);
}

TEST(Gemm, Bf16AllVariantsAllIsas) {
  uint64_t seed = 100;
  for (const Shape& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const auto af = randn(size_t(s.m * s.k), seed++), bf = randn(size_t(s.n * s.k), seed++);
        const auto a = to_bf16(af), b = to_bf16(bf);
        const auto bias = randn(size_t(s.n), seed++);
        const auto exact_bf = reference(
            ta, tb, s, [&](int64_t i) { return double(nq::gemm::bf16_to_f32(a[i])); },
            [&](int64_t i) { return double(nq::gemm::bf16_to_f32(b[i])); }, {}, 0.0, bias.data());
        const auto exact_f = reference(
            ta, tb, s, [&](int64_t i) { return double(af[i]); }, [&](int64_t i) { return double(bf[i]); }, {},
            0.0, bias.data());
        auto ref = poisoned(size_t(s.m * s.n));
        nq::gemm::gemm_bf16_ref(ta, tb, s.m, s.n, s.k, a.data(), b.data(), 0.0f, bias.data(), ref.data());
        for (nq_isa isa : supported_isas()) {
          IsaScope scope(isa);
          auto c = poisoned(size_t(s.m * s.n));
          ASSERT_EQ(nq_gemm_bf16(ta, tb, s.m, s.n, s.k, a.data(), b.data(), 0.0f, bias.data(), c.data()), NQ_OK)
              << nq_last_error_message();
          SCOPED_TRACE(testing::Message() << isa_name(isa) << " ta=" << ta << " tb=" << tb << " m=" << s.m
                                          << " n=" << s.n << " k=" << s.k);
          ASSERT_TRUE(all_finite(c));
          EXPECT_LT(rel_error(c, exact_bf), kBf16VsExactRelTol);
          EXPECT_LT(rel_error(c, ref), kBf16VsExactRelTol);
          EXPECT_LT(rel_error(c, exact_f), kBf16VsFloatRelTol);
        }
      }
}

TEST(Gemm, BadArgumentsReportStatusAndArgument) {
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64);
  EXPECT_EQ(nq_gemm_f32(0, 1, 4, 4, 4, nullptr, b.data(), 0.0f, nullptr, c.data()), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(message_mentions("'a'"));
  EXPECT_EQ(nq_gemm_f32(0, 1, 0, 4, 4, a.data(), b.data(), 0.0f, nullptr, c.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("'m'"));
  EXPECT_EQ(nq_gemm_f32(2, 1, 4, 4, 4, a.data(), b.data(), 0.0f, nullptr, c.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("trans_a"));
  EXPECT_EQ(nq_gemm_f32(0, 1, 4, 4, 4, a.data(), b.data(), NAN, nullptr, c.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("beta"));
  EXPECT_EQ(nq_gemm_f32(0, 1, 4, 4, 4, a.data(), b.data(), 0.0f, nullptr, a.data() + 8), NQ_ERR_OVERLAP);
  EXPECT_TRUE(message_mentions("'a'"));
}

}  // namespace
