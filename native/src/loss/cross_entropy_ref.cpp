// Scalar reference of one cross-entropy row.
#include <cmath>

#include "loss/cross_entropy.h"

namespace nq::loss {

namespace {

float row_max_ref(const float* row, int64_t v) {
  float max = row[0];
  for (int64_t i = 1; i < v; ++i) max = std::fmax(max, row[i]);
  return max;
}

double exp_sum_ref(float* row, int64_t v, float max) {
  double sum = 0.0;
  for (int64_t i = 0; i < v; ++i) {
    row[i] = std::exp(row[i] - max);
    sum += row[i];
  }
  return sum;
}

}  // namespace

const RowPasses kRowPassesRef{row_max_ref, exp_sum_ref};

double row_ref(float* row, int64_t v, int64_t t, float scale) {
  const float target = row[t];
  const float max = row_max_ref(row, v);
  const double sum = exp_sum_ref(row, v, max);
  const float k = float(double(scale) / sum);
  for (int64_t i = 0; i < v; ++i) row[i] *= k;
  row[t] -= scale;
  return double(max) + std::log(sum) - double(target);
}

}  // namespace nq::loss
