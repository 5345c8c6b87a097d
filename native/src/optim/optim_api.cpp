// Optimizer ABI: argument checks, per-step constants, and the parallel driver that splits
// a tensor into block-aligned chunks (static schedule: each element's arithmetic is
// independent of the split, so any thread count gives the same bits).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "core/error.h"
#include "core/overlap.h"
#include "cpu/cpu.h"
#include "optim/optim.h"

static_assert(sizeof(nq_optimizer_params) == 32, "nq_optimizer_params is 32 bytes in the ABI");
static_assert(offsetof(nq_optimizer_params, gnorm_scale) == 20, "nq_optimizer_params layout");
static_assert(offsetof(nq_optimizer_params, step) == 24, "nq_optimizer_params layout");

namespace nq::optim {

namespace {

// 64 blocks per task: large enough to amortise scheduling, small enough to balance.
constexpr int64_t kChunk = 64 * kBlock;

template <class F>
void parallel_chunks(int64_t n, F&& body) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(nq::cpu::num_threads()) if (chunks > 1)
  for (int64_t ci = 0; ci < chunks; ++ci) {
    const int64_t i0 = ci * kChunk;
    body(i0, std::min(kChunk, n - i0));
  }
}

}  // namespace

StepConsts make_consts(const nq_optimizer_params& hp) {
  const double t = static_cast<double>(hp.step);
  const double c1 = 1.0 - std::pow(static_cast<double>(hp.beta1), t);
  const double c2 = std::sqrt(1.0 - std::pow(static_cast<double>(hp.beta2), t));
  StepConsts c;
  c.lr = hp.lr;
  c.beta1 = hp.beta1;
  c.beta2 = hp.beta2;
  c.one_minus_beta1 = 1.0f - hp.beta1;
  c.one_minus_beta2 = 1.0f - hp.beta2;
  c.step_size = static_cast<float>(-static_cast<double>(hp.lr) * c2 / c1);
  c.eps_hat = static_cast<float>(static_cast<double>(hp.eps) * c2);
  c.decay = 1.0f - hp.lr * hp.weight_decay;
  c.gnorm_scale = hp.gnorm_scale;
  return c;
}

void make_codebook(const float* code, Codebook* out) {
  nq::quant::code8_init(code, &out->t);
  out->negatives = 0;
  while (out->negatives < 256 && std::signbit(code[out->negatives])) ++out->negatives;
}

