// Double quantization of 4-bit absmax (bitsandbytes' compress_statistics).
#include <cmath>

#include "test_quant_util.h"

namespace {

std::vector<float> signed_map() {
  std::vector<float> code(256);
  EXPECT_EQ(nq_dynamic_map_create(1, code.data()), NQ_OK);
  return code;
}

// absmax of NF4 blocks of randn data: positive values around 2.5.
std::vector<float> block_absmax(int64_t blocks, uint32_t seed) {
  auto a = qt::randu(blocks, seed, 1.5f, 4.0f);
  return a;
}

TEST(DoubleQuant, MatchesBlockwise8OfShiftedValuesOnEveryIsa) {
  const auto code = signed_map();
  for (int64_t blocks : {int64_t(1), int64_t(255), int64_t(4096 + 77), int64_t(1) << 17}) {
    const auto a = block_absmax(blocks, 11 + blocks);
    double sum = 0;
    for (float v : a) sum += v;
    const float offset_expected = float(sum / double(blocks));
    // Independent path: subtract in fp32 as bnb does (absmax - offset), then blockwise8.
    std::vector<float> shifted(blocks);
    for (int64_t i = 0; i < blocks; ++i) shifted[i] = a[i] - offset_expected;
    const int64_t nested = (blocks + 255) / 256;
    std::vector<uint8_t> q_ind(blocks);
    std::vector<float> na_ind(nested);
    ASSERT_EQ(nq_blockwise8_quantize(shifted.data(), blocks, 256, code.data(), q_ind.data(), na_ind.data()), NQ_OK);
    for (nq_isa isa : qt::isas()) {
      qt::IsaScope scope(isa);
      std::vector<uint8_t> q(blocks, 0xee);
      std::vector<float> na = qt::nan_filled(nested), back = qt::nan_filled(blocks);
      float offset = NAN;
      ASSERT_EQ(nq_absmax_compress(a.data(), blocks, 256, code.data(), q.data(), na.data(), &offset), NQ_OK)
          << nq_last_error_message();
      EXPECT_EQ(offset, offset_expected);
      ASSERT_EQ(q, q_ind) << "isa=" << isa;
      ASSERT_EQ(std::memcmp(na.data(), na_ind.data(), nested * 4), 0);
      ASSERT_EQ(nq_absmax_decompress(q.data(), na.data(), offset, blocks, 256, code.data(), back.data()), NQ_OK);
      for (int64_t i = 0; i < blocks; ++i) {
        // exact fp32 formula: code[q] * nested_absmax + offset
        ASSERT_EQ(back[i], code[q[i]] * na[i / 256] + offset) << i;
        // the signed dynamic map's largest step (just below |1|) is 0.014 of the nested absmax
        // (<= 2.5 here): half a step bounds the round-trip error.
        ASSERT_LE(std::fabs(double(back[i]) - a[i]), 0.5 * 0.0141 * na[i / 256] + 1e-6) << i;
      }
    }
  }
}

TEST(DoubleQuant, RejectsBadArguments) {
  const auto code = signed_map();
  auto a = block_absmax(300, 5);
  std::vector<uint8_t> q(300);
  std::vector<float> na(2), back(300);
  float off = 0;
  EXPECT_EQ(nq_absmax_compress(a.data(), 300, 256, code.data(), q.data(), na.data(), nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "out_offset"));
  EXPECT_EQ(nq_absmax_compress(a.data(), 0, 256, code.data(), q.data(), na.data(), &off), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'blocks'"));
  EXPECT_EQ(nq_absmax_compress(a.data(), 300, 100, code.data(), q.data(), na.data(), &off), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "nested_blocksize"));
  EXPECT_EQ(nq_absmax_compress(a.data(), 300, 256, code.data(), q.data(), a.data() + 10, &off), NQ_ERR_OVERLAP);
  a[290] = INFINITY;
  EXPECT_EQ(nq_absmax_compress(a.data(), 300, 256, code.data(), q.data(), na.data(), &off), NQ_ERR_NON_FINITE);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "block 290"));
  EXPECT_EQ(nq_absmax_decompress(q.data(), na.data(), NAN, 300, 256, code.data(), back.data()), NQ_ERR_NON_FINITE);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "offset"));
  EXPECT_EQ(nq_absmax_decompress(q.data(), na.data(), 0.0f, 300, 256, code.data(), nullptr), NQ_ERR_NULL_POINTER);
}

}  // namespace
