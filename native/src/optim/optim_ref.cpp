// Scalar reference optimizer kernels: the definition every SIMD path must match bit for
// bit (compiled with -ffp-contract=off, so each line is exactly the float ops written).
#include <algorithm>
#include <cmath>

#include "optim/optim.h"

namespace nq::optim {

namespace {

// bitsandbytes' sgn: -1, 0 or +1 (0 for NaN too).
inline float sgn(float x) { return static_cast<float>((0.0f < x) - (x < 0.0f)); }

inline uint8_t nearest(const Codebook& cb, float x) { return static_cast<uint8_t>(nq::quant::code8_index(cb.t, x)); }

// State1 keeps the sign of the fp32 value (bitsandbytes): step one code towards it.
inline uint8_t nearest_signed(const Codebook& cb, float s, float x) {
  int q = nearest(cb, x);
  if (std::signbit(cb.t.code[q]) != std::signbit(s)) q += s > 0.0f ? 1 : -1;
  return static_cast<uint8_t>(q);
}

// s / absmax, with an all-zero block mapping to 0 (bitsandbytes would divide 0 by 0).
inline float normalize(float s, float absmax) { return absmax > 0.0f ? s / absmax : 0.0f; }

}  // namespace

void adamw32_ref(const StepConsts& c, float* p, const float* g, float* m, float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * c.gnorm_scale;
    m[i] = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    v[i] = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    const float pi = p[i] + c.step_size * (m[i] / (std::sqrt(v[i]) + c.eps_hat));
    p[i] = pi * c.decay;
  }
}

void lion32_ref(const StepConsts& c, float* p, const float* g, float* m, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * c.gnorm_scale;
    const float pi = p[i] * c.decay;
    p[i] = pi - c.lr * sgn(m[i] * c.beta1 + c.one_minus_beta1 * gi);
    m[i] = m[i] * c.beta2 + c.one_minus_beta2 * gi;
  }
}

void adamw8_ref(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1, uint8_t* q2,
                float* absmax2, const Codebook& cb1, const Codebook& cb2, int64_t n) {
  float m[kBlock], v[kBlock];  // one block of fp32 state, never the whole tensor
  for (int64_t b0 = 0, blk = 0; b0 < n; b0 += kBlock, ++blk) {
    const int64_t len = std::min(kBlock, n - b0);
    float max1 = 0.0f, max2 = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = b0 + j;
      const float gi = g[i] * c.gnorm_scale;
      m[j] = cb1.t.code[q1[i]] * absmax1[blk];
      m[j] = m[j] * c.beta1 + c.one_minus_beta1 * gi;
      v[j] = cb2.t.code[q2[i]] * absmax2[blk];
      v[j] = v[j] * c.beta2 + c.one_minus_beta2 * gi * gi;
      max1 = std::max(max1, std::fabs(m[j]));
      max2 = std::max(max2, std::fabs(v[j]));
    }
    absmax1[blk] = max1;
    absmax2[blk] = max2;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = b0 + j;
      const float pi = p[i] + c.step_size * (m[j] / (std::sqrt(v[j]) + c.eps_hat));
      p[i] = pi * c.decay;
      q1[i] = nearest_signed(cb1, m[j], normalize(m[j], max1));
      q2[i] = nearest(cb2, normalize(v[j], max2));
    }
  }
}

void lion8_ref(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1,
               const Codebook& cb1, int64_t n) {
  float m[kBlock];
  for (int64_t b0 = 0, blk = 0; b0 < n; b0 += kBlock, ++blk) {
    const int64_t len = std::min(kBlock, n - b0);
    float max1 = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = b0 + j;
      const float gi = g[i] * c.gnorm_scale;
      const float mi = cb1.t.code[q1[i]] * absmax1[blk];
      const float pi = p[i] * c.decay;
      p[i] = pi - c.lr * sgn(mi * c.beta1 + c.one_minus_beta1 * gi);
      m[j] = mi * c.beta2 + c.one_minus_beta2 * gi;
      max1 = std::max(max1, std::fabs(m[j]));
    }
    absmax1[blk] = max1;
    for (int64_t j = 0; j < len; ++j) q1[b0 + j] = nearest_signed(cb1, m[j], normalize(m[j], max1));
  }
}

}  // namespace nq::optim
