// NF4/FP4 GEMM, GEMV and backward vs the scalar reference and a float64 product with the
// dequantised weight (nq_quant4_dequantize), for plain and double-quantized absmax.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "gemm/gemm_quant4.h"
#include "test_gemm_common.h"
#include "test_quant4_weight.h"

using namespace gemm_test;

namespace {

// fp32 compute: only summation-order error against the exact product of the same
// dequantised values (~1e-7 * sqrt(K)); 1e-5 still flags a single wrong element.
constexpr double kF32RelTol = 1e-5;
// bf16 compute rounds X and W to 8 mantissa bits (~2^-9 each) before the fp32 sum.
constexpr double kBf16RelTol = 1e-2;

double maybe_bf16(double v, nq_compute_type c) {
  return c == NQ_COMPUTE_BF16 ? double(nq::gemm::round_bf16(float(v))) : v;
}

struct Case {
  int64_t m, n, k;
  int32_t bs;
};
// M=1..4 with k % 32 == 0 takes the GEMV path; k % 32 != 0 or M > 4 the packed GEMM;
// k is often not a multiple of the block (blocks then straddle rows); {4, 1031, 2048} is
// large enough for the GEMV to split N over threads.
const Case kCases[] = {{1, 64, 96, 64},   {1, 33, 100, 64},  {2, 130, 4096, 4096}, {4, 70, 160, 32},
                       {5, 129, 320, 128}, {17, 96, 1000, 32}, {9, 65, 16384, 256},  {40, 200, 544, 2048},
                       {3, 67, 224, 64},   {4, 1031, 2048, 128},
                       // Blocked path over several KC/NC blocks, split over 2 threads, edge rows and
                       // columns: the AVX-512 packers (k % 32 == 0) and their column tails.
                       {21, 1000, 640, 64},  {12, 96, 1056, 64}};

TEST(GemmQuant4, ForwardAndBackwardAllIsasTypesAndAbsmaxModes) {
  uint64_t seed = 11;
  for (const Case& cs : kCases)
    for (nq_quant4_type type : {NQ_QUANT4_NF4, NQ_QUANT4_FP4})
      for (bool dq : {false, true}) {
        const Q4 q = make_weight(cs.n, cs.k, cs.bs, type, dq, seed++);
        const auto x = randn(size_t(cs.m * cs.k), seed++), dy = randn(size_t(cs.m * cs.n), seed++);
        const auto bias = randn(size_t(cs.n), seed++), dx0 = randn(size_t(cs.m * cs.k), seed++);
        for (nq_compute_type ct : {NQ_COMPUTE_F32, NQ_COMPUTE_BF16}) {
          std::vector<double> y_exact(size_t(cs.m * cs.n)), dx_exact(size_t(cs.m * cs.k));
          for (int64_t i = 0; i < cs.m; ++i) {
            for (int64_t n = 0; n < cs.n; ++n) {
              double a = bias[n];
              for (int64_t k = 0; k < cs.k; ++k)
                a += maybe_bf16(x[i * cs.k + k], ct) * maybe_bf16(q.deq[n * cs.k + k], ct);
              y_exact[i * cs.n + n] = a;
            }
            for (int64_t k = 0; k < cs.k; ++k) {
              double a = 0.5 * dx0[i * cs.k + k];
              for (int64_t n = 0; n < cs.n; ++n)
                a += maybe_bf16(dy[i * cs.n + n], ct) * maybe_bf16(q.deq[n * cs.k + k], ct);
              dx_exact[i * cs.k + k] = a;
            }
          }
          auto y_ref = poisoned(y_exact.size());
          nq::gemm::quant4_gemm_ref(x.data(), cs.m, q.w, bias.data(), ct, y_ref.data());
          auto dx_ref = dx0;
          nq::gemm::quant4_gemm_backward_ref(dy.data(), cs.m, q.w, ct, 0.5f, dx_ref.data());
          // The GEMV path accumulates in fp32 even for bf16 compute: compare loosely.
          const double tol = ct == NQ_COMPUTE_BF16 ? kBf16RelTol : kF32RelTol;
          for (nq_isa isa : supported_isas()) {
            IsaScope scope(isa);
            SCOPED_TRACE(testing::Message() << isa_name(isa) << " m=" << cs.m << " n=" << cs.n << " k=" << cs.k
                                            << " bs=" << cs.bs << " type=" << type << " dq=" << dq
                                            << " compute=" << ct);
            auto y = poisoned(y_exact.size());
            ASSERT_EQ(nq_quant4_gemm(x.data(), cs.m, &q.w, bias.data(), ct, y.data()), NQ_OK)
                << nq_last_error_message();
            ASSERT_TRUE(all_finite(y));
            EXPECT_LT(rel_error(y, y_exact), tol);
            EXPECT_LT(rel_error(y, y_ref), tol);
            auto dx = dx0;
            ASSERT_EQ(nq_quant4_gemm_backward(dy.data(), cs.m, &q.w, ct, 0.5f, dx.data()), NQ_OK)
                << nq_last_error_message();
            EXPECT_LT(rel_error(dx, dx_exact), tol);
            EXPECT_LT(rel_error(dx, dx_ref), tol);
            auto dx_over = poisoned(dx0.size());  // beta = 0 must not read the old dX
            ASSERT_EQ(nq_quant4_gemm_backward(dy.data(), cs.m, &q.w, ct, 0.0f, dx_over.data()), NQ_OK);
            ASSERT_TRUE(all_finite(dx_over));
          }
        }
      }
}

// The GEMV reads 4-row groups as flat 64-byte chunks: k % 128 in {0, 32, 64, 96} puts row
// ends at every lane offset of a chunk, k < 128 makes one chunk span up to 4 rows, n % 4 != 0
// leaves a partial last group, and blocksize 32 / 64 / >= 128 gives 4 / 2 / 1 absmax per chunk.
TEST(GemmQuant4, GemvRowEndsInsideChunksAndPartialGroups) {
  struct Shape {
    int64_t n, k;
    int32_t bs;
  };
  const Shape shapes[] = {{5, 32, 32},  {7, 64, 64},   {3, 96, 32},   {9, 288, 64},   {37, 288, 64},
                          {6, 320, 256}, {1, 288, 128}, {13, 800, 32}, {11, 1152, 1024}};
  uint64_t seed = 101;
  for (const Shape& sh : shapes)
    for (bool dq : {false, true}) {
      const Q4 q = make_weight(sh.n, sh.k, sh.bs, NQ_QUANT4_NF4, dq, seed++);
      const auto bias = randn(size_t(sh.n), seed++);
      for (int64_t m = 1; m <= nq::gemm::kQuant4GemvMaxM; ++m) {
        SCOPED_TRACE(testing::Message() << "m=" << m << " n=" << sh.n << " k=" << sh.k << " bs=" << sh.bs
                                        << " dq=" << dq);
        const auto x = randn(size_t(m * sh.k), seed++);
        const auto y_exact = forward64(x, m, q, bias.data());
        auto y_ref = poisoned(y_exact.size()), y = poisoned(y_exact.size());
        nq::gemm::quant4_gemm_ref(x.data(), m, q.w, bias.data(), NQ_COMPUTE_F32, y_ref.data());
        ASSERT_EQ(nq_quant4_gemm(x.data(), m, &q.w, bias.data(), NQ_COMPUTE_F32, y.data()), NQ_OK)
            << nq_last_error_message();
        ASSERT_TRUE(all_finite(y));
        EXPECT_LT(rel_error(y, y_exact), kF32RelTol);
        EXPECT_LT(rel_error(y, y_ref), kF32RelTol);
      }
    }
}

// The GEMV must not read past the packed codes or the absmax array: both are placed against
// an inaccessible page (a stray read faults).
TEST(GemmQuant4, GemvReadsNothingPastTheWeight) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  // Copies `bytes` of src to the end of a readable page followed by a PROT_NONE page.
  struct Guarded {
    void* base = MAP_FAILED;
    size_t len = 0;
    ~Guarded() {
      if (base != MAP_FAILED) munmap(base, len);
    }
  };
  const auto place = [&](Guarded& g, const void* src, size_t bytes) -> void* {
    const size_t pages = (bytes + page - 1) / page + 1;
    g.len = pages * page;
    g.base = mmap(nullptr, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(g.base, MAP_FAILED);
    char* guard = static_cast<char*>(g.base) + (pages - 1) * page;
    EXPECT_EQ(mprotect(guard, page, PROT_NONE), 0);
    std::memcpy(guard - bytes, src, bytes);
    return guard - bytes;
  };
  const struct {
    int64_t n, k;
    int32_t bs;
  } shapes[] = {{4, 128, 32}, {8, 288, 64}, {3, 288, 64}, {5, 96, 128}};
  uint64_t seed = 301;
  for (const auto& sh : shapes)
    for (bool dq : {false, true}) {
      SCOPED_TRACE(testing::Message() << "n=" << sh.n << " k=" << sh.k << " bs=" << sh.bs << " dq=" << dq);
      const Q4 q = make_weight(sh.n, sh.k, sh.bs, NQ_QUANT4_FP4, dq, seed++);
      Guarded gp, ga;
      nq_quant4_weight w = q.w;
      w.packed = static_cast<const uint8_t*>(place(gp, q.packed.data(), q.packed.size()));
      if (dq)
        w.absmax_q = static_cast<const uint8_t*>(place(ga, q.absmax_q.data(), q.absmax_q.size()));
      else
        w.absmax = static_cast<const float*>(place(ga, q.absmax.data(), q.absmax.size() * 4));
      const auto x = randn(size_t(4 * sh.k), seed++);
      auto y = poisoned(size_t(4 * sh.n)), y_ref = poisoned(size_t(4 * sh.n));
      nq::gemm::quant4_gemm_ref(x.data(), 4, q.w, nullptr, NQ_COMPUTE_F32, y_ref.data());
      ASSERT_EQ(nq_quant4_gemm(x.data(), 4, &w, nullptr, NQ_COMPUTE_F32, y.data()), NQ_OK) << nq_last_error_message();
      ASSERT_TRUE(all_finite(y));
      EXPECT_LT(rel_error(y, y_ref), kF32RelTol);
    }
}

// nq_quant4_gemv_rows: ranges that cut absmax and nested-absmax blocks anywhere (k = 288, bs 64:
// 4.5 blocks a row, a nested block every 56.9 rows; n % 4 != 0 ends on a partial group), each
// range written alone (columns outside it stay poisoned), the union equal bit for bit to the
// whole-product GEMV for m <= 4 (same kernel, same groups) and within fp32 summation error of
// the row reference and the float64 product; m = 5, 6 run the kernel 4 rows of x at a time.
TEST(GemmQuant4, GemvRowsAnySplitEqualsWholeProduct) {
  struct Shape {
    int64_t n, k;
    int32_t bs;
  };
  const Shape shapes[] = {{1031, 288, 64}, {1200, 768, 64}, {37, 96, 32}, {9, 100, 64}};
  uint64_t seed = 401;
  for (const Shape& sh : shapes)
    for (bool dq : {false, true}) {
      const Q4 q = make_weight(sh.n, sh.k, sh.bs, NQ_QUANT4_NF4, dq, seed++);
      const auto bias = randn(size_t(sh.n), seed++);
      // Cut points: multiples of 4 that are not multiples of 8, 512 or a nested block's rows.
      const int64_t cuts[] = {0, std::min<int64_t>(sh.n, 4 * (sh.n / 12)), std::min<int64_t>(sh.n, 4 * (sh.n / 5) + 4),
                              sh.n};
      for (int64_t m = 1; m <= 6; ++m) {
        const auto x = randn(size_t(m * sh.k), seed++);
        const auto y_exact = forward64(x, m, q, bias.data());
        auto y_ref = poisoned(y_exact.size());
        nq::gemm::quant4_gemm_rows_ref(x.data(), m, q.w, bias.data(), NQ_COMPUTE_F32, 0, sh.n, y_ref.data());
        ASSERT_TRUE(all_finite(y_ref));
        EXPECT_LT(rel_error(y_ref, y_exact), kF32RelTol);
        for (nq_isa isa : supported_isas()) {
          IsaScope scope(isa);
          SCOPED_TRACE(testing::Message() << isa_name(isa) << " m=" << m << " n=" << sh.n << " k=" << sh.k
                                          << " bs=" << sh.bs << " dq=" << dq);
          auto y = poisoned(y_exact.size());
          for (int c = 0; c + 1 < 4; ++c) {
            if (cuts[c] == cuts[c + 1]) continue;
            ASSERT_EQ(nq_quant4_gemv_rows(x.data(), m, &q.w, bias.data(), cuts[c], cuts[c + 1], y.data()), NQ_OK)
                << nq_last_error_message();
            for (int64_t i = 0; i < m; ++i)  // written up to this range's end, nothing after it
              for (int64_t n = 0; n < sh.n; ++n)
                ASSERT_EQ(std::isnan(y[size_t(i * sh.n + n)]), n >= cuts[c + 1]) << "i=" << i << " n=" << n;
          }
          EXPECT_LT(rel_error(y, y_exact), kF32RelTol);
          EXPECT_LT(rel_error(y, y_ref), kF32RelTol);
          if (m <= nq::gemm::kQuant4GemvMaxM) {
            auto whole = poisoned(y_exact.size());
            ASSERT_EQ(nq_quant4_gemm(x.data(), m, &q.w, bias.data(), NQ_COMPUTE_F32, whole.data()), NQ_OK);
            if (isa >= NQ_ISA_AVX512 && sh.k % 32 == 0)
              EXPECT_EQ(std::memcmp(y.data(), whole.data(), y.size() * 4), 0);
          }
        }
      }
    }
}

TEST(GemmQuant4, GemvRowsBadRangesReportStatus) {
  Q4 q = make_weight(10, 64, 64, NQ_QUANT4_NF4, true, 7);
  std::vector<float> x(64, 1.0f), y(10);
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 1, &q.w, nullptr, 2, 8, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("row0"));
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 1, &q.w, nullptr, 0, 6, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 1, &q.w, nullptr, 8, 12, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 1, &q.w, nullptr, 4, 4, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 1, &q.w, nullptr, 8, 10, y.data()), NQ_OK) << nq_last_error_message();
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 0, &q.w, nullptr, 0, 4, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 1, nullptr, nullptr, 0, 4, y.data()), NQ_ERR_NULL_POINTER);
  EXPECT_EQ(nq_quant4_gemv_rows(x.data(), 1, &q.w, nullptr, 0, 4, nullptr), NQ_ERR_NULL_POINTER);
}

