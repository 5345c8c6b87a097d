// Dynamic map, blockwise 8-bit quantization and double quantization of absmax.
#include <algorithm>
#include <cmath>
#include <memory>

#include "quant/quant.h"
#include "test_quant_util.h"

namespace {

// torch 1.13 (CPU) + bitsandbytes create_dynamic_map(signed) as fp32 bit patterns, generated
// offline: [struct.unpack('<I', struct.pack('<f', v))[0] for v in create_dynamic_map(True/False)].
const uint32_t kSignedMapBits[256] = {
0xbf7e3333u, 0xbf7a9999u, 0xbf770000u, 0xbf736666u, 0xbf6fccccu, 0xbf6c3333u, 0xbf68999au, 0xbf650000u,
0xbf616666u, 0xbf5dccccu, 0xbf5a3333u, 0xbf569999u, 0xbf530000u, 0xbf4f6666u, 0xbf4bccccu, 0xbf483333u,
0xbf44999au, 0xbf410000u, 0xbf3d6667u, 0xbf39cccdu, 0xbf363334u, 0xbf32999au, 0xbf2f0000u, 0xbf2b6667u,
0xbf27cccdu, 0xbf243333u, 0xbf20999au, 0xbf1d0000u, 0xbf196666u, 0xbf15cccdu, 0xbf123334u, 0xbf0e999au,
0xbf0b0000u, 0xbf076666u, 0xbf03cccdu, 0xbf003333u, 0xbef93334u, 0xbef20000u, 0xbeeaccccu, 0xbee3999au,
0xbedc6666u, 0xbed53332u, 0xbece0000u, 0xbec6ccccu, 0xbebf999au, 0xbeb86666u, 0xbeb13332u, 0xbeaa0000u,
0xbea2ccccu, 0xbe9b999au, 0xbe946666u, 0xbe8d3334u, 0xbe860000u, 0xbe7d999au, 0xbe6f3334u, 0xbe60cccdu,
0xbe526666u, 0xbe440000u, 0xbe359999u, 0xbe273333u, 0xbe18cccdu, 0xbe0a6666u, 0xbdf80000u, 0xbddb3334u,
0xbdc9eb85u, 0xbdc428f5u, 0xbdbe6667u, 0xbdb8a3d7u, 0xbdb2e148u, 0xbdad1eb8u, 0xbda75c28u, 0xbda1999au,
0xbd9bd70au, 0xbd96147bu, 0xbd9051ebu, 0xbd8a8f5du, 0xbd84cccdu, 0xbd7e147au, 0xbd728f5du, 0xbd670a3du,
0xbd5b851fu, 0xbd500000u, 0xbd447ae1u, 0xbd38f5c3u, 0xbd2d70a3u, 0xbd21eb85u, 0xbd166667u, 0xbd0ae147u,
0xbcfeb852u, 0xbce7ae13u, 0xbcd0a3d7u, 0xbcb9999au, 0xbca28f5cu, 0xbc8b851fu, 0xbc68f5c3u, 0xbc3ae148u,
0xbc1f3b64u, 0xbc160418u, 0xbc0ccccdu, 0xbc039581u, 0xbbf4bc6au, 0xbbe24dd3u, 0xbbcfdf3bu, 0xbbbd70a4u,
0xbbab020du, 0xbb989374u, 0xbb8624ddu, 0xbb676c8au, 0xbb428f5cu, 0xbb1db22du, 0xbaf1a9fcu, 0xbaa7ef9du,
0xba7765ffu, 0xba59e83eu, 0xba3c6a80u, 0xba1eecc1u, 0xba016f01u, 0xb9c7e283u, 0xb98ce705u, 0xb923d70bu,
0xb8ba1f4bu, 0xb88aefb3u, 0xb8378034u, 0xb7b24206u, 0xb70205ffu, 0xb65a1a94u, 0xb513a3b7u, 0x00000000u,
0x3513a3b7u, 0x365a1a94u, 0x370205ffu, 0x37b24206u, 0x38378034u, 0x388aefb3u, 0x38ba1f4bu, 0x3923d70bu,
0x398ce705u, 0x39c7e283u, 0x3a016f01u, 0x3a1eecc1u, 0x3a3c6a80u, 0x3a59e83eu, 0x3a7765ffu, 0x3aa7ef9du,
0x3af1a9fcu, 0x3b1db22du, 0x3b428f5cu, 0x3b676c8au, 0x3b8624ddu, 0x3b989374u, 0x3bab020du, 0x3bbd70a4u,
0x3bcfdf3bu, 0x3be24dd3u, 0x3bf4bc6au, 0x3c039581u, 0x3c0ccccdu, 0x3c160418u, 0x3c1f3b64u, 0x3c3ae148u,
0x3c68f5c3u, 0x3c8b851fu, 0x3ca28f5cu, 0x3cb9999au, 0x3cd0a3d7u, 0x3ce7ae13u, 0x3cfeb852u, 0x3d0ae147u,
0x3d166667u, 0x3d21eb85u, 0x3d2d70a3u, 0x3d38f5c3u, 0x3d447ae1u, 0x3d500000u, 0x3d5b851fu, 0x3d670a3du,
0x3d728f5du, 0x3d7e147au, 0x3d84cccdu, 0x3d8a8f5du, 0x3d9051ebu, 0x3d96147bu, 0x3d9bd70au, 0x3da1999au,
0x3da75c28u, 0x3dad1eb8u, 0x3db2e148u, 0x3db8a3d7u, 0x3dbe6667u, 0x3dc428f5u, 0x3dc9eb85u, 0x3ddb3334u,
0x3df80000u, 0x3e0a6666u, 0x3e18cccdu, 0x3e273333u, 0x3e359999u, 0x3e440000u, 0x3e526666u, 0x3e60cccdu,
0x3e6f3334u, 0x3e7d999au, 0x3e860000u, 0x3e8d3334u, 0x3e946666u, 0x3e9b999au, 0x3ea2ccccu, 0x3eaa0000u,
0x3eb13332u, 0x3eb86666u, 0x3ebf999au, 0x3ec6ccccu, 0x3ece0000u, 0x3ed53332u, 0x3edc6666u, 0x3ee3999au,
0x3eeaccccu, 0x3ef20000u, 0x3ef93334u, 0x3f003333u, 0x3f03cccdu, 0x3f076666u, 0x3f0b0000u, 0x3f0e999au,
0x3f123334u, 0x3f15cccdu, 0x3f196666u, 0x3f1d0000u, 0x3f20999au, 0x3f243333u, 0x3f27cccdu, 0x3f2b6667u,
0x3f2f0000u, 0x3f32999au, 0x3f363334u, 0x3f39cccdu, 0x3f3d6667u, 0x3f410000u, 0x3f44999au, 0x3f483333u,
0x3f4bccccu, 0x3f4f6666u, 0x3f530000u, 0x3f569999u, 0x3f5a3333u, 0x3f5dccccu, 0x3f616666u, 0x3f650000u,
0x3f68999au, 0x3f6c3333u, 0x3f6fccccu, 0x3f736666u, 0x3f770000u, 0x3f7a9999u, 0x3f7e3333u, 0x3f800000u
};
const uint32_t kUnsignedMapBits[256] = {
0x00000000u, 0x34ae7baau, 0x35500998u, 0x360e9b38u, 0x3692ccf6u, 0x36de4c51u, 0x3714e5d5u, 0x3783126eu,
0x37e171a0u, 0x381fe868u, 0x384f1800u, 0x387e479au, 0x3896bb99u, 0x38ae5364u, 0x38c5eb31u, 0x3906594bu,
0x394154cau, 0x397c5048u, 0x399ba5e4u, 0x39b923a2u, 0x39d6a162u, 0x39f41f22u, 0x3a08ce71u, 0x3a178d50u,
0x3a264c30u, 0x3a350b10u, 0x3a43c9efu, 0x3a5288d0u, 0x3a6147afu, 0x3a70068eu, 0x3a7ec56eu, 0x3a958106u,
0x3aba5e35u, 0x3adf3b64u, 0x3b020c49u, 0x3b147ae1u, 0x3b26e978u, 0x3b39580fu, 0x3b4bc6a7u, 0x3b5e353eu,
0x3b70a3d7u, 0x3b818937u, 0x3b8ac082u, 0x3b93f7cfu, 0x3b9d2f1au, 0x3ba66666u, 0x3baf9db2u, 0x3bb8d4fdu,
0x3bc20c4au, 0x3bcb4394u, 0x3bd47ae1u, 0x3bddb22eu, 0x3be6e978u, 0x3bf020c5u, 0x3bf9580fu, 0x3c0147aeu,
0x3c05e353u, 0x3c0a7ef9u, 0x3c0f1aa0u, 0x3c13b645u, 0x3c1851ebu, 0x3c1ced90u, 0x3c218937u, 0x3c2f5c2au,
0x3c466667u, 0x3c5d70a3u, 0x3c747ae2u, 0x3c85c28fu, 0x3c9147aeu, 0x3c9ccccdu, 0x3ca851ebu, 0x3cb3d70bu,
0x3cbf5c2au, 0x3ccae148u, 0x3cd66667u, 0x3ce1eb87u, 0x3ced70a3u, 0x3cf8f5c3u, 0x3d023d70u, 0x3d080000u,
0x3d0dc28fu, 0x3d13851fu, 0x3d1947afu, 0x3d1f0a3du, 0x3d24cccdu, 0x3d2a8f5bu, 0x3d3051ebu, 0x3d36147bu,
0x3d3bd70au, 0x3d41999au, 0x3d475c2au, 0x3d4d1eb8u, 0x3d52e148u, 0x3d58a3d7u, 0x3d5e6667u, 0x3d6428f7u,
0x3d69eb87u, 0x3d6fae15u, 0x3d7570a3u, 0x3d7b3333u, 0x3d807ae2u, 0x3d835c29u, 0x3d863d71u, 0x3d891eb9u,
0x3d8c0000u, 0x3d8ee148u, 0x3d91c290u, 0x3d94a3d7u, 0x3d97851fu, 0x3d9a6667u, 0x3d9d47afu, 0x3da028f6u,
0x3da30a3du, 0x3da5eb85u, 0x3da8cccdu, 0x3dabae14u, 0x3dae8f5cu, 0x3db170a3u, 0x3db451ebu, 0x3db73333u,
0x3dba147bu, 0x3dbcf5c3u, 0x3dbfd70au, 0x3dc2b852u, 0x3dc5999au, 0x3dc87ae1u, 0x3dcb5c29u, 0x3dd40000u,
0x3de26666u, 0x3df0cccdu, 0x3dff3333u, 0x3e06ccccu, 0x3e0e0000u, 0x3e153334u, 0x3e1c6666u, 0x3e23999au,
0x3e2accccu, 0x3e320000u, 0x3e393334u, 0x3e406666u, 0x3e47999au, 0x3e4eccccu, 0x3e560000u, 0x3e5d3334u,
0x3e646666u, 0x3e6b999au, 0x3e72ccceu, 0x3e7a0000u, 0x3e80999au, 0x3e843333u, 0x3e87cccdu, 0x3e8b6667u,
0x3e8f0000u, 0x3e92999au, 0x3e963334u, 0x3e99cccdu, 0x3e9d6667u, 0x3ea10000u, 0x3ea4999au, 0x3ea83333u,
0x3eabccccu, 0x3eaf6666u, 0x3eb30000u, 0x3eb69999u, 0x3eba3333u, 0x3ebdccccu, 0x3ec16666u, 0x3ec50000u,
0x3ec8999au, 0x3ecc3333u, 0x3ecfccccu, 0x3ed36666u, 0x3ed70000u, 0x3eda9999u, 0x3ede3333u, 0x3ee1cccdu,
0x3ee56666u, 0x3ee90000u, 0x3eec999au, 0x3ef03333u, 0x3ef3cccdu, 0x3ef76666u, 0x3efb0000u, 0x3efe9999u,
0x3f01199au, 0x3f02e666u, 0x3f04b332u, 0x3f068000u, 0x3f084cccu, 0x3f0a199au, 0x3f0be666u, 0x3f0db334u,
0x3f0f8000u, 0x3f114ccdu, 0x3f13199au, 0x3f14e666u, 0x3f16b334u, 0x3f188000u, 0x3f1a4ccdu, 0x3f1c199au,
0x3f1de666u, 0x3f1fb333u, 0x3f218000u, 0x3f234cccu, 0x3f25199au, 0x3f26e666u, 0x3f28b334u, 0x3f2a8000u,
0x3f2c4cceu, 0x3f2e199au, 0x3f2fe666u, 0x3f31b334u, 0x3f338000u, 0x3f354cceu, 0x3f37199au, 0x3f38e666u,
0x3f3ab334u, 0x3f3c8000u, 0x3f3e4cccu, 0x3f40199au, 0x3f41e666u, 0x3f43b334u, 0x3f458000u, 0x3f474cccu,
0x3f49199au, 0x3f4ae666u, 0x3f4cb332u, 0x3f4e8000u, 0x3f504cccu, 0x3f52199au, 0x3f53e666u, 0x3f55b334u,
0x3f578000u, 0x3f594ccdu, 0x3f5b199au, 0x3f5ce666u, 0x3f5eb334u, 0x3f608000u, 0x3f624ccdu, 0x3f64199au,
0x3f65e666u, 0x3f67b333u, 0x3f698000u, 0x3f6b4cccu, 0x3f6d199au, 0x3f6ee666u, 0x3f70b334u, 0x3f728000u,
0x3f744cceu, 0x3f76199au, 0x3f77e666u, 0x3f79b334u, 0x3f7b8000u, 0x3f7d4cceu, 0x3f7f199au, 0x3f800000u
};

// Nearest-code decisions use fp32 midpoints and x * (1 / absmax) in fp32, so against an exact
// double computation a pick may differ only when v is within a few fp32 ulps of a midpoint.
constexpr double kTieSlack = 1e-6;

std::vector<float> dynamic_map(bool is_signed) {
  std::vector<float> code(256);
  EXPECT_EQ(nq_dynamic_map_create(is_signed ? 1 : 0, code.data()), NQ_OK);
  return code;
}

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(DynamicMap, MatchesBitsandbytesBitForBit) {
  for (int s = 0; s < 2; ++s) {
    const auto code = dynamic_map(s == 1);
    const uint32_t* want = s ? kSignedMapBits : kUnsignedMapBits;
    for (int i = 0; i < 256; ++i) EXPECT_EQ(code[i], bits_to_float(want[i])) << "signed=" << s << " i=" << i;
  }
}

TEST(DynamicMap, Properties) {
  const auto sc = dynamic_map(true), uc = dynamic_map(false);
  EXPECT_TRUE(std::is_sorted(sc.begin(), sc.end()));
  EXPECT_TRUE(std::is_sorted(uc.begin(), uc.end()));
  EXPECT_EQ(std::adjacent_find(sc.begin(), sc.end()), sc.end()) << "codes are distinct";
  EXPECT_EQ(sc.back(), 1.0f);
  EXPECT_EQ(uc.back(), 1.0f);
  EXPECT_EQ(uc.front(), 0.0f);
  EXPECT_NE(std::find(sc.begin(), sc.end(), 0.0f), sc.end());
  // bnb's signed map has no -1: its most negative code is -(0.9859375 + 1) / 2 = -0.99296875.
  EXPECT_EQ(sc.front(), -0.99296874f);
  EXPECT_EQ(sc[254], 0.99296874f);
  EXPECT_EQ(nq_dynamic_map_create(2, nullptr), NQ_ERR_NULL_POINTER);
  float c[256];
  EXPECT_EQ(nq_dynamic_map_create(2, c), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "is_signed"));
}

