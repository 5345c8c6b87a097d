// AVX-512 optimizer kernels: the same float operations as optim_ref.cpp in the same
// order, 16 lanes at a time (no FMA, IEEE div/sqrt), so results are bit-identical.
// GCC 12 flags the intrinsics' own _mm512_undefined_* temporaries (GCC PR105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>

#include "optim/optim.h"
#include "quant/simd_avx512.h"

namespace nq::optim {

namespace {

inline __m512 abs_ps(__m512 x) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff))); }

// lr * sgn(t): +lr, -lr or lr * 0 (+0 for lr >= 0), as the reference's lr * sgn(t).
inline __m512 lr_sgn(__m512 lr, __m512 t) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 s = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, zero, _CMP_GT_OQ), zero, _mm512_set1_ps(1.0f));
  s = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), s, _mm512_set1_ps(-1.0f));
  return _mm512_mul_ps(lr, s);
}

using nq::quant::lanes16;
using nq::quant::Search8;

// s / absmax (0 for an all-zero block), then nearest code; with_sign applies the state1
// rule: a code whose sign differs from s moves one index towards s.
inline __m512i quantize(const Search8& search, int32_t negatives, bool with_sign, __m512 s, float absmax) {
  const __m512 x = absmax > 0.0f ? _mm512_div_ps(s, _mm512_set1_ps(absmax)) : _mm512_setzero_ps();
  __m512i q = search.index(x);
  if (with_sign) {
    const __mmask16 s_neg = _mm512_movepi32_mask(_mm512_castps_si512(s));
    const __mmask16 code_neg = _mm512_cmplt_epi32_mask(q, _mm512_set1_epi32(negatives));
    const __mmask16 wrong = s_neg ^ code_neg;
    const __mmask16 pos = _mm512_cmp_ps_mask(s, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __m512i one = _mm512_set1_epi32(1);
    q = _mm512_mask_add_epi32(q, wrong & pos, q, one);
    q = _mm512_mask_sub_epi32(q, wrong & ~pos, q, one);
  }
  return q;
}

inline __m512 dequantize(const float* code, const uint8_t* q, __mmask16 k, __m512 absmax) {
  const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, q));
  return _mm512_mul_ps(_mm512_i32gather_ps(idx, code, 4), absmax);
}

}  // namespace

void adamw32_avx512(const StepConsts& c, float* p, const float* g, float* m, float* v, int64_t n) {
  const __m512 gs = _mm512_set1_ps(c.gnorm_scale), b1 = _mm512_set1_ps(c.beta1), b2 = _mm512_set1_ps(c.beta2);
  const __m512 ob1 = _mm512_set1_ps(c.one_minus_beta1), ob2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 ss = _mm512_set1_ps(c.step_size), eh = _mm512_set1_ps(c.eps_hat), dc = _mm512_set1_ps(c.decay);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), gs);
    __m512 mi = _mm512_maskz_loadu_ps(k, m + i), vi = _mm512_maskz_loadu_ps(k, v + i);
    mi = _mm512_add_ps(_mm512_mul_ps(mi, b1), _mm512_mul_ps(ob1, gi));
    vi = _mm512_add_ps(_mm512_mul_ps(vi, b2), _mm512_mul_ps(_mm512_mul_ps(ob2, gi), gi));
    const __m512 upd = _mm512_mul_ps(ss, _mm512_div_ps(mi, _mm512_add_ps(_mm512_sqrt_ps(vi), eh)));
    const __m512 pi = _mm512_add_ps(_mm512_maskz_loadu_ps(k, p + i), upd);
    _mm512_mask_storeu_ps(p + i, k, _mm512_mul_ps(pi, dc));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
  }
}

void lion32_avx512(const StepConsts& c, float* p, const float* g, float* m, int64_t n) {
  const __m512 gs = _mm512_set1_ps(c.gnorm_scale), b1 = _mm512_set1_ps(c.beta1), b2 = _mm512_set1_ps(c.beta2);
  const __m512 ob1 = _mm512_set1_ps(c.one_minus_beta1), ob2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 lr = _mm512_set1_ps(c.lr), dc = _mm512_set1_ps(c.decay);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = lanes16(n - i);
    const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), gs);
    const __m512 mi = _mm512_maskz_loadu_ps(k, m + i);
    const __m512 pi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), dc);
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(mi, b1), _mm512_mul_ps(ob1, gi));
    _mm512_mask_storeu_ps(p + i, k, _mm512_sub_ps(pi, lr_sgn(lr, t)));
    _mm512_mask_storeu_ps(m + i, k, _mm512_add_ps(_mm512_mul_ps(mi, b2), _mm512_mul_ps(ob2, gi)));
  }
}

