// nq_gemm_f32_compute: NQ_COMPUTE_F16 on fp32 operands (the AVX-512 FP16 path vs the scalar fp16
// reference and vs a float64 product) in all four layouts, tails, beta/bias, huge/tiny rows and
// columns, NaN/Inf; NQ_COMPUTE_F32/BF16 against nq_gemm_f32/nq_gemm_bf16; argument checks; the
// SIMD B packer against the scalar chunk rule.
#include <cmath>
#include <cstring>

#include "cpu/cpu.h"
#include "gemm/f16_chunk.h"
#include "gemm/gemm_f32_f16.h"
#include "test_gemm_common.h"

using namespace gemm_test;

namespace {

// fp32 fallback (CPU without AVX-512 FP16) vs float64: summation order only, ~sqrt(k) * 2^-24.
constexpr double kF32RelTol = 1e-5;

struct Shape {
  int64_t m, n, k;
};
// m = 1 and 8r + tails; n around the 16-column packer group, the 96-column tile and NC (480);
// k < 64, not a multiple of 64, over one KC (384) block.
const Shape kShapes[] = {{1, 97, 200},   {8, 96, 64},   {5, 100, 130}, {7, 98, 33},   {17, 481, 700},
                         {64, 300, 768}, {9, 50, 1000}, {3, 10, 5},    {33, 17, 385}, {2, 16, 1}};

// Element (i, p) of op(A) (m, k) and (p, j) of op(B) (k, n) in their storage.
float op_a(const std::vector<float>& a, int ta, int64_t m, int64_t k, int64_t i, int64_t p) {
  return ta ? a[size_t(p * m + i)] : a[size_t(i * k + p)];
}
float op_b(const std::vector<float>& b, int tb, int64_t n, int64_t k, int64_t p, int64_t j) {
  return tb ? b[size_t(j * k + p)] : b[size_t(p * n + j)];
}

// beta*C0 + bias + op(A) op(B) in float64.
std::vector<double> gemm64(int ta, int tb, int64_t m, int64_t n, int64_t k, const std::vector<float>& a,
                           const std::vector<float>& b, float beta, const float* bias, const std::vector<float>& c0) {
  std::vector<double> c(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = (beta == 0.0f ? 0.0 : double(beta) * c0[size_t(i * n + j)]) + (bias ? bias[j] : 0.0);
      for (int64_t p = 0; p < k; ++p) s += double(op_a(a, ta, m, k, i, p)) * op_b(b, tb, n, k, p, j);
      c[size_t(i * n + j)] = s;
    }
  return c;
}

// The output a call starts from: NaN poison when beta = 0 (must never be read), else data.
std::vector<float> start(size_t n, float beta, const std::vector<float>& c0) { return beta == 0.0f ? poisoned(n) : c0; }

TEST(GemmF32F16, MatchesReferenceAndFloat64) {
  const float betas[] = {0.0f, 1.0f, 0.75f};
  int v = 0;
  for (const Shape& s : kShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb, ++v) {
        const float beta = betas[v % 3];
        const auto a = randn(size_t(s.m * s.k), uint64_t(v * 3 + 1)), b = randn(size_t(s.n * s.k), uint64_t(v * 3 + 2));
        const auto c0 = randn(size_t(s.m * s.n), uint64_t(v * 3 + 3));
        const auto bias_v = randn(size_t(s.n), uint64_t(v));
        const float* bias = v % 2 ? bias_v.data() : nullptr;
        const auto exact = gemm64(ta, tb, s.m, s.n, s.k, a, b, beta, bias, c0);
        auto ref = start(c0.size(), beta, c0);
        nq::gemm::gemm_f32_f16_ref(ta, tb, s.m, s.n, s.k, a.data(), b.data(), beta, bias, ref.data());
        const std::string shape = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) + " ta " +
                                  std::to_string(ta) + " tb " + std::to_string(tb) + " beta " + std::to_string(beta) +
                                  (bias ? " bias" : "");
        EXPECT_LT(rel_error(ref, exact), kF16RelTol) << "reference " << shape;
        for (nq_isa isa : supported_isas()) {
          IsaScope cap(isa);
          auto c = start(c0.size(), beta, c0);
          ASSERT_EQ(
              nq_gemm_f32_compute(ta, tb, s.m, s.n, s.k, a.data(), b.data(), beta, bias, NQ_COMPUTE_F16, c.data()),
              NQ_OK)
              << nq_last_error_message();
          expect_f16_accurate(c, ref, exact, isa, kF32RelTol, std::string(isa_name(isa)) + " " + shape);
        }
      }
}

