// Blockwise 4-bit quantization: NF4 and FP4 tables, packing, dequantization to fp32 and bf16.
#include <algorithm>
#include <cmath>

#include "quant/quant.h"
#include "test_quant_util.h"

namespace {

// fp32 thresholds and x * (1 / absmax) may flip a pick against the exact double computation
// only within a few fp32 ulps of a threshold.
constexpr double kTieSlack = 1e-6;

std::vector<float> code_of(nq_quant4_type t) {
  std::vector<float> c(16);
  EXPECT_EQ(nq_quant4_code_get(t, c.data()), NQ_OK);
  return c;
}

TEST(Quant4Code, TablesMatchBitsandbytes) {
  const auto nf4 = code_of(NQ_QUANT4_NF4);
  const float want_nf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                              -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                              0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
                              0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                              0.7229568362236023f, 1.0f};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(nf4[i], want_nf4[i]) << i;
  // FP4: bnb get_4bit_type('fp4') = [0, 0.0625, 8, 12, 4, 6, 2, 3, -0, ...] / 12 (code 8 is -0).
  const auto fp4 = code_of(NQ_QUANT4_FP4);
  const double mag[8] = {0, 0.0625, 8, 12, 4, 6, 2, 3};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(fp4[i], float((i < 8 ? 1 : -1) * mag[i % 8] / 12.0)) << i;
  EXPECT_TRUE(std::signbit(fp4[8]));
  EXPECT_EQ(nq_quant4_code_get(static_cast<nq_quant4_type>(2), nullptr), NQ_ERR_INVALID_ARGUMENT);
}

TEST(Quant4Code, ThresholdsAreMidpoints) {
  // bnb's tree thresholds are the midpoints of adjacent values (sorted by magnitude for FP4).
  // NF4's are printed to 17 digits: within 2 fp32 ulps of the exact midpoint. FP4's are printed
  // to 6-8 digits (e.g. 0.583333f, 0.00260417f): within 1e-6 of it.
  for (auto type : {NQ_QUANT4_NF4, NQ_QUANT4_FP4}) {
    const nq::quant::Code4& t = nq::quant::code4(type);
    std::vector<float> sorted(t.code, t.code + (t.sign_magnitude ? 8 : 16));
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i + 1 < sorted.size(); ++i) {
      const double mid = (double(sorted[i]) + sorted[i + 1]) / 2;
      const double tol = t.sign_magnitude ? 1e-6 : 2 * std::ldexp(1.0, std::ilogb(mid) - 23);
      EXPECT_NEAR(t.pivot[i], mid, tol) << type << " " << i;
    }
  }
}

void quantize4(nq_isa isa, nq_quant4_type type, const std::vector<float>& x, int bs, uint8_t poison,
               std::vector<uint8_t>& p, std::vector<float>& a) {
  qt::IsaScope scope(isa);
  p.assign(x.size() / 2, poison);
  a = qt::nan_filled((x.size() + bs - 1) / bs);
  ASSERT_EQ(nq_quant4_quantize(type, x.data(), x.size(), bs, p.data(), a.data()), NQ_OK) << nq_last_error_message();
}

