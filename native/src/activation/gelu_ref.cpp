// Scalar GELU: the reference, one float per lane (NQ_ISA_SCALAR and tests).
#include <cmath>
#include <cstring>

#include "activation/gelu_kernel.h"

namespace nq::activation {
namespace {

struct Scalar {
  using F = float;
  using M = bool;
  static constexpr int64_t kWidth = 1;
  static F set1(float a) { return a; }
  static F load(const float* p) { return *p; }
  static void store(float* p, F v) { *p = v; }
  static F load_tail(const float*, int64_t) { return 0.0f; }  // never called: width 1 has no tail
  static void store_tail(float*, F, int64_t) {}
  static F add(F a, F b) { return a + b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }
  static F max(F a, F b) { return a > b ? a : b; }
  static F min(F a, F b) { return a < b ? a : b; }
  static F neg_abs(F a) { return -std::fabs(a); }
  static F round(F a) { return std::nearbyint(a); }
  static M less(F a, F b) { return a < b; }
  static F select(M m, F a, F b) { return m ? a : b; }
  static F ldexp_flush(F p, F k) {
    if (k < -125.0f) return 0.0f;
    const uint32_t bits = uint32_t(int32_t(k) + 127) << 23;  // 2^k
    float s;
    std::memcpy(&s, &bits, 4);
    return p * s;
  }
};

}  // namespace

void gelu_forward_ref(const float* x, int64_t n, float* y) { forward_loop<Scalar>(x, n, y); }

void gelu_backward_ref(const float* x, const float* g, int64_t n, float beta, float* dx) {
  backward_dispatch<Scalar>(x, g, n, beta, dx);
}

}  // namespace nq::activation