// Quantize under `isa`; q is pre-filled with `poison` so unwritten bytes show up.
void quantize8(nq_isa isa, const std::vector<float>& x, int bs, const std::vector<float>& code, uint8_t poison,
               std::vector<uint8_t>& q, std::vector<float>& absmax) {
  qt::IsaScope scope(isa);
  q.assign(x.size(), poison);
  absmax = qt::nan_filled((x.size() + bs - 1) / bs);
  ASSERT_EQ(nq_blockwise8_quantize(x.data(), x.size(), bs, code.data(), q.data(), absmax.data()), NQ_OK)
      << nq_last_error_message();
}

TEST(Blockwise8, EveryIsaIsByteIdenticalToReference) {
  const auto code = dynamic_map(true);
  for (int bs : {64, 128, 256, 1024, 4096}) {
    for (int64_t n : {int64_t(bs), int64_t(3 * bs + 17), int64_t(1 << 18) + 5, int64_t(bs - 1)}) {
      const auto x = qt::randn(n, 1000 + bs + n, 2.5f);
      std::vector<uint8_t> q_ref, q;
      std::vector<float> a_ref, a;
      quantize8(NQ_ISA_SCALAR, x, bs, code, 0xa5, q_ref, a_ref);
      for (nq_isa isa : qt::isas()) {
        for (uint8_t poison : {uint8_t(0x00), uint8_t(0xff)}) {  // two poisons: every byte written
          quantize8(isa, x, bs, code, poison, q, a);
          ASSERT_EQ(q, q_ref) << "isa=" << isa << " bs=" << bs << " n=" << n;
          ASSERT_EQ(std::memcmp(a.data(), a_ref.data(), a.size() * 4), 0) << "isa=" << isa;
        }
        std::vector<float> y = qt::nan_filled(n), y_ref = qt::nan_filled(n);
        {
          qt::IsaScope scope(NQ_ISA_SCALAR);
          ASSERT_EQ(nq_blockwise8_dequantize(q_ref.data(), a_ref.data(), n, bs, code.data(), y_ref.data()), NQ_OK);
        }
        qt::IsaScope scope(isa);
        ASSERT_EQ(nq_blockwise8_dequantize(q_ref.data(), a_ref.data(), n, bs, code.data(), y.data()), NQ_OK);
        ASSERT_EQ(std::memcmp(y.data(), y_ref.data(), n * 4), 0) << "isa=" << isa << " bs=" << bs;
      }
    }
  }
}

