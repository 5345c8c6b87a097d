// GELU ABI: argument checks, then the AVX-512, AVX2 or scalar path (all give the same bits) on the
// calling thread.
#include <cmath>
#include <cstdint>

#include "activation/gelu.h"
#include "core/error.h"
#include "core/overlap.h"
#include "cpu/cpu.h"

namespace {

using nq::activation::gelu_backward_avx2;
using nq::activation::gelu_backward_avx512;
using nq::activation::gelu_backward_ref;
using nq::activation::gelu_forward_avx2;
using nq::activation::gelu_forward_avx512;
using nq::activation::gelu_forward_ref;

// An output may be exactly an input (element-wise, in place) but not share only part of its n floats.
bool partial_overlap(const float* out, const float* in, int64_t n) {
  return out != in && nq::overlaps(out, uint64_t(n) * sizeof(float), in, uint64_t(n) * sizeof(float));
}

#define NQ_CHECK_N(fn, n)                                                                             \
  NQ_CHECK((n) > 0, NQ_ERR_INVALID_ARGUMENT, "%s: argument 'n' must be > 0, got %lld", fn, \
           static_cast<long long>(n))

#define NQ_CHECK_IN_PLACE(fn, out, in, n)                                                               \
  NQ_CHECK(!partial_overlap(out, in, n), NQ_ERR_OVERLAP,                                                \
           "%s: '%s' overlaps '%s' without being the same buffer (in place is allowed, partial overlap " \
           "is not)",                                                                                   \
           fn, #out, #in)

}  // namespace

NQ_API nq_status nq_gelu_forward(const float* x, int64_t n, float* y) {
  static constexpr const char* fn = "nq_gelu_forward";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, x);
    NQ_CHECK_NOT_NULL(fn, y);
    NQ_CHECK_N(fn, n);
    NQ_CHECK_IN_PLACE(fn, y, x, n);
    (nq::cpu::use(NQ_ISA_AVX512) ? gelu_forward_avx512
     : nq::cpu::use(NQ_ISA_AVX2) ? gelu_forward_avx2
                                 : gelu_forward_ref)(x, n, y);
    return NQ_OK;
  });
}

NQ_API nq_status nq_gelu_backward(const float* x, const float* g, int64_t n, float beta, float* dx) {
  static constexpr const char* fn = "nq_gelu_backward";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, x);
    NQ_CHECK_NOT_NULL(fn, g);
    NQ_CHECK_NOT_NULL(fn, dx);
    NQ_CHECK_N(fn, n);
    NQ_CHECK(std::isfinite(beta), NQ_ERR_INVALID_ARGUMENT, "%s: argument 'beta' must be finite, got %g", fn,
             double(beta));
    NQ_CHECK_IN_PLACE(fn, dx, x, n);
    NQ_CHECK_IN_PLACE(fn, dx, g, n);
    (nq::cpu::use(NQ_ISA_AVX512) ? gelu_backward_avx512
     : nq::cpu::use(NQ_ISA_AVX2) ? gelu_backward_avx2
                                 : gelu_backward_ref)(x, g, n, beta, dx);
    return NQ_OK;
  });
}