TEST(Quant4, EveryIsaIsByteIdenticalToReference) {
  for (auto type : {NQ_QUANT4_NF4, NQ_QUANT4_FP4}) {
    for (int bs : {32, 64, 128, 1024, 4096}) {
      for (int64_t n : {int64_t(bs), int64_t(5 * bs + 18), int64_t(1 << 18) + 2, int64_t(bs - 2), int64_t(2)}) {
        const auto x = qt::randn(n, 77 + bs + n, 0.7f);
        std::vector<uint8_t> p_ref, p;
        std::vector<float> a_ref, a;
        quantize4(NQ_ISA_SCALAR, type, x, bs, 0x3c, p_ref, a_ref);
        std::vector<float> y_ref = qt::nan_filled(n);
        std::vector<uint16_t> h_ref(n, 0xffff);
        {
          qt::IsaScope scope(NQ_ISA_SCALAR);
          ASSERT_EQ(nq_quant4_dequantize(type, p_ref.data(), a_ref.data(), n, bs, y_ref.data()), NQ_OK);
          ASSERT_EQ(nq_quant4_dequantize_bf16(type, p_ref.data(), a_ref.data(), n, bs, h_ref.data()), NQ_OK);
        }
        for (nq_isa isa : qt::isas()) {
          for (uint8_t poison : {uint8_t(0x00), uint8_t(0xff)}) {
            quantize4(isa, type, x, bs, poison, p, a);
            ASSERT_EQ(p, p_ref) << "isa=" << isa << " type=" << type << " bs=" << bs << " n=" << n;
            ASSERT_EQ(std::memcmp(a.data(), a_ref.data(), a.size() * 4), 0);
          }
          qt::IsaScope scope(isa);
          std::vector<float> y = qt::nan_filled(n);
          ASSERT_EQ(nq_quant4_dequantize(type, p_ref.data(), a_ref.data(), n, bs, y.data()), NQ_OK);
          ASSERT_EQ(std::memcmp(y.data(), y_ref.data(), n * 4), 0) << "isa=" << isa << " bs=" << bs << " n=" << n;
          for (uint16_t poison : {uint16_t(0x0000), uint16_t(0xffff)}) {
            std::vector<uint16_t> h(n, poison);
            ASSERT_EQ(nq_quant4_dequantize_bf16(type, p_ref.data(), a_ref.data(), n, bs, h.data()), NQ_OK);
            ASSERT_EQ(h, h_ref) << "isa=" << isa << " bs=" << bs << " n=" << n;
          }
        }
      }
    }
  }
}

// Nearest bf16 (round half to even) of v, computed from the two bf16 neighbours in double.
uint16_t bf16_nearest(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint32_t down = u & 0xffff0000u, up = down + 0x10000u;
  float fd, fu;
  std::memcpy(&fd, &down, 4);
  std::memcpy(&fu, &up, 4);
  const double dd = std::fabs(double(v) - fd), du = std::fabs(double(fu) - v);
  if (dd != du) return uint16_t((dd < du ? down : up) >> 16);
  return uint16_t(((down >> 16) & 1) ? up >> 16 : down >> 16);
}

TEST(Quant4, MatchesDoublePrecisionNearestCode) {
  for (auto type : {NQ_QUANT4_NF4, NQ_QUANT4_FP4}) {
    const auto code = code_of(type);
    const int bs = 64;
    const int64_t n = 20000;
    const auto x = qt::randn(n, 99 + type, 1.3f);
    for (nq_isa isa : qt::isas()) {
      std::vector<uint8_t> p;
      std::vector<float> a;
      quantize4(isa, type, x, bs, 0, p, a);
      qt::IsaScope scope(isa);
      std::vector<float> y = qt::nan_filled(n);
      std::vector<uint16_t> h(n);
      ASSERT_EQ(nq_quant4_dequantize(type, p.data(), a.data(), n, bs, y.data()), NQ_OK);
      ASSERT_EQ(nq_quant4_dequantize_bf16(type, p.data(), a.data(), n, bs, h.data()), NQ_OK);
      for (int64_t i = 0; i < n; ++i) {
        const int c = (i % 2 == 0) ? p[i / 2] >> 4 : p[i / 2] & 15;  // first element: high nibble
        const double v = double(x[i]) / a[i / bs];
        double best = 1e30;
        for (float cv : code) best = std::min(best, std::fabs(double(cv) - v));
        ASSERT_LE(std::fabs(double(code[c]) - v), best + kTieSlack) << "i=" << i << " isa=" << isa;
        if (type == NQ_QUANT4_FP4 && c != 0 && c != 8) ASSERT_EQ(c >= 8, x[i] < 0) << "FP4 sign bit, i=" << i;
        const float want = float(double(code[c]) * a[i / bs]);
        ASSERT_EQ(y[i], want) << i;
        ASSERT_EQ(h[i], bf16_nearest(want)) << i;
      }
    }
  }
}

TEST(Quant4, CodeValuesRoundTripExactly) {
  for (auto type : {NQ_QUANT4_NF4, NQ_QUANT4_FP4}) {
    const auto code = code_of(type);
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = code[i % 16] * 8.0f;  // power of two: x / absmax is exact
    for (nq_isa isa : qt::isas()) {
      std::vector<uint8_t> p;
      std::vector<float> a;
      quantize4(isa, type, x, 32, 0x77, p, a);
      ASSERT_EQ(a[0], 8.0f);
      for (int i = 0; i < 32; ++i) {
        const int c = (i % 2 == 0) ? p[i / 2] >> 4 : p[i / 2] & 15;
        // -0 (FP4 code 8) has no sign to detect (bnb tests x < 0): it quantizes to +0, code 0.
        const int want = (type == NQ_QUANT4_FP4 && i % 16 == 8) ? 0 : i % 16;
        ASSERT_EQ(c, want) << "isa=" << isa << " type=" << type << " i=" << i;
      }
    }
  }
}

