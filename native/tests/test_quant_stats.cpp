// nq_error_stats_compute against hand-computed values.
#include <cmath>

#include "test_quant_util.h"

namespace {

TEST(ErrorStats, HandComputedValues) {
  const float ref[4] = {1.0f, -2.0f, 3.0f, 0.5f};
  const float approx[4] = {1.5f, -2.0f, 2.0f, 0.5f};
  // errors 0.5, 0, -1 (3 - 2), 0 -> mean |e| = 1.5 / 4, rmse = sqrt(1.25 / 4), max 1,
  // snr = 10 log10((1 + 4 + 9 + 0.25) / 1.25) = 10 log10(11.4)
  nq_error_stats st{};
  ASSERT_EQ(nq_error_stats_compute(ref, approx, 4, &st), NQ_OK);
  EXPECT_DOUBLE_EQ(st.mean_abs_error, 0.375);
  EXPECT_DOUBLE_EQ(st.rmse, std::sqrt(0.3125));
  EXPECT_DOUBLE_EQ(st.max_abs_error, 1.0);
  EXPECT_DOUBLE_EQ(st.snr_db, 10.0 * std::log10(11.4));
}

TEST(ErrorStats, ExactIsInfiniteSnrAndBadInputsFail) {
  const float ref[3] = {1.0f, 2.0f, 3.0f};
  nq_error_stats st{};
  ASSERT_EQ(nq_error_stats_compute(ref, ref, 3, &st), NQ_OK);
  EXPECT_EQ(st.mean_abs_error, 0.0);
  EXPECT_TRUE(std::isinf(st.snr_db) && st.snr_db > 0);
  const float zero[3] = {0, 0, 0};
  ASSERT_EQ(nq_error_stats_compute(zero, ref, 3, &st), NQ_OK);
  EXPECT_TRUE(std::isinf(st.snr_db) && st.snr_db < 0) << "all-zero reference with error";
  EXPECT_EQ(nq_error_stats_compute(ref, ref, 0, &st), NQ_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(nq_error_stats_compute(ref, nullptr, 3, &st), NQ_ERR_NULL_POINTER);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "'approx'"));
  const float bad[3] = {1.0f, NAN, 3.0f};
  EXPECT_EQ(nq_error_stats_compute(ref, bad, 3, &st), NQ_ERR_NON_FINITE);
  EXPECT_TRUE(qt::contains(nq_last_error_message(), "element 1"));
}

}  // namespace