TEST(Blockwise8, DynamicMapsFitTheBucketTable) {
  // The AVX-512 path searches large inputs with one gather when the code fits Code8's bucket
  // table: both of bnb's maps must, or quantization falls back to the slower midpoint search.
  for (int s = 0; s < 2; ++s) {
    const auto code = dynamic_map(s == 1);
    auto t = std::make_unique<nq::quant::Code8>();
    nq::quant::code8_init(code.data(), t.get());
    EXPECT_TRUE(nq::quant::code8_buckets_init(t.get())) << "signed=" << s;
  }
}

TEST(Blockwise8, MatchesDoublePrecisionNearestCode) {
  // n below and above kCode8BucketMinElements: the midpoint search and the bucket search
  for (int64_t n : {nq::quant::kCode8BucketMinElements - 3, nq::quant::kCode8BucketMinElements + 40000}) {
    for (int s = 0; s < 2; ++s) {
      const auto code = dynamic_map(s == 1);
      const int bs = 256;
      const auto x = s ? qt::randn(n, 7, 0.3f) : qt::randu(n, 8, 0.0f, 5.0f);
      for (nq_isa isa : qt::isas()) {
        std::vector<uint8_t> q;
        std::vector<float> a;
        quantize8(isa, x, bs, code, 0, q, a);
        std::vector<float> y = qt::nan_filled(n);
        {
          qt::IsaScope scope(isa);
          ASSERT_EQ(nq_blockwise8_dequantize(q.data(), a.data(), n, bs, code.data(), y.data()), NQ_OK);
        }
        for (int64_t b = 0; b * bs < n; ++b) {
          double m = 0;
          for (int64_t i = b * bs; i < std::min<int64_t>(n, (b + 1) * bs); ++i)
            m = std::max(m, std::fabs(double(x[i])));
          ASSERT_EQ(double(a[b]), m) << "absmax is the exact max |x| of block " << b;
        }
        for (int64_t i = 0; i < n; ++i) {
          const double v = double(x[i]) / double(a[i / bs]);
          double best = 1e30;
          for (float c : code) best = std::min(best, std::fabs(double(c) - v));
          ASSERT_LE(std::fabs(double(code[q[i]]) - v), best + kTieSlack) << "i=" << i << " isa=" << isa;
          ASSERT_EQ(double(y[i]), double(float(double(code[q[i]]) * double(a[i / bs])))) << "dequant i=" << i;
        }
      }
    }
  }
}