TEST(GemmQuant4, BadArgumentsReportStatusAndField) {
  Q4 q = make_weight(8, 64, 64, NQ_QUANT4_NF4, false, 5);
  std::vector<float> x(8 * 64, 1.0f), y(8 * 8);
  nq_quant4_weight w = q.w;
  EXPECT_EQ(nq_quant4_gemm(x.data(), 2, nullptr, nullptr, NQ_COMPUTE_F32, y.data()), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(message_mentions("'w'"));
  w.blocksize = 48;
  EXPECT_EQ(nq_quant4_gemm(x.data(), 2, &w, nullptr, NQ_COMPUTE_F32, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("blocksize"));
  w = q.w;
  w.absmax_q = q.packed.data();  // both absmax modes set
  EXPECT_EQ(nq_quant4_gemm(x.data(), 2, &w, nullptr, NQ_COMPUTE_F32, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("absmax"));
  w = q.w;
  w.type = 7;
  EXPECT_EQ(nq_quant4_gemm(x.data(), 2, &w, nullptr, NQ_COMPUTE_F32, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("type"));
  EXPECT_EQ(nq_quant4_gemm(x.data(), 0, &q.w, nullptr, NQ_COMPUTE_F32, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("'m'"));
  EXPECT_EQ(nq_quant4_gemm(x.data(), 2, &q.w, nullptr, nq_compute_type(4), y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("compute"));
  EXPECT_EQ(nq_quant4_gemm_backward(y.data(), 2, &q.w, NQ_COMPUTE_F32, 0.0f, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(message_mentions("dx"));
  EXPECT_EQ(nq_quant4_gemm(x.data(), 2, &q.w, nullptr, NQ_COMPUTE_F32, x.data() + 4), NQ_ERR_OVERLAP);
}

}  // namespace
