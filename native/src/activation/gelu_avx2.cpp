// AVX2 GELU: 8 floats per vector (the same operations as the scalar reference).
#include <immintrin.h>

#include "activation/gelu_kernel.h"

namespace nq::activation {
namespace {

struct Avx2 {
  using F = __m256;
  using M = __m256;
  static constexpr int64_t kWidth = 8;
  static __m256i tail_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F set1(float a) { return _mm256_set1_ps(a); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F load_tail(const float* p, int64_t n) { return _mm256_maskload_ps(p, tail_mask(n)); }
  static void store_tail(float* p, F v, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F neg_abs(F a) { return _mm256_or_ps(a, _mm256_set1_ps(-0.0f)); }
  static F round(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static M less(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static F select(M m, F a, F b) { return _mm256_blendv_ps(b, a, m); }
  static F ldexp_flush(F p, F k) {  // 2^max(k, -125): flushed lanes compute no denormal either
    const F kc = _mm256_max_ps(k, _mm256_set1_ps(-125.0f));
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(kc), _mm256_set1_epi32(127));
    const F scaled = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
    return _mm256_andnot_ps(_mm256_cmp_ps(k, _mm256_set1_ps(-125.0f), _CMP_LT_OQ), scaled);
  }
};

}  // namespace

void gelu_forward_avx2(const float* x, int64_t n, float* y) { forward_loop<Avx2>(x, n, y); }

void gelu_backward_avx2(const float* x, const float* g, int64_t n, float beta, float* dx) {
  backward_dispatch<Avx2>(x, g, n, beta, dx);
}

}  // namespace nq::activation