nq_status check_params(const char* fn, nq_optimizer_kind kind, const nq_optimizer_params* params) {
  NQ_CHECK(kind == NQ_OPTIMIZER_ADAMW || kind == NQ_OPTIMIZER_LION, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'kind' must be NQ_OPTIMIZER_ADAMW or NQ_OPTIMIZER_LION, got %d", fn, int(kind));
  NQ_CHECK_NOT_NULL(fn, params);
  const nq_optimizer_params& h = *params;
  NQ_CHECK(std::isfinite(h.lr) && h.lr >= 0.0f, NQ_ERR_INVALID_ARGUMENT,
           "%s: params->lr must be finite and >= 0, got %g", fn, double(h.lr));
  NQ_CHECK(h.beta1 >= 0.0f && h.beta1 < 1.0f, NQ_ERR_INVALID_ARGUMENT,
           "%s: params->beta1 must be in [0, 1), got %g", fn, double(h.beta1));
  NQ_CHECK(h.beta2 >= 0.0f && h.beta2 < 1.0f, NQ_ERR_INVALID_ARGUMENT,
           "%s: params->beta2 must be in [0, 1), got %g", fn, double(h.beta2));
  NQ_CHECK(kind != NQ_OPTIMIZER_ADAMW || (std::isfinite(h.eps) && h.eps > 0.0f), NQ_ERR_INVALID_ARGUMENT,
           "%s: params->eps must be finite and > 0 for AdamW, got %g", fn, double(h.eps));
  NQ_CHECK(std::isfinite(h.weight_decay) && h.weight_decay >= 0.0f, NQ_ERR_INVALID_ARGUMENT,
           "%s: params->weight_decay must be finite and >= 0, got %g", fn, double(h.weight_decay));
  NQ_CHECK(std::isfinite(h.gnorm_scale) && h.gnorm_scale > 0.0f, NQ_ERR_INVALID_ARGUMENT,
           "%s: params->gnorm_scale must be finite and > 0, got %g", fn, double(h.gnorm_scale));
  NQ_CHECK(h.step >= 1, NQ_ERR_INVALID_ARGUMENT, "%s: params->step must be >= 1 (1-based), got %lld", fn,
           static_cast<long long>(h.step));
  return NQ_OK;
}

nq_status check_code(const char* fn, const char* name, const float* code) {
  NQ_CHECK(code != nullptr, NQ_ERR_NULL_POINTER, "%s: argument '%s' must not be NULL", fn, name);
  bool seen_non_negative = false;
  for (int i = 0; i < 256; ++i) {
    NQ_CHECK(std::isfinite(code[i]), NQ_ERR_INVALID_ARGUMENT, "%s: argument '%s'[%d] must be finite", fn, name,
             i);
    NQ_CHECK(i == 0 || code[i - 1] <= code[i], NQ_ERR_INVALID_ARGUMENT,
             "%s: argument '%s' must be sorted ascending (entry %d < entry %d)", fn, name, i, i - 1);
    NQ_CHECK(!(seen_non_negative && std::signbit(code[i])), NQ_ERR_INVALID_ARGUMENT,
             "%s: argument '%s' must list negative entries (and -0) first; entry %d breaks that", fn, name, i);
    seen_non_negative = seen_non_negative || !std::signbit(code[i]);
  }
  return NQ_OK;
}

void step32(nq_optimizer_kind kind, const StepConsts& c, float* p, const float* g, float* m, float* v,
            int64_t n) {
  const bool simd = nq::cpu::use(NQ_ISA_AVX512);
  parallel_chunks(n, [&](int64_t i, int64_t len) {
    if (kind == NQ_OPTIMIZER_ADAMW)
      (simd ? adamw32_avx512 : adamw32_ref)(c, p + i, g + i, m + i, v + i, len);
    else
      (simd ? lion32_avx512 : lion32_ref)(c, p + i, g + i, m + i, len);
  });
}

void step8(nq_optimizer_kind kind, const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1,
           uint8_t* q2, float* absmax2, const Codebook& cb1, const Codebook& cb2, int64_t n) {
  const bool simd = nq::cpu::use(NQ_ISA_AVX512);
  parallel_chunks(n, [&](int64_t i, int64_t len) {
    const int64_t b = i / kBlock;
    if (kind == NQ_OPTIMIZER_ADAMW)
      (simd ? adamw8_avx512 : adamw8_ref)(c, p + i, g + i, q1 + i, absmax1 + b, q2 + i, absmax2 + b, cb1, cb2,
                                          len);
    else
      (simd ? lion8_avx512 : lion8_ref)(c, p + i, g + i, q1 + i, absmax1 + b, cb1, len);
  });
}

// Checks shared by the unpaged and paged entry points for the parameter side.
nq_status check_tensor_args(const char* fn, nq_optimizer_kind kind, const nq_optimizer_params* params,
                            const float* p, const float* g, int64_t n) {
  if (nq_status s = check_params(fn, kind, params); s != NQ_OK) return s;
  NQ_CHECK_NOT_NULL(fn, p);
  NQ_CHECK_NOT_NULL(fn, g);
  NQ_CHECK(n > 0, NQ_ERR_INVALID_ARGUMENT, "%s: argument 'n' must be > 0, got %lld", fn,
           static_cast<long long>(n));
  NQ_CHECK(!overlaps(p, 4 * uint64_t(n), g, 4 * uint64_t(n)), NQ_ERR_OVERLAP,
           "%s: arguments 'p' and 'g' must not overlap", fn);
  return NQ_OK;
}

}  // namespace nq::optim

