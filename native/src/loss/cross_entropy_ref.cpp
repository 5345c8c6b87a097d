// Scalar reference of the cross-entropy row passes.
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

void scale_ref(float* row, int64_t v, float k) {
  for (int64_t i = 0; i < v; ++i) row[i] *= k;
}

}  // namespace

const RowPasses kRowPassesRef{row_max_ref, exp_sum_ref, scale_ref};

}  // namespace nq::loss
