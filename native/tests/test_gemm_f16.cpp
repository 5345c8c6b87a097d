// NQ_COMPUTE_F16 for the NF4/FP4 GEMM forward and backward: the AVX-512 FP16 path vs the
// scalar fp16 reference (same operations) and vs a float64 product with the dequantised
// weight; tails, scaling of huge/tiny rows and weights, NaN/Inf rows, dispatch fallbacks.
#include <cstring>

#include "cpu/cpu.h"
#include "gemm/quant4_f16.h"
#include "test_gemm_common.h"
#include "test_quant4_weight.h"

using namespace gemm_test;

namespace {

// fp32 fallback (CPU without AVX-512 FP16): summation order only, as test_gemm_quant4.
constexpr double kF32RelTol = 1e-5;

// Relative error of one row (rows of very different magnitude are judged separately).
double row_rel_error(const float* out, const double* ref, int64_t n) {
  double num = 0, den = 0;
  for (int64_t j = 0; j < n; ++j) {
    num += (out[j] - ref[j]) * (out[j] - ref[j]);
    den += ref[j] * ref[j];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

// M 3 (k % 32 != 0: not the GEMV), 5..7 and 8k+r; N around the 96-column tile and over NC (480);
// K odd, not a multiple of 64 or of the block (blocks straddle rows), several KC (384) blocks;
// bs 32 (chunks span two blocks), 64, 128, 256, 4096.
const Case kCases[] = {{8, 96, 64, 64},     {5, 100, 130, 64},  {7, 98, 77, 32},     {6, 200, 1000, 128},
                       {33, 300, 768, 64},  {24, 1000, 1536, 256}, {17, 96, 4096, 4096}, {9, 50, 200, 64},
                       {13, 481, 832, 32}, {8, 192, 2, 64}, {9, 200, 320, 64}, {3, 100, 70, 64}};

TEST(GemmF16, ForwardMatchesReferenceAndFloat64) {
  for (const Case& c : kCases)
    for (int v = 0; v < 3; ++v) {
      const ForwardProblem p(c.m, c.n, c.k, c.bs, v);
      const auto& [q, x, bias, y64] = p;
      std::vector<float> ref(size_t(c.m * c.n));
      nq::gemm::quant4_gemm_f16_ref(x.data(), c.m, q.w, bias.data(), ref.data());
      EXPECT_LT(rel_error(ref, y64), kF16RelTol) << c.m << "x" << c.n << "x" << c.k;
      for (nq_isa isa : supported_isas()) {
        IsaScope cap(isa);
        auto y = poisoned(size_t(c.m * c.n));
        ASSERT_EQ(nq_quant4_gemm(x.data(), c.m, &q.w, bias.data(), NQ_COMPUTE_F16, y.data()), NQ_OK)
            << nq_last_error_message();
        const std::string at = std::string(isa_name(isa)) + " " + std::to_string(c.m) + "x" + std::to_string(c.n) +
                               "x" + std::to_string(c.k) + " bs " + std::to_string(c.bs) + " v" + std::to_string(v);
        expect_f16_accurate(y, ref, y64, isa, kF32RelTol, at);
      }
    }
}

TEST(GemmF16, BackwardMatchesReferenceAndFloat64) {
  for (const Case& c : kCases)
    for (float beta : {0.0f, 1.0f, 0.5f}) {
      const BackwardProblem p(c.m, c.n, c.k, c.bs, beta);
      const auto& [q, dy, dx0, dx64] = p;
      auto ref = p.initial(beta);
      nq::gemm::quant4_gemm_backward_f16_ref(dy.data(), c.m, q.w, beta, ref.data());
      EXPECT_LT(rel_error(ref, dx64), kF16RelTol) << c.m << "x" << c.n << "x" << c.k;
      for (nq_isa isa : supported_isas()) {
        IsaScope cap(isa);
        auto dx = p.initial(beta);
        ASSERT_EQ(nq_quant4_gemm_backward(dy.data(), c.m, &q.w, NQ_COMPUTE_F16, beta, dx.data()), NQ_OK)
            << nq_last_error_message();
        const std::string at = std::string(isa_name(isa)) + " " + std::to_string(c.m) + "x" + std::to_string(c.n) +
                               "x" + std::to_string(c.k) + " bs " + std::to_string(c.bs) + " beta " +
                               std::to_string(beta);
        expect_f16_accurate(dx, ref, dx64, isa, kF32RelTol, at);
      }
    }
}

// Rows of activations at 1e4, 1e-4, 1e30 and 1e-30 (beyond fp16's range either way) and
// weights with absmax ~1e-6 (fp16-subnormal codes*absmax) keep the fp16 accuracy per row.
TEST(GemmF16, ScalingKeepsHugeAndTinyRowsAccurate) {
  const int64_t m = 12, n = 200, k = 320;
  const float row_scale[] = {1e4f, 1e-4f, 1e30f, 1e-30f, 1.0f, 3e4f};
  for (int32_t bs : {64, 32})
    for (float wscale : {1.0f, 1e-6f}) {
      const Q4 q = make_weight(n, k, bs, NQ_QUANT4_NF4, false, uint64_t(bs), wscale);
      auto x = randn(size_t(m * k), 5);
      auto dy = randn(size_t(m * n), 6);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t t = 0; t < k; ++t) x[size_t(i * k + t)] *= row_scale[i % 6];
        for (int64_t j = 0; j < n; ++j) dy[size_t(i * n + j)] *= row_scale[(i + 1) % 6];
      }
      const auto y64 = forward64(x, m, q, nullptr);
      const auto dx64 = backward64(dy, m, q, 0.0f, {});
      for (nq_isa isa : {NQ_ISA_SCALAR, NQ_ISA_AVX512_BF16}) {
        IsaScope cap(isa);
        auto y = poisoned(size_t(m * n));
        auto dx = poisoned(size_t(m * k));
        ASSERT_EQ(nq_quant4_gemm(x.data(), m, &q.w, nullptr, NQ_COMPUTE_F16, y.data()), NQ_OK);
        ASSERT_EQ(nq_quant4_gemm_backward(dy.data(), m, &q.w, NQ_COMPUTE_F16, 0.0f, dx.data()), NQ_OK);
        for (int64_t i = 0; i < m; ++i) {
          EXPECT_LT(row_rel_error(&y[size_t(i * n)], &y64[size_t(i * n)], n), kF16RelTol)
              << isa_name(isa) << " bs " << bs << " w " << wscale << " forward row " << i;
          EXPECT_LT(row_rel_error(&dx[size_t(i * k)], &dx64[size_t(i * k)], k), kF16RelTol)
              << isa_name(isa) << " bs " << bs << " w " << wscale << " backward row " << i;
        }
      }
    }
}

// A NaN or Inf in a row of X (dY) makes every output of that row non-finite; other rows are
// unaffected (scales are per row and chunk).
TEST(GemmF16, NonFiniteRowsPropagateOnlyToTheirRow) {
  check_nonfinite_rows(NQ_COMPUTE_F16, {NQ_ISA_SCALAR, NQ_ISA_AVX512_BF16}, [](float v) { return !std::isfinite(v); });
}

// The chunk rule: one block -> fp16 codes with absmax as scale; two blocks -> code*absmax
// scaled into (-1, 1) by a power of two, scale its inverse.
TEST(GemmF16, WeightChunkRule) {
  const Q4 q = make_weight(4, 96, 32, NQ_QUANT4_NF4, false, 11, 1e-5f);
  uint16_t v[64];
  const float one = nq::gemm::f16_weight_chunk(q.w, 0, 1, 32, v, 1);
  EXPECT_EQ(one, q.absmax[0]);
  const float two = nq::gemm::f16_weight_chunk(q.w, 0, 1, 64, v, 1);
  int e;
  EXPECT_EQ(std::frexp(two, &e), 0.5f);  // a power of two
  const float mx = std::max(std::fabs(q.absmax[0]), std::fabs(q.absmax[1]));
  EXPECT_GE(mx / two, 0.5f);
  EXPECT_LT(mx / two, 1.0f);
  for (int t = 0; t < 64; ++t) {
    _Float16 h;
    std::memcpy(&h, &v[t], 2);
    EXPECT_NEAR(double(h) * two, q.deq[size_t(t)], 1e-3 * mx) << t;
  }
}

// The SIMD A packer writes exactly the scalar chunk rule's values and inverse scales.
TEST(GemmF16, PackAMatchesScalarChunks) {
  if (!nq::cpu::use_avx512fp16()) GTEST_SKIP() << "no AVX-512 FP16";
  using namespace nq::gemm;
  for (int rows : {1, 5, 8})
    for (int64_t kc : {1, 63, 64, 130, 384}) {
      const int64_t ld = kc + 3;
      auto x = randn(size_t(rows * ld), uint64_t(rows * 1000 + kc));
      for (int r = 0; r < rows; ++r)
        for (int64_t t = 0; t < kc; ++t) x[size_t(r * ld + t)] *= float(r % 3 == 0 ? 1e4 : r % 3 == 1 ? 1e-4 : 1.0);
      const int64_t nch = (kc + 63) / 64;
      std::vector<uint8_t> panel(size_t(nch * kF16AChunkBytes), 0);
      pack_a_f16_avx512fp16(x.data(), ld, rows, kc, panel.data());
      for (int64_t c = 0; c < nch; ++c) {
        const uint8_t* ch = panel.data() + c * kF16AChunkBytes;
        for (int r = 0; r < rows; ++r) {
          uint16_t want[64] = {};
          const int len = int(std::min<int64_t>(64, kc - c * 64));
          const float inv = f16_act_chunk(x.data() + r * ld + c * 64, len, want, 1);
          float got_inv;
          std::memcpy(&got_inv, ch + kF16Mr * kF16ARowBytes + r * 4, 4);
          ASSERT_EQ(got_inv, inv) << rows << " " << kc << " chunk " << c << " row " << r;
          for (int t = 0; t < 64; ++t) {
            uint16_t got[2];  // the value in both halves of its 32-bit slot
            std::memcpy(got, ch + r * kF16ARowBytes + t * 4, 4);
            ASSERT_EQ(got[0], want[t]) << rows << " " << kc << " chunk " << c << " row " << r << " k " << t;
            ASSERT_EQ(got[1], want[t]) << rows << " " << kc << " chunk " << c << " row " << r << " k " << t;
          }
        }
      }
    }
}

// The SIMD backward 4-bit B packer writes exactly the scalar chunk rule's values and scales: groups of 32
// columns and of 16 (w.k or n0 % 32 == 16), a last group of 16, blocks of 32 and 4096, blocks straddling W rows
// (rows_aligned false), chunks inside one block (scale = absmax), double-quantized absmax, partial chunks.
TEST(GemmF16, PackBQuant4BackwardMatchesScalarChunks) {
  if (!nq::cpu::use_avx512fp16()) GTEST_SKIP() << "no AVX-512 FP16";
  using namespace nq::gemm;
  struct PackCase {
    int64_t n, k;
    int32_t bs;
    bool dq;
    int64_t k0, kc, n0, nc;
  };
  const PackCase cases[] = {{200, 768, 64, false, 64, 130, 96, 480}, {100, 336, 32, false, 0, 100, 0, 336},
                            {70, 208, 64, true, 3, 67, 16, 150},     {130, 4096, 4096, false, 0, 130, 0, 464},
                            {128, 64, 4096, false, 0, 128, 0, 64},   {64, 768, 32, true, 0, 64, 384, 384}};
  for (const PackCase& c : cases) {
    const Q4 q = make_weight(c.n, c.k, c.bs, NQ_QUANT4_NF4, c.dq, uint64_t(c.n + c.k));
    const int64_t nch = (c.kc + 63) / 64, panel_bytes = nch * kF16BChunkBytes;
    std::vector<uint8_t> out(size_t((c.nc + kF16Nr - 1) / kF16Nr * panel_bytes), 0);
    const int64_t done = pack_b_quant4_f16_bwd_avx512fp16(q.w, out.data(), panel_bytes, c.k0, c.kc, c.n0, c.nc);
    ASSERT_EQ(done, c.nc / 16 * 16);
    const std::string at = std::to_string(c.n) + "x" + std::to_string(c.k) + " bs " + std::to_string(c.bs);
    for (int64_t j = 0; j < done; ++j)
      for (int64_t ch = 0; ch < nch; ++ch) {
        const uint8_t* chunk = out.data() + (j / kF16Nr) * panel_bytes + ch * kF16BChunkBytes;
        const int len = int(std::min<int64_t>(64, c.kc - ch * 64));
        uint16_t want[64];
        const float scale = f16_weight_chunk(q.w, (c.k0 + ch * 64) * c.k + c.n0 + j, c.k, len, want, 1);
        float got_scale;
        std::memcpy(&got_scale, chunk + kF16BScaleOffset + (j % kF16Nr) * 4, 4);
        ASSERT_EQ(got_scale, scale) << at << " column " << j << " chunk " << ch;
        for (int t = 0; t < len; ++t) {
          uint16_t got;
          std::memcpy(&got, chunk + (t * kF16Nr + j % kF16Nr) * 2, 2);
          ASSERT_EQ(got, want[t]) << at << " column " << j << " chunk " << ch << " k " << t;
        }
      }
  }
}

TEST(GemmF16, ActivationShiftRule) {
  using nq::gemm::f16_act_shift;
  EXPECT_EQ(f16_act_shift(256.0f), 0);
  EXPECT_EQ(f16_act_shift(511.9f), 0);
  EXPECT_EQ(f16_act_shift(512.0f), -1);
  EXPECT_EQ(f16_act_shift(1.0f), 8);
  EXPECT_EQ(f16_act_shift(0.0f), 0);
  EXPECT_EQ(f16_act_shift(std::numeric_limits<float>::infinity()), 0);
  EXPECT_EQ(f16_act_shift(1e-40f), nq::gemm::kF16MaxShift);  // clamped: 2^120 stays a normal float
  EXPECT_EQ(f16_act_shift(3e38f), -119);  // largest float: 2^-119 still normal
}

TEST(GemmF16, ComputeTypeValidation) {
  const Q4 q = make_weight(8, 64, 64, NQ_QUANT4_NF4, false, 1);
  std::vector<float> x(8 * 64, 1.0f), y(64);
  nq_compute_type bad;
  const int four = 4;
  std::memcpy(&bad, &four, sizeof bad);
  EXPECT_EQ(nq_quant4_gemm(x.data(), 8, &q.w, nullptr, bad, y.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(message_mentions("compute"));
  // Only the 4-bit matmuls take F16.
  std::vector<int8_t> w8(64 * 8);
  std::vector<float> scb(8, 1.0f), dx(8 * 64);
  EXPECT_EQ(nq_int8_matmul_backward(y.data(), 8, 8, w8.data(), scb.data(), 64, NQ_COMPUTE_F16, 0.0f, dx.data()),
            NQ_ERR_INVALID_ARGUMENT);
}

TEST(GemmF16, FeatureBitImpliesAvx512) {
  uint32_t f = 0;
  ASSERT_EQ(nq_cpu_features_get(&f), NQ_OK);
  if (f & NQ_CPU_AVX512FP16) EXPECT_TRUE(f & NQ_CPU_AVX512BW);
  EXPECT_EQ(nq::cpu::use_avx512fp16(), has_fp16() && nq::cpu::use(NQ_ISA_AVX512_BF16));
}

}  // namespace