// Rows of op(A) and columns of op(B) at 1e±4 and 1e±30 (beyond fp16's range either way): the
// per-(row, chunk) and per-(column, chunk) powers of two keep each block of equally scaled
// outputs within the fp16 bound. Blocks whose true values leave fp32's range are not judged.
TEST(GemmF32F16, ScalingKeepsHugeAndTinyRowsAndColumnsAccurate) {
  const int64_t m = 12, n = 40, k = 300;
  const double row_scale[] = {1e4, 1e-4, 1e30, 1e-30, 1.0, 3e4};
  const double col_scale[] = {1.0, 1e4, 1e-4, 1e30, 1e-30};
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      auto a = randn(size_t(m * k), uint64_t(10 + 2 * ta + tb)), b = randn(size_t(n * k), uint64_t(20 + 2 * ta + tb));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t p = 0; p < k; ++p) a[size_t(ta ? p * m + i : i * k + p)] *= float(row_scale[i % 6]);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t p = 0; p < k; ++p) b[size_t(tb ? j * k + p : p * n + j)] *= float(col_scale[j % 5]);
      const auto exact = gemm64(ta, tb, m, n, k, a, b, 0.0f, nullptr, {});
      for (nq_isa isa : {NQ_ISA_SCALAR, NQ_ISA_AVX512_BF16}) {
        IsaScope cap(isa);
        auto c = poisoned(size_t(m * n));
        ASSERT_EQ(nq_gemm_f32_compute(ta, tb, m, n, k, a.data(), b.data(), 0.0f, nullptr, NQ_COMPUTE_F16, c.data()),
                  NQ_OK);
        for (int ri = 0; ri < 6; ++ri)
          for (int cj = 0; cj < 5; ++cj) {
            if (std::fabs(std::log10(row_scale[ri] * col_scale[cj])) > 34) continue;  // 1e±34: fp32 normals
            double num = 0, den = 0;
            for (int64_t i = ri; i < m; i += 6)
              for (int64_t j = cj; j < n; j += 5) {
                const double d = c[size_t(i * n + j)] - exact[size_t(i * n + j)];
                num += d * d;
                den += exact[size_t(i * n + j)] * exact[size_t(i * n + j)];
              }
            EXPECT_LT(std::sqrt(num / den), kF16RelTol) << isa_name(isa) << " ta " << ta << " tb " << tb << " rows x"
                                                        << row_scale[ri] << " columns x" << col_scale[cj];
          }
      }
    }
}

// A NaN or Inf in a row of op(A) (column of op(B)) makes that output row (column) non-finite and
// leaves every other output finite (scales are per row/column and chunk).
TEST(GemmF32F16, NonFiniteRowsAndColumnsPropagateOnlyThere) {
  const int64_t m = 9, n = 130, k = 200;
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  const auto bad_row = [](int64_t i) { return i % 3 == 2; };
  const auto bad_col = [](int64_t j) { return j == 7 || j == 50 || j == 101; };
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      auto a = randn(size_t(m * k), 8), b = randn(size_t(n * k), 9);
      const int64_t cols[] = {7, 50, 101};
      for (int t = 0; t < 3; ++t) {
        const int64_t i = 2 + 3 * t, p = 70 + 40 * t;
        a[size_t(ta ? p * m + i : i * k + p)] = bad[t];
        b[size_t(tb ? cols[t] * k + p + 5 : (p + 5) * n + cols[t])] = bad[2 - t];
      }
      for (nq_isa isa : supported_isas()) {
        IsaScope cap(isa);
        auto c = poisoned(size_t(m * n));
        ASSERT_EQ(nq_gemm_f32_compute(ta, tb, m, n, k, a.data(), b.data(), 0.0f, nullptr, NQ_COMPUTE_F16, c.data()),
                  NQ_OK);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j)
            ASSERT_EQ(std::isfinite(c[size_t(i * n + j)]), !bad_row(i) && !bad_col(j))
                << isa_name(isa) << " ta " << ta << " tb " << tb << " at " << i << "," << j;
      }
    }
}

