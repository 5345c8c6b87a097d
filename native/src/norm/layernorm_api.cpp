// LayerNorm ABI: argument checks, then the AVX-512 or scalar kernels, rows (and the backward's
// parameter columns) split over OpenMP threads from kParallelElements elements on.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "cpu/cpu.h"
#include "norm/layernorm.h"

namespace {

// From this many elements on, all threads (the managed code's former cut-off): a (256, 768) forward +
// backward takes 285 us on one thread, 155 us on two (bench_rows, medians).
constexpr int64_t kParallelElements = int64_t(1) << 17;

const nq::norm::LayerNormKernels& kernels() {
  return nq::cpu::use(NQ_ISA_AVX512) ? nq::norm::layernorm_avx512 : nq::norm::layernorm_ref;
}

int threads_for(int64_t rows, int64_t c) { return rows * c >= kParallelElements ? nq::cpu::num_threads() : 1; }

nq_status check_sizes(const char* fn, int64_t rows, int64_t c) {
  NQ_CHECK(rows >= 0 && c >= 1, NQ_ERR_SHAPE, "%s: rows must be >= 0 and c >= 1, got %lld and %lld", fn,
           static_cast<long long>(rows), static_cast<long long>(c));
  return NQ_OK;
}

}  // namespace

extern "C" {

NQ_API nq_status nq_layernorm_forward(const float* x, int64_t rows, int64_t c, const float* weight,
                                      const float* bias, float eps, float* y, float* mean, float* rstd) {
  static constexpr const char* fn = "nq_layernorm_forward";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status st = check_sizes(fn, rows, c); st != NQ_OK) return st;
    NQ_CHECK(std::isfinite(eps) && eps >= 0.0f, NQ_ERR_INVALID_ARGUMENT, "%s: eps must be finite and >= 0, got %g",
             fn, double(eps));
    if (rows == 0) return NQ_OK;
    NQ_CHECK_NOT_NULL(fn, x);
    NQ_CHECK_NOT_NULL(fn, weight);
    NQ_CHECK_NOT_NULL(fn, bias);
    NQ_CHECK_NOT_NULL(fn, y);
    NQ_CHECK_NOT_NULL(fn, mean);
    NQ_CHECK_NOT_NULL(fn, rstd);
    const auto& k = kernels();
    const int nt = threads_for(rows, c);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t r = 0; r < rows; ++r) k.forward_row(x + r * c, c, weight, bias, eps, y + r * c, mean + r, rstd + r);
    return NQ_OK;
  });
}

NQ_API nq_status nq_layernorm_backward(const float* x, const float* dy, int64_t rows, int64_t c,
                                       const float* weight, const float* mean, const float* rstd, float* dx,
                                       float* dweight, float* dbias) {
  static constexpr const char* fn = "nq_layernorm_backward";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status st = check_sizes(fn, rows, c); st != NQ_OK) return st;
    if (rows == 0) return NQ_OK;
    NQ_CHECK_NOT_NULL(fn, x);
    NQ_CHECK_NOT_NULL(fn, dy);
    NQ_CHECK_NOT_NULL(fn, mean);
    NQ_CHECK_NOT_NULL(fn, rstd);
    NQ_CHECK(dx == nullptr || weight != nullptr, NQ_ERR_NULL_POINTER, "%s: argument 'weight' must not be NULL when dx is given", fn);
    const auto& k = kernels();
    const int nt = threads_for(rows, c);
    // Column strips of 16 for the parameter sums: each column adds its rows in order on one thread, so
    // results do not depend on the thread count.
    const int64_t strips = (dweight || dbias) ? (c + 15) / 16 : 0;
    const int64_t row_items = dx ? rows : 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
#pragma omp for schedule(static) nowait
      for (int64_t r = 0; r < row_items; ++r) k.backward_row(x + r * c, dy + r * c, c, weight, mean[r], rstd[r], dx + r * c);
#pragma omp for schedule(static)
      for (int64_t s = 0; s < strips; ++s)
        k.backward_params(x, dy, rows, c, mean, rstd, s * 16, std::min(c, s * 16 + 16), dweight, dbias);
    }
    return NQ_OK;
  });
}

}  // extern "C"
