// Scalar reference LayerNorm kernels.
#include <cmath>

#include "norm/layernorm.h"

namespace nq::norm {

namespace {

void forward_row(const float* x, int64_t c, const float* w, const float* b, float eps, float* y, float* mean,
                 float* rstd) {
  double sum = 0.0;
  for (int64_t i = 0; i < c; ++i) sum += x[i];
  const double mu = sum / double(c);
  double sq = 0.0;
  for (int64_t i = 0; i < c; ++i) sq += (x[i] - mu) * (x[i] - mu);
  const float s = float(1.0 / std::sqrt(sq / double(c) + eps));
  const float m = float(mu);
  for (int64_t i = 0; i < c; ++i) y[i] = std::fma((x[i] - m) * s, w[i], b[i]);
  *mean = m;
  *rstd = s;
}

void backward_row(const float* x, const float* dy, int64_t c, const float* w, float mean, float rstd, float* dx) {
  float sum = 0.0f, dot = 0.0f;
  for (int64_t i = 0; i < c; ++i) {
    const float g = dy[i] * w[i];
    sum += g;
    dot = std::fma(g, (x[i] - mean) * rstd, dot);
  }
  const float m1 = sum / float(c), m2 = dot / float(c);
  for (int64_t i = 0; i < c; ++i) dx[i] = std::fma(dy[i] * w[i] - m1 - (x[i] - mean) * rstd * m2, rstd, dx[i]);
}

void backward_params(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean, const float* rstd,
                     int64_t j0, int64_t j1, float* dw, float* db) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      const float g = dy[r * c + j];
      if (db) db[j] += g;
      if (dw) dw[j] = std::fma(g, (x[r * c + j] - mean[r]) * rstd[r], dw[j]);
    }
}

}  // namespace

const LayerNormKernels layernorm_ref = {forward_row, backward_row, backward_params};

}  // namespace nq::norm
