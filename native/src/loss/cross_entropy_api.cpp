// Cross-entropy rows ABI: argument checks, then the AVX-512 path or the scalar reference, row by row
// on the calling thread (callers split rows over their threads).
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "cpu/cpu.h"
#include "loss/cross_entropy.h"

namespace nq::loss {

const RowPasses& row_passes() {
  return cpu::use(NQ_ISA_AVX512) ? kRowPassesAvx512 : cpu::use(NQ_ISA_AVX2) ? kRowPassesAvx2 : kRowPassesRef;
}

}  // namespace nq::loss

extern "C" {

NQ_API nq_status nq_cross_entropy_rows(float* logits, int64_t rows, int64_t v, const int32_t* targets,
                                       int32_t ignore_index, float scale, double* nll) {
  static constexpr const char* fn = "nq_cross_entropy_rows";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK(rows >= 0 && v >= 1, NQ_ERR_SHAPE, "%s: rows must be >= 0 and v >= 1, got %lld and %lld", fn,
             static_cast<long long>(rows), static_cast<long long>(v));
    if (rows == 0) return NQ_OK;
    NQ_CHECK_NOT_NULL(fn, logits);
    NQ_CHECK_NOT_NULL(fn, targets);
    NQ_CHECK_NOT_NULL(fn, nll);
    NQ_CHECK(std::isfinite(scale), NQ_ERR_INVALID_ARGUMENT, "%s: scale must be finite, got %g", fn, double(scale));
    for (int64_t r = 0; r < rows; ++r) {  // all checked before any row is touched
      const int32_t t = targets[r];
      NQ_CHECK(t == ignore_index || (t >= 0 && t < v), NQ_ERR_INVALID_ARGUMENT,
               "%s: target %d at row %lld is outside [0, %lld) and not ignore_index %d", fn, t,
               static_cast<long long>(r), static_cast<long long>(v), ignore_index);
    }
    const nq::loss::RowPasses& passes = nq::loss::row_passes();
    for (int64_t r = 0; r < rows; ++r) {
      float* row = logits + r * v;
      if (targets[r] == ignore_index) {
        std::memset(row, 0, size_t(v) * sizeof(float));
        nll[r] = 0.0;
      } else {
        nll[r] = nq::loss::row_grad(passes, row, v, targets[r], scale);
      }
    }
    return NQ_OK;
  });
}

}  // extern "C"
