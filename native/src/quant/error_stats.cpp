// Error of an approximation against a reference, accumulated in double precision.
#include <cmath>
#include <limits>

#include "quant/abi_util.h"
#include "quant/quant.h"

extern "C" {

NQ_API nq_status nq_error_stats_compute(const float* reference, const float* approx, int64_t n,
                                        nq_error_stats* out_stats) {
  constexpr const char* fn = "nq_error_stats_compute";
  NQ_CHECK_NOT_NULL(fn, reference);
  NQ_CHECK_NOT_NULL(fn, approx);
  NQ_CHECK_NOT_NULL(fn, out_stats);
  NQ_CHECK_POSITIVE(fn, n);
  // Serial on purpose: a fixed summation order makes the statistics reproducible bit for bit.
  double abs_sum = 0.0, sq_sum = 0.0, ref_sq = 0.0, max_abs = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    NQ_CHECK(nq::quant::abs_bits(reference[i]) < nq::quant::kNonFiniteBits &&
                 nq::quant::abs_bits(approx[i]) < nq::quant::kNonFiniteBits,
             NQ_ERR_NON_FINITE, "%s: element %lld of 'reference' or 'approx' is NaN or Inf", fn,
             static_cast<long long>(i));
    const double r = reference[i], e = r - static_cast<double>(approx[i]);
    abs_sum += std::fabs(e);
    sq_sum += e * e;
    ref_sq += r * r;
    max_abs = std::fabs(e) > max_abs ? std::fabs(e) : max_abs;
  }
  out_stats->mean_abs_error = abs_sum / static_cast<double>(n);
  out_stats->rmse = std::sqrt(sq_sum / static_cast<double>(n));
  out_stats->max_abs_error = max_abs;
  // exact -> +inf; an all-zero reference with any error -> -inf
  out_stats->snr_db = sq_sum == 0.0 ? std::numeric_limits<double>::infinity()
                                    : 10.0 * std::log10(ref_sq / sq_sum);
  return NQ_OK;
}

}  // extern "C"

static_assert(sizeof(nq_error_stats) == 32, "nq_error_stats is four doubles");
