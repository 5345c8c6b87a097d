// Vector e^x for AVX-512 kernels (include only from *_avx512*.cpp files).
#pragma once

#include <immintrin.h>

#include "cpu/exp_cephes.h"

namespace nq::cpu {

// e^x (cephes expf, cpu/exp_cephes.h: x = n ln2 + r, |r| <= ln2/2, 2^n by vscalefps, which
// also gives 0 for very negative x); max relative error 1.2e-7 (~1 ulp) against double exp, measured
// on every 7th float in [-87.25, 88.5]; below -87.3 results are subnormal (absolute error < 1e-38).
inline __m512 exp_ps(__m512 x) {
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

}  // namespace nq::cpu