void adamw8_avx512(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1, uint8_t* q2,
                   float* absmax2, const Codebook& cb1, const Codebook& cb2, int64_t n) {
  const __m512 gs = _mm512_set1_ps(c.gnorm_scale), b1 = _mm512_set1_ps(c.beta1), b2 = _mm512_set1_ps(c.beta2);
  const __m512 ob1 = _mm512_set1_ps(c.one_minus_beta1), ob2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 ss = _mm512_set1_ps(c.step_size), eh = _mm512_set1_ps(c.eps_hat), dc = _mm512_set1_ps(c.decay);
  const Search8 s1(cb1.t), s2(cb2.t);
  alignas(64) float m[kBlock], v[kBlock];
  for (int64_t b0 = 0, blk = 0; b0 < n; b0 += kBlock, ++blk) {
    const int64_t len = std::min(kBlock, n - b0);
    const __m512 a1 = _mm512_set1_ps(absmax1[blk]), a2 = _mm512_set1_ps(absmax2[blk]);
    __m512 mx1 = _mm512_setzero_ps(), mx2 = _mm512_setzero_ps();
    for (int64_t j = 0; j < len; j += 16) {
      const __mmask16 k = lanes16(len - j);
      const int64_t i = b0 + j;
      const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), gs);
      __m512 mi = dequantize(cb1.t.code, q1 + i, k, a1), vi = dequantize(cb2.t.code, q2 + i, k, a2);
      mi = _mm512_maskz_mov_ps(k, _mm512_add_ps(_mm512_mul_ps(mi, b1), _mm512_mul_ps(ob1, gi)));
      vi = _mm512_maskz_mov_ps(k, _mm512_add_ps(_mm512_mul_ps(vi, b2), _mm512_mul_ps(_mm512_mul_ps(ob2, gi), gi)));
      _mm512_store_ps(m + j, mi);
      _mm512_store_ps(v + j, vi);
      mx1 = _mm512_max_ps(mx1, abs_ps(mi));
      mx2 = _mm512_max_ps(mx2, abs_ps(vi));
    }
    const float max1 = _mm512_reduce_max_ps(mx1), max2 = _mm512_reduce_max_ps(mx2);
    absmax1[blk] = max1;
    absmax2[blk] = max2;
    for (int64_t j = 0; j < len; j += 16) {
      const __mmask16 k = lanes16(len - j);
      const int64_t i = b0 + j;
      const __m512 mi = _mm512_load_ps(m + j), vi = _mm512_load_ps(v + j);
      const __m512 upd = _mm512_mul_ps(ss, _mm512_div_ps(mi, _mm512_add_ps(_mm512_sqrt_ps(vi), eh)));
      const __m512 pi = _mm512_add_ps(_mm512_maskz_loadu_ps(k, p + i), upd);
      _mm512_mask_storeu_ps(p + i, k, _mm512_mul_ps(pi, dc));
      _mm512_mask_cvtepi32_storeu_epi8(q1 + i, k, quantize(s1, cb1.negatives, true, mi, max1));
      _mm512_mask_cvtepi32_storeu_epi8(q2 + i, k, quantize(s2, cb2.negatives, false, vi, max2));
    }
  }
}

void lion8_avx512(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1,
                  const Codebook& cb1, int64_t n) {
  const __m512 gs = _mm512_set1_ps(c.gnorm_scale), b1 = _mm512_set1_ps(c.beta1), b2 = _mm512_set1_ps(c.beta2);
  const __m512 ob1 = _mm512_set1_ps(c.one_minus_beta1), ob2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 lr = _mm512_set1_ps(c.lr), dc = _mm512_set1_ps(c.decay);
  const Search8 s1(cb1.t);
  alignas(64) float m[kBlock];
  for (int64_t b0 = 0, blk = 0; b0 < n; b0 += kBlock, ++blk) {
    const int64_t len = std::min(kBlock, n - b0);
    const __m512 a1 = _mm512_set1_ps(absmax1[blk]);
    __m512 mx1 = _mm512_setzero_ps();
    for (int64_t j = 0; j < len; j += 16) {
      const __mmask16 k = lanes16(len - j);
      const int64_t i = b0 + j;
      const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), gs);
      const __m512 mi = dequantize(cb1.t.code, q1 + i, k, a1);
      const __m512 pi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), dc);
      const __m512 t = _mm512_add_ps(_mm512_mul_ps(mi, b1), _mm512_mul_ps(ob1, gi));
      _mm512_mask_storeu_ps(p + i, k, _mm512_sub_ps(pi, lr_sgn(lr, t)));
      const __m512 mn = _mm512_maskz_mov_ps(k, _mm512_add_ps(_mm512_mul_ps(mi, b2), _mm512_mul_ps(ob2, gi)));
      _mm512_store_ps(m + j, mn);
      mx1 = _mm512_max_ps(mx1, abs_ps(mn));
    }
    const float max1 = _mm512_reduce_max_ps(mx1);
    absmax1[blk] = max1;
    for (int64_t j = 0; j < len; j += 16) {
      const __mmask16 k = lanes16(len - j);
      _mm512_mask_cvtepi32_storeu_epi8(q1 + b0 + j, k, quantize(s1, cb1.negatives, true, _mm512_load_ps(m + j), max1));
    }
  }
}

}  // namespace nq::optim