TEST(Blockwise8, CodeValuesRoundTripExactly) {
  const auto code = dynamic_map(true);
  // Every code once per block (scaled by a power of two so x / absmax is exact), plus 1.0.
  const int bs = 256;
  std::vector<float> x(bs);
  for (int i = 0; i < bs; ++i) x[i] = code[i] * 4.0f;
  for (nq_isa isa : qt::isas()) {
    std::vector<uint8_t> q;
    std::vector<float> a;
    quantize8(isa, x, bs, code, 0x5a, q, a);
    ASSERT_EQ(a[0], 4.0f);
    for (int i = 0; i < bs; ++i) ASSERT_EQ(q[i], i) << "isa=" << isa;
  }
}

TEST(Blockwise8, BitsandbytesErrorThresholds) {
  // bnb test_dynamic_blockwise_quantization: randn(1024, 1024), blocksize 256, signed dynamic
  // map: mean |error| < 0.011 and mean relative error < 0.018 (we assert bnb's bounds); rand
  // (uniform [0, 1)): mean |error| < 0.0033 and every element within 1e-2.
  const auto code = dynamic_map(true);
  const int64_t n = 1024 * 1024;
  for (int dist = 0; dist < 2; ++dist) {
    const auto x = dist == 0 ? qt::randn(n, 42) : qt::randu(n, 43, 0.0f, 1.0f);
    std::vector<uint8_t> q;
    std::vector<float> a;
    quantize8(NQ_ISA_AVX512_BF16, x, 256, code, 0, q, a);
    std::vector<float> y(n);
    ASSERT_EQ(nq_blockwise8_dequantize(q.data(), a.data(), n, 256, code.data(), y.data()), NQ_OK);
    nq_error_stats st{};
    ASSERT_EQ(nq_error_stats_compute(x.data(), y.data(), n, &st), NQ_OK);
    if (dist == 0) {
      double rel = 0;
      for (int64_t i = 0; i < n; ++i) rel += std::fabs(double(x[i]) - y[i]) / std::fabs(double(x[i]) + 1e-8);
      EXPECT_LT(st.mean_abs_error, 0.011);
      EXPECT_LT(rel / n, 0.018);
    } else {
      EXPECT_LT(st.mean_abs_error, 0.0033);
      EXPECT_LT(st.max_abs_error, 1e-2);
    }
  }
}

