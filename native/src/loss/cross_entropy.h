// Cross-entropy rows: internal API. The ABI layer (cross_entropy_api.cpp) validates the
// arguments; a path then turns each logit row into its NLL and its gradient in place.
#pragma once

#include <cstdint>

namespace nq::loss {

// Row (V) -> scale * (softmax(row) - onehot(t)) in place; returns -log softmax(row)[t], with the
// exponentials summed in double (a row sums ~50k terms). t in [0, V).
using RowFn = double (*)(float* row, int64_t v, int64_t t, float scale);

// Plain loops: max, e = expf(x - max), Σ e in double, e * float(scale / Σ): the definition the
// fast path is tested against.
double row_ref(float* row, int64_t v, int64_t t, float scale);

// The same passes with 16-lane vectors and the polynomial exp of cpu/exp_avx512.h.
double row_avx512(float* row, int64_t v, int64_t t, float scale);

// The first two passes on their own, for callers that see a row in pieces (the fused linear
// cross-entropy): the largest value of row[0, v), and row = exp(row - max) in place with Σ in double.
struct RowPasses {
  float (*max)(const float* row, int64_t v);
  double (*exp_sum)(float* row, int64_t v, float max);
};
extern const RowPasses kRowPassesRef, kRowPassesAvx512;

}  // namespace nq::loss
