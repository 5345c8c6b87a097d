// LayerNorm over rows of C: internal API. The ABI layer (layernorm_api.cpp) validates the
// arguments and splits the work over threads; each path provides three row/column kernels.
// Statistics in double (fp32 outputs match reference implementations to rounding), the
// backward's row sums in float (C terms).
#pragma once

#include <cstdint>

namespace nq::norm {

struct LayerNormKernels {
  // y (C) = (x - mean) * rstd * w + b with mean = Σx / C, var = Σ(x - mean)² / C (two passes, biased),
  // rstd = 1 / sqrt(var + eps); returns mean and rstd rounded to float (what the backward reads).
  void (*forward_row)(const float* x, int64_t c, const float* w, const float* b, float eps, float* y, float* mean,
                      float* rstd);
  // dx (C) += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, xhat = (x - mean) * rstd.
  void (*backward_row)(const float* x, const float* dy, int64_t c, const float* w, float mean, float rstd,
                       float* dx);
  // Columns [j0, j1) of dw += Σ_rows dy * xhat and db += Σ_rows dy (either may be NULL), rows in order.
  void (*backward_params)(const float* x, const float* dy, int64_t rows, int64_t c, const float* mean,
                          const float* rstd, int64_t j0, int64_t j1, float* dw, float* db);
};

extern const LayerNormKernels layernorm_ref;     // plain loops: the definition
extern const LayerNormKernels layernorm_avx512;  // 16-lane vectors, masked tails

}  // namespace nq::norm