using namespace nq::optim;
using nq::overlaps;

#define NQ_CHECK_STATE2(fn, kind, ptr)                                                                    \
  NQ_CHECK(((kind) == NQ_OPTIMIZER_ADAMW) == ((ptr) != nullptr),                                          \
           (kind) == NQ_OPTIMIZER_ADAMW ? NQ_ERR_NULL_POINTER : NQ_ERR_INVALID_ARGUMENT,                  \
           "%s: argument '%s' must be %s for %s", fn, #ptr, (kind) == NQ_OPTIMIZER_ADAMW ? "non-NULL" : "NULL", \
           (kind) == NQ_OPTIMIZER_ADAMW ? "AdamW" : "Lion")

extern "C" {

NQ_API nq_status nq_optimizer32_step(nq_optimizer_kind kind, const nq_optimizer_params* params, float* p,
                                     const float* g, float* state1, float* state2, int64_t n) {
  static constexpr const char* fn = "nq_optimizer32_step";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status s = check_tensor_args(fn, kind, params, p, g, n); s != NQ_OK) return s;
    NQ_CHECK_NOT_NULL(fn, state1);
    NQ_CHECK_STATE2(fn, kind, state2);
    const uint64_t bytes = 4 * uint64_t(n);
    NQ_CHECK(!overlaps(state1, bytes, p, bytes) && !overlaps(state1, bytes, g, bytes) &&
                 !overlaps(state2, bytes, p, bytes) && !overlaps(state2, bytes, g, bytes) &&
                 !overlaps(state1, bytes, state2, bytes),
             NQ_ERR_OVERLAP, "%s: 'p', 'g', 'state1' and 'state2' must not overlap", fn);
    step32(kind, make_consts(*params), p, g, state1, state2, n);
    return NQ_OK;
  });
}

NQ_API nq_status nq_optimizer8_step(nq_optimizer_kind kind, const nq_optimizer_params* params, float* p,
                                    const float* g, uint8_t* state1, float* absmax1, uint8_t* state2,
                                    float* absmax2, const float* code1, const float* code2, int64_t n) {
  static constexpr const char* fn = "nq_optimizer8_step";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status s = check_tensor_args(fn, kind, params, p, g, n); s != NQ_OK) return s;
    NQ_CHECK_NOT_NULL(fn, state1);
    NQ_CHECK_NOT_NULL(fn, absmax1);
    NQ_CHECK_STATE2(fn, kind, state2);
    NQ_CHECK_STATE2(fn, kind, absmax2);
    NQ_CHECK_STATE2(fn, kind, code2);
    if (nq_status s = check_code(fn, "code1", code1); s != NQ_OK) return s;
    if (code2 != nullptr)
      if (nq_status s = check_code(fn, "code2", code2); s != NQ_OK) return s;
    const uint64_t pb = 4 * uint64_t(n), qb = uint64_t(n), ab = 4 * uint64_t((n + kBlock - 1) / kBlock);
    const void* outs[4] = {state1, absmax1, state2, absmax2};
    const uint64_t sizes[4] = {qb, ab, qb, ab};
    for (int a = 0; a < 4; ++a) {
      NQ_CHECK(!overlaps(outs[a], sizes[a], p, pb) && !overlaps(outs[a], sizes[a], g, pb), NQ_ERR_OVERLAP,
               "%s: state/absmax buffers must not overlap 'p' or 'g'", fn);
      for (int b = a + 1; b < 4; ++b)
        NQ_CHECK(!overlaps(outs[a], sizes[a], outs[b], sizes[b]), NQ_ERR_OVERLAP,
                 "%s: state/absmax buffers must not overlap each other", fn);
    }
    Codebook cb1, cb2;
    make_codebook(code1, &cb1);
    if (code2 != nullptr) make_codebook(code2, &cb2);
    step8(kind, make_consts(*params), p, g, state1, absmax1, state2, absmax2, cb1, cb2, n);
    return NQ_OK;
  });
}

}  // extern "C"
