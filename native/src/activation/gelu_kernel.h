// GELU loops shared by the scalar, AVX2 and AVX-512 paths (include only from gelu_ref.cpp, gelu_avx2.cpp
// and gelu_avx512.cpp: everything has internal linkage, so each ISA's translation unit keeps its own copy).
// One sequence of IEEE operations (explicit fma, no contraction) over a lane type V, so every path gives the
// same bits. V supplies:
//   V::F, V::M, V::kWidth                      lanes of float, a lane mask, lanes per vector
//   V::set1, V::load, V::store                 broadcast, kWidth-float load / store
//   V::load_tail(p, n), V::store_tail(p, v, n) the first n < kWidth lanes (others read as 0, not written)
//   V::add, V::mul, V::div, V::fma(a, b, c)    a b + c rounded once
//   V::max(a, b) = a > b ? a : b, V::min(a, b) = a < b ? a : b   (x86 order: a NaN in a gives b)
//   V::neg_abs(a) = -|a|, V::round(a)          nearest, ties to even
//   V::less(a, b) -> M, V::select(m, a, b) = m ? a : b
//   V::ldexp_flush(p, k) = k < -125 ? 0 : p 2^k   (integral k <= 0, p in [0.7, 1.5]: exact, never denormal)
#pragma once

#include <cstdint>

#include "activation/gelu.h"
#include "cpu/exp_cephes.h"

namespace nq::activation {
namespace {

// exp uses Cephes expf's constants (cpu/exp_cephes.h; |kf| <= 459 here), the polynomial Horner down to
// 1 + r (1 + r (1/2 + ...)).
using nq::cpu::kExpPoly;
using nq::cpu::kLn2Hi;
using nq::cpu::kLn2Lo;
using nq::cpu::kLog2e;
// Beyond |x| = 16 every result is saturated (s is exactly 0 or 1 from |x| ~ 10); clamping x there keeps
// x^2 and u' finite (u' = Inf would make 0 * Inf = NaN in the backward) and turns NaN into -16 (NaN still
// reaches the result through the unclamped x).
constexpr float kClamp = 16.0f;

template <class V>
struct Gelu {
  using F = typename V::F;

  // With 2u = 2 sqrt(2/pi) (x + a x^3) and e = exp(-|2u|) in (0, 1]: s = sigmoid(2u), q = 1 - s, each as
  // (1 or e) / (1 + e), so neither cancels; du2 = 2 u'(x) = 2 sqrt(2/pi) (1 + 3 a x^2). e is flushed to 0
  // below 2^-125 (no denormal, which would cost a microcode assist on Intel).
  static inline void sigmoid2u(F x, F& s, F& q, F& du2) {
    const F xc = V::min(V::max(x, V::set1(-kClamp)), V::set1(kClamp));
    const F x2 = V::mul(xc, xc);
    const F u2 = V::mul(V::mul(xc, V::fma(x2, V::set1(kGeluA), V::set1(1.0f))), V::set1(2.0f * kGeluC));
    const F z = V::neg_abs(u2);  // -|2u| <= 0
    const F kf = V::round(V::mul(z, V::set1(kLog2e)));
    F r = V::fma(kf, V::set1(-kLn2Hi), z);
    r = V::fma(kf, V::set1(-kLn2Lo), r);
    F p = V::set1(kExpPoly[0]);
    for (int i = 1; i < 6; ++i) p = V::fma(p, r, V::set1(kExpPoly[i]));
    p = V::fma(p, r, V::set1(1.0f));
    p = V::fma(p, r, V::set1(1.0f));
    const F zero = V::set1(0.0f), one = V::set1(1.0f);
    const F e = V::ldexp_flush(p, kf);
    const F d = V::div(one, V::add(one, e));
    const auto neg = V::less(u2, zero);
    const F ed = V::mul(e, d);
    s = V::select(neg, ed, d);
    q = V::select(neg, d, ed);
    du2 = V::fma(x2, V::set1(6.0f * kGeluA * kGeluC), V::set1(2.0f * kGeluC));
  }

  // gelu(x) = x sigmoid(2u)
  static inline F forward(F x) {
    F s, q, du2;
    sigmoid2u(x, s, q, du2);
    return V::mul(x, s);
  }

  // gelu'(x) = s + x s' = s + (x s) (q 2u'), as s' = 2u' s q
  static inline F derivative(F x) {
    F s, q, du2;
    sigmoid2u(x, s, q, du2);
    return V::fma(V::mul(x, s), V::mul(q, du2), s);
  }

  // dx (n) = g gelu'(x) [+ beta dx]
  template <bool kAccumulate>
  static inline F grad(F x, F g, F beta, F dx) {
    const F t = derivative(x);
    if constexpr (kAccumulate) return V::fma(g, t, V::mul(beta, dx));
    return V::mul(g, t);
  }
};

template <class V>
void forward_loop(const float* x, int64_t n, float* y) {
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth) V::store(y + i, Gelu<V>::forward(V::load(x + i)));
  if (i < n) V::store_tail(y + i, Gelu<V>::forward(V::load_tail(x + i, n - i)), n - i);
}

template <class V, bool kAccumulate>
void backward_loop(const float* x, const float* g, int64_t n, float beta, float* dx) {
  const typename V::F b = V::set1(beta), zero = V::set1(0.0f);
  int64_t i = 0;
  for (; i + V::kWidth <= n; i += V::kWidth)
    V::store(dx + i, Gelu<V>::template grad<kAccumulate>(V::load(x + i), V::load(g + i), b,
                                                          kAccumulate ? V::load(dx + i) : zero));
  if (i < n) {
    const int64_t m = n - i;
    V::store_tail(dx + i,
                  Gelu<V>::template grad<kAccumulate>(V::load_tail(x + i, m), V::load_tail(g + i, m), b,
                                                      kAccumulate ? V::load_tail(dx + i, m) : zero),
                  m);
  }
}

template <class V>
void backward_dispatch(const float* x, const float* g, int64_t n, float beta, float* dx) {
  if (beta == 0.0f)
    backward_loop<V, false>(x, g, n, beta, dx);
  else
    backward_loop<V, true>(x, g, n, beta, dx);
}

}  // namespace
}  // namespace nq::activation
