// Cross-entropy rows: internal API. The ABI layer (cross_entropy_api.cpp) validates the
// arguments; a path then turns each logit row into its NLL and its gradient in place.
#pragma once

#include <cmath>
#include <cstdint>

namespace nq::loss {

// The passes a row is made of, per ISA: the largest value of row[0, v); row = exp(row - max) in
// place with Σ in double (a row sums ~50k terms); row *= k. The fused linear cross-entropy runs the
// first two on pieces of a row.
struct RowPasses {
  float (*max)(const float* row, int64_t v);
  double (*exp_sum)(float* row, int64_t v, float max);
  void (*scale)(float* row, int64_t v, float k);
};
// Plain loops (expf): the definition the fast path is tested against.
extern const RowPasses kRowPassesRef;
// 16-lane vectors and the polynomial exp of cpu/exp_avx512.h.
extern const RowPasses kRowPassesAvx512;
// 8-lane vectors and the polynomial exp of cpu/exp_avx2.h.
extern const RowPasses kRowPassesAvx2;

// The passes of the active ISA.
const RowPasses& row_passes();

// Row (V) -> scale * (softmax(row) - onehot(t)) in place; returns -log softmax(row)[t]. t in [0, V).
inline double row_grad(const RowPasses& p, float* row, int64_t v, int64_t t, float scale) {
  const float target = row[t];
  const float max = p.max(row, v);
  const double sum = p.exp_sum(row, v, max);
  p.scale(row, v, float(double(scale) / sum));
  row[t] -= scale;
  return double(max) + std::log(sum) - double(target);
}

}  // namespace nq::loss
