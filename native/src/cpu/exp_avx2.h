// Vector e^x for AVX2 kernels (include only from *_avx2*.cpp files).
#pragma once

#include <immintrin.h>

#include "cpu/exp_cephes.h"

namespace nq::cpu {

// e^x: the cephes expf (cpu/exp_cephes.h) as exp_ps in cpu/exp_avx512.h, with 2^n built in the exponent bits. n is
// clamped to the normal range and x < ln(FLT_MIN) gives 0 (those results would be subnormal; absolute error
// < 1.2e-38); NaN stays NaN.
inline __m256 exp_ps(__m256 x) {
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(
          _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f))),
          _mm256_set1_epi32(127)),
      23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)),
                       _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365447505531f), _CMP_NLT_UQ));
}

}  // namespace nq::cpu