// NQ_COMPUTE_F32 is nq_gemm_f32 and NQ_COMPUTE_BF16 is nq_gemm_bf16 on the rounded inputs, bit
// for bit, at every ISA level (GEMV, rank-k and blocked shapes).
TEST(GemmF32F16, F32AndBf16ComputeMatchTheirEntriesBitwise) {
  const Shape shapes[] = {{3, 100, 70}, {40, 200, 3}, {37, 130, 400}, {1, 50, 64}};
  for (const Shape& s : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const auto a = randn(size_t(s.m * s.k), 31), b = randn(size_t(s.n * s.k), 32),
                   c0 = randn(size_t(s.m * s.n), 33);
        const auto bias = randn(size_t(s.n), 34);
        const auto a16 = to_bf16(a), b16 = to_bf16(b);
        for (nq_isa isa : supported_isas()) {
          IsaScope cap(isa);
          const std::string at = std::string(isa_name(isa)) + " " + std::to_string(s.m) + "x" + std::to_string(s.n) +
                                 "x" + std::to_string(s.k) + " ta " + std::to_string(ta) + " tb " + std::to_string(tb);
          auto want = c0, got = c0;
          ASSERT_EQ(nq_gemm_f32(ta, tb, s.m, s.n, s.k, a.data(), b.data(), 0.5f, bias.data(), want.data()), NQ_OK);
          ASSERT_EQ(nq_gemm_f32_compute(ta, tb, s.m, s.n, s.k, a.data(), b.data(), 0.5f, bias.data(), NQ_COMPUTE_F32,
                                        got.data()),
                    NQ_OK);
          EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0) << "f32 " << at;
          want = c0;
          got = c0;
          ASSERT_EQ(nq_gemm_bf16(ta, tb, s.m, s.n, s.k, a16.data(), b16.data(), 1.0f, nullptr, want.data()), NQ_OK);
          ASSERT_EQ(nq_gemm_f32_compute(ta, tb, s.m, s.n, s.k, a.data(), b.data(), 1.0f, nullptr, NQ_COMPUTE_BF16,
                                        got.data()),
                    NQ_OK);
          EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0) << "bf16 " << at;
        }
      }
}

TEST(GemmF32F16, InvalidArgumentsAreRejected) {
  const auto a = randn(8 * 64, 1), b = randn(8 * 64, 2);
  std::vector<float> c(64);
  for (int bits : {2, 4, -1}) {
    nq_compute_type bad;
    std::memcpy(&bad, &bits, sizeof bad);
    EXPECT_EQ(nq_gemm_f32_compute(0, 1, 8, 8, 64, a.data(), b.data(), 0.0f, nullptr, bad, c.data()),
              NQ_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(message_mentions("compute")) << nq_last_error_message();
  }
  EXPECT_EQ(nq_gemm_f32_compute(2, 1, 8, 8, 64, a.data(), b.data(), 0.0f, nullptr, NQ_COMPUTE_F16, c.data()),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("trans_a"));
  EXPECT_EQ(nq_gemm_f32_compute(0, 1, 8, 8, 0, a.data(), b.data(), 0.0f, nullptr, NQ_COMPUTE_F16, c.data()),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("'k'"));
  EXPECT_EQ(nq_gemm_f32_compute(0, 1, 8, 8, 64, a.data(), nullptr, 0.0f, nullptr, NQ_COMPUTE_F16, c.data()),
            NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_gemm_f32_compute(0, 1, 8, 8, 64, a.data(), b.data(), std::numeric_limits<float>::infinity(), nullptr,
                                NQ_COMPUTE_F16, c.data()),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_gemm_f32_compute(0, 1, 8, 8, 8, a.data(), b.data(), 0.0f, nullptr, NQ_COMPUTE_F16,
                                const_cast<float*>(a.data())),
            NQ_ERR_OVERLAP);
}

// A whose packed panels exceed run_gemm's shared budget (8 MiB) is shared by the 2 threads through a ring of K
// blocks: 136 x 9000 (24 K blocks, a ring of 20) and 1352 x 1600 (5 K blocks of 4.2 MB, a ring of 2, so a thread
// a ring ahead packs privately). Every output is written (beta = 0 starts from NaN), both threads' results are
// bitwise those of one thread, and rows/columns at the edges match the scalar reference.
TEST(GemmF32F16, SharedARingMatchesOneThreadBitwise) {
  if (!nq::cpu::use_avx512fp16()) GTEST_SKIP() << "no AVX-512 FP16";
  const Shape shapes[] = {{136, 200, 9000}, {1352, 1400, 1600}};
  int32_t saved = 1;
  ASSERT_EQ(nq_threads_get(&saved), NQ_OK);
  int v = 0;
  for (const Shape& s : shapes)
    for (int tb = 0; tb < 2; ++tb, ++v) {
      const float beta = tb ? 0.0f : 1.0f;
      const auto a = randn(size_t(s.m * s.k), uint64_t(100 + v)), b = randn(size_t(s.n * s.k), uint64_t(200 + v));
      const auto c0 = randn(size_t(s.m * s.n), uint64_t(300 + v));
      std::vector<float> c[2];
      for (int threads = 1; threads <= 2; ++threads) {
        ASSERT_EQ(nq_threads_set(threads), NQ_OK);
        c[threads - 1] = start(c0.size(), beta, c0);
        ASSERT_EQ(nq_gemm_f32_compute(0, tb, s.m, s.n, s.k, a.data(), b.data(), beta, nullptr, NQ_COMPUTE_F16,
                                      c[threads - 1].data()),
                  NQ_OK)
            << nq_last_error_message();
      }
      ASSERT_EQ(nq_threads_set(saved), NQ_OK);
      const std::string shape = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) + " tb " +
                                std::to_string(tb);
      ASSERT_TRUE(all_finite(c[1])) << shape;
      ASSERT_EQ(std::memcmp(c[0].data(), c[1].data(), c[0].size() * sizeof(float)), 0) << shape;
      // Reference on the first 9 and last 9 rows (each output depends only on its row of A and column of B).
      for (int64_t i0 : {int64_t(0), s.m - 9}) {
        const std::vector<float> arows(a.begin() + i0 * s.k, a.begin() + (i0 + 9) * s.k);
        std::vector<float> ref(c0.begin() + i0 * s.n, c0.begin() + (i0 + 9) * s.n), got(ref.size());
        nq::gemm::gemm_f32_f16_ref(0, tb, 9, s.n, s.k, arows.data(), b.data(), beta, nullptr, ref.data());
        std::copy(c[1].begin() + i0 * s.n, c[1].begin() + (i0 + 9) * s.n, got.begin());
        EXPECT_LT(rel_error(got, ref), kF16RefRelTol) << shape << " rows from " << i0;
      }
    }
}

