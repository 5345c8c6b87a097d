// AVX-512 GELU: 16 floats per vector, masked tails (the same operations as the scalar reference).
#include <immintrin.h>

#include "activation/gelu_kernel.h"

namespace nq::activation {
namespace {

struct Avx512 {
  using F = __m512;
  using M = __mmask16;
  static constexpr int64_t kWidth = 16;
  static __mmask16 tail_mask(int64_t n) { return __mmask16((1u << n) - 1); }
  static F set1(float a) { return _mm512_set1_ps(a); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F load_tail(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
  static void store_tail(float* p, F v, int64_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F neg_abs(F a) { return _mm512_or_ps(a, _mm512_set1_ps(-0.0f)); }
  static F round(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static M less(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static F select(M m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }
  static F ldexp_flush(F p, F k) {  // lanes below 2^-125 are not computed (no denormal, no assist)
    return _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(k, _mm512_set1_ps(-125.0f), _CMP_NLT_UQ), p, k);
  }
};

}  // namespace

void gelu_forward_avx512(const float* x, int64_t n, float* y) { forward_loop<Avx512>(x, n, y); }

void gelu_backward_avx512(const float* x, const float* g, int64_t n, float beta, float* dx) {
  backward_dispatch<Avx512>(x, g, n, beta, dx);
}

}  // namespace nq::activation