TEST(Blockwise8, RejectsBadArguments) {
  const auto code = dynamic_map(true);
  auto x = qt::randn(1000, 3);
  std::vector<uint8_t> q(1000);
  std::vector<float> a(16), y(1000);
  EXPECT_EQ(nq_blockwise8_quantize(nullptr, 1000, 64, code.data(), q.data(), a.data()), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'x'"));
  EXPECT_EQ(nq_blockwise8_quantize(x.data(), 1000, 64, nullptr, q.data(), a.data()), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'code'"));
  EXPECT_EQ(nq_blockwise8_quantize(x.data(), 0, 64, code.data(), q.data(), a.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'n'"));
  for (int bad : {0, 32, 96, 8192, -64}) {
    EXPECT_EQ(nq_blockwise8_quantize(x.data(), 1000, bad, code.data(), q.data(), a.data()), NQ_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "'blocksize'"));
    EXPECT_EQ(nq_blockwise8_dequantize(q.data(), a.data(), 1000, bad, code.data(), y.data()), NQ_ERR_INVALID_ARGUMENT);
  }
  auto unsorted = code;
  std::swap(unsorted[10], unsorted[11]);
  EXPECT_EQ(nq_blockwise8_quantize(x.data(), 1000, 64, unsorted.data(), q.data(), a.data()), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "sorted"));
  auto nan_code = code;
  nan_code[7] = NAN;
  EXPECT_EQ(nq_blockwise8_quantize(x.data(), 1000, 64, nan_code.data(), q.data(), a.data()), NQ_ERR_NON_FINITE);
  // overlap: q inside x
  EXPECT_EQ(nq_blockwise8_quantize(x.data(), 1000, 64, code.data(), reinterpret_cast<uint8_t*>(x.data()) + 8, a.data()),
            NQ_ERR_OVERLAP);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "overlap"));
  EXPECT_EQ(nq_blockwise8_dequantize(q.data(), a.data(), 1000, 64, code.data(), reinterpret_cast<float*>(q.data())),
            NQ_ERR_OVERLAP);
  for (nq_isa isa : qt::isas()) {
    qt::IsaScope scope(isa);
    auto xn = x;
    xn[5 * 64 + 3] = (isa % 2) ? INFINITY : NAN;
    EXPECT_EQ(nq_blockwise8_quantize(xn.data(), 1000, 64, code.data(), q.data(), a.data()), NQ_ERR_NON_FINITE);
    EXPECT_TRUE(qt::contains(nq_last_error_message(), "block 5")) << nq_last_error_message();
  }
  a.assign(16, 1.0f);
  a[3] = NAN;
  EXPECT_EQ(nq_blockwise8_dequantize(q.data(), a.data(), 1000, 64, code.data(), y.data()), NQ_ERR_NON_FINITE);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "block 3"));
}

}  // namespace