// The SIMD B packer writes exactly the scalar chunk rule's fp16 values and scales in both layouts,
// for zero, Inf, subnormal-max, 1e±30 and near-FLT_MAX (clamped shift) columns.
// Wide products split over threads in dynamically claimed column units (driver.h: >= 16 tiles for 2 threads):
// fp16 with a shared A and fp32 with A read in place, edge rows, several K blocks, both B layouts. Two threads
// give one thread's bits whichever units each claimed, and write every output (beta = 0 starts from NaN).
TEST(GemmF32F16, DynamicColumnUnitsMatchOneThreadBitwise) {
  const Shape s{37, 2000, 1000};
  int32_t saved = 1;
  ASSERT_EQ(nq_threads_get(&saved), NQ_OK);
  int v = 0;
  for (nq_compute_type ct : {NQ_COMPUTE_F16, NQ_COMPUTE_F32})
    for (int tb = 0; tb < 2; ++tb, ++v) {
      const auto a = randn(size_t(s.m * s.k), uint64_t(400 + v)), b = randn(size_t(s.n * s.k), uint64_t(500 + v));
      std::vector<float> c[2];
      for (int threads = 1; threads <= 2; ++threads) {
        ASSERT_EQ(nq_threads_set(threads), NQ_OK);
        c[threads - 1].assign(size_t(s.m * s.n), std::nanf(""));
        ASSERT_EQ(nq_gemm_f32_compute(0, tb, s.m, s.n, s.k, a.data(), b.data(), 0.0f, nullptr, ct, c[threads - 1].data()),
                  NQ_OK)
            << nq_last_error_message();
      }
      ASSERT_EQ(nq_threads_set(saved), NQ_OK);
      ASSERT_TRUE(all_finite(c[1])) << "compute " << ct << " tb " << tb;
      ASSERT_EQ(std::memcmp(c[0].data(), c[1].data(), c[0].size() * sizeof(float)), 0) << "compute " << ct << " tb " << tb;
    }
}