TEST(Quant4, BitsandbytesErrorThresholds) {
  // bnb test_4bit_quant: mean |error| of randn(1024, 1024) per blocksize, asserted there as
  // err < expected + 1e-3; we hold the same band on both sides (our codes equal bnb's).
  struct Case { nq_quant4_type type; int bs; double err; };
  const Case cases[] = {{NQ_QUANT4_NF4, 64, 0.072792},  {NQ_QUANT4_NF4, 128, 0.076835},
                        {NQ_QUANT4_NF4, 256, 0.080326}, {NQ_QUANT4_FP4, 64, 0.096545},
                        {NQ_QUANT4_FP4, 128, 0.102947}, {NQ_QUANT4_FP4, 256, 0.108685}};
  constexpr double kBand = 1e-3;
  const int64_t n = 1024 * 1024;
  const auto x = qt::randn(n, 2024);
  for (const Case& c : cases) {
    std::vector<uint8_t> p;
    std::vector<float> a;
    quantize4(NQ_ISA_AVX512_BF16, c.type, x, c.bs, 0, p, a);
    std::vector<float> y(n);
    ASSERT_EQ(nq_quant4_dequantize(c.type, p.data(), a.data(), n, c.bs, y.data()), NQ_OK);
    nq_error_stats st{};
    ASSERT_EQ(nq_error_stats_compute(x.data(), y.data(), n, &st), NQ_OK);
    EXPECT_NEAR(st.mean_abs_error, c.err, kBand) << "type=" << c.type << " bs=" << c.bs;
  }
}

TEST(Quant4, RejectsBadArguments) {
  auto x = qt::randn(256, 1);
  std::vector<uint8_t> p(128);
  std::vector<float> a(8), y(256);
  std::vector<uint16_t> h(256);
  EXPECT_EQ(nq_quant4_quantize(NQ_QUANT4_NF4, x.data(), 255, 32, p.data(), a.data()), NQ_ERR_SHAPE);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "even"));
  EXPECT_EQ(nq_quant4_quantize(static_cast<nq_quant4_type>(7), x.data(), 256, 32, p.data(), a.data()),
            NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'type'"));
  for (int bad : {16, 48, 8192}) {
    EXPECT_EQ(nq_quant4_quantize(NQ_QUANT4_NF4, x.data(), 256, bad, p.data(), a.data()), NQ_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "'blocksize'"));
  }
  EXPECT_EQ(nq_quant4_quantize(NQ_QUANT4_NF4, x.data(), -2, 32, p.data(), a.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_quant4_quantize(NQ_QUANT4_NF4, x.data(), 256, 32, nullptr, a.data()), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'packed'"));
  EXPECT_EQ(nq_quant4_quantize(NQ_QUANT4_NF4, x.data(), 256, 32, reinterpret_cast<uint8_t*>(x.data() + 100), a.data()),
            NQ_ERR_OVERLAP);
  EXPECT_EQ(nq_quant4_dequantize(NQ_QUANT4_NF4, p.data(), a.data(), 256, 32, reinterpret_cast<float*>(a.data())),
            NQ_ERR_OVERLAP);
  EXPECT_EQ(nq_quant4_dequantize_bf16(NQ_QUANT4_FP4, p.data(), a.data(), 256, 32, nullptr), NQ_ERR_NULL_POINTER);
  for (nq_isa isa : qt::isas()) {
    qt::IsaScope scope(isa);
    auto xn = x;
    xn[6 * 32 + 31] = NAN;
    EXPECT_EQ(nq_quant4_quantize(NQ_QUANT4_FP4, xn.data(), 256, 32, p.data(), a.data()), NQ_ERR_NON_FINITE);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "block 6")) << nq_last_error_message();
  }
  a.assign(8, 1.0f);
  a[2] = INFINITY;
  EXPECT_EQ(nq_quant4_dequantize_bf16(NQ_QUANT4_NF4, p.data(), a.data(), 256, 32, h.data()), NQ_ERR_NON_FINITE);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "block 2"));
}

}  // namespace
