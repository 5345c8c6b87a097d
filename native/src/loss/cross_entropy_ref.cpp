// Scalar reference of one cross-entropy row.
#include <cmath>

#include "loss/cross_entropy.h"

namespace nq::loss {

double row_ref(float* row, int64_t v, int64_t t, float scale) {
  const float target = row[t];
  float max = row[0];
  for (int64_t i = 1; i < v; ++i) max = std::fmax(max, row[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < v; ++i) {
    row[i] = std::exp(row[i] - max);
    sum += row[i];
  }
  const float k = float(double(scale) / sum);
  for (int64_t i = 0; i < v; ++i) row[i] *= k;
  row[t] -= scale;
  return double(max) + std::log(sum) - double(target);
}

}  // namespace nq::loss