// An A packed once and reused (gemm_f16_prepacked_a, the fused head's logits blocks) gives nq_gemm_f32_compute's
// bits: the same panels, read from the prepacked buffer; NaN-filled C shows every element written. Shapes as
// above (edge tiles, k tails, several K blocks), both B layouts, on 1 and all threads.
TEST(GemmF32F16, PrepackedAMatchesTheEntryBitwise) {
  if (!nq::cpu::use_avx512fp16()) GTEST_SKIP() << "no AVX-512 FP16";
  int32_t threads = 1;
  ASSERT_EQ(nq_threads_get(&threads), NQ_OK);
  int v = 0;
  for (const Shape& s : kShapes)
    for (int tb = 0; tb < 2; ++tb, ++v) {
      const auto a = randn(size_t(s.m * s.k), uint64_t(v * 5 + 1)), b = randn(size_t(s.n * s.k), uint64_t(v * 5 + 2));
      std::vector<float> want(size_t(s.m * s.n));
      ASSERT_EQ(nq_gemm_f32_compute(0, tb, s.m, s.n, s.k, a.data(), b.data(), 0.0f, nullptr, NQ_COMPUTE_F16, want.data()),
                NQ_OK);
      std::vector<uint8_t> packed(size_t(nq::gemm::f16_prepack_bytes(s.m, s.k)));
      const nq::gemm::PrepackedA x = nq::gemm::f16_prepack_a(a.data(), s.m, s.k, packed.data());
      for (int32_t nt : {1, threads}) {
        ASSERT_EQ(nq_threads_set(nt), NQ_OK);
        std::vector<float> got(want.size(), std::nanf(""));
        nq::gemm::gemm_f16_prepacked_a(x, s.m, s.k, b.data(), s.n, tb != 0, got.data());
        ASSERT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0)
            << s.m << "x" << s.n << "x" << s.k << " tb " << tb << " threads " << nt;
      }
      ASSERT_EQ(nq_threads_set(threads), NQ_OK);
    }
}

TEST(GemmF32F16, PackBMatchesScalarChunks) {
  if (!nq::cpu::use_avx512fp16()) GTEST_SKIP() << "no AVX-512 FP16";
  using namespace nq::gemm;
  const float col_scale[] = {1.0f, 1e30f, 1e-30f, 0.0f, 1e-42f, 1e4f, 1e38f, 1e-4f, 3.0f};
  for (bool trans : {false, true})
    for (int64_t kc : {1, 63, 64, 130, 384})
      for (int64_t nc : {1, 15, 16, 17, 96, 100, 480}) {
        const int64_t ld = (trans ? kc : nc) + 3;
        auto b = randn(size_t((trans ? nc : kc) * ld), uint64_t(kc * 1000 + nc));
        const auto at = [&](int64_t p, int64_t j) -> float& { return b[size_t(trans ? j * ld + p : p * ld + j)]; };
        for (int64_t j = 0; j < nc; ++j)
          for (int64_t p = 0; p < kc; ++p) at(p, j) *= col_scale[j % 9];
        if (nc > 10 && kc > 5) at(5, 10) = std::numeric_limits<float>::infinity();
        const int64_t nch = (kc + 63) / 64, panel_bytes = nch * kF16BChunkBytes;
        std::vector<uint8_t> out(size_t((nc + kF16Nr - 1) / kF16Nr * panel_bytes), 0);
        pack_b_f32_f16_avx512fp16(b.data(), ld, trans, out.data(), panel_bytes, kc, nc);
        for (int64_t j = 0; j < nc; ++j)
          for (int64_t c = 0; c < nch; ++c) {
            const uint8_t* chunk = out.data() + (j / kF16Nr) * panel_bytes + c * kF16BChunkBytes;
            const int len = int(std::min<int64_t>(64, kc - c * 64));
            uint16_t want[64];
            const float scale = f16_b_chunk(&at(c * 64, j), trans ? 1 : ld, len, want, 1);
            float got_scale;
            std::memcpy(&got_scale, chunk + kF16BScaleOffset + (j % kF16Nr) * 4, 4);
            const std::string where = std::string(trans ? "NT" : "NN") + " kc " + std::to_string(kc) + " nc " +
                                      std::to_string(nc) + " col " + std::to_string(j) + " chunk " + std::to_string(c);
            ASSERT_EQ(got_scale, scale) << where;
            for (int t = 0; t < len; ++t) {
              uint16_t got;
              std::memcpy(&got, chunk + (t * kF16Nr + j % kF16Nr) * 2, 2);
              ASSERT_EQ(got, want[t]) << where << " k " << t;
            }
          }
      }
}

TEST(GemmF32F16, WeightShiftRule) {
  using nq::gemm::f16_weight_shift;
  EXPECT_EQ(f16_weight_shift(0.5f), 0);
  EXPECT_EQ(f16_weight_shift(0.99f), 0);
  EXPECT_EQ(f16_weight_shift(1.0f), -1);
  EXPECT_EQ(f16_weight_shift(1e-40f), nq::gemm::kF16MaxShift);  // subnormal: clamped
  EXPECT_EQ(f16_weight_shift(0.0f), 0);
  EXPECT_EQ(f16_weight_shift(std::numeric_limits<float>::infinity()), 0);
}

}  // namespace
