// Optimizer step kernels (AdamW, Lion; 32-bit and 8-bit blockwise state): internal API.
// The ABI layer (optim_api.cpp) validates, derives StepConsts once, and splits the work
// into block-aligned ranges; kernels below update one range [0, n) of already-offset
// pointers, so every path (ref/AVX-512, any thread count, paged chunks) sees the same
// per-element arithmetic and gives bit-identical results.
#pragma once

#include <cstdint>

#include "nativequant.h"
#include "quant/quant.h"

namespace nq::optim {

constexpr int64_t kBlock = NQ_OPTIMIZER8_BLOCKSIZE;

// Per-step scalars, computed once (in double, rounded to float) so no path recomputes
// them differently.
struct StepConsts {
  float lr, beta1, beta2;
  float one_minus_beta1, one_minus_beta2;
  float step_size;    // AdamW: -lr * sqrt(1 - beta2^t) / (1 - beta1^t)
  float eps_hat;      // AdamW: eps * sqrt(1 - beta2^t)
  float decay;        // 1 - lr * weight_decay (multiplying by exactly 1 is a no-op)
  float gnorm_scale;
};
StepConsts make_consts(const nq_optimizer_params& hp);

// A 256-entry code prepared for nearest-code search: the quantization module's tables
// (nearest = number of fp32 midpoints below x, ties to the lower index, exactly as
// nq_blockwise8_quantize) plus the sign boundary used by the state1 sign rule.
struct Codebook {
  nq::quant::Code8 t;
  int32_t negatives;  // code[i] has its sign bit set exactly for i < negatives
};
void make_codebook(const float* code, Codebook* out);

// ---- 32-bit state: p, g, m, v of n elements ----
void adamw32_ref(const StepConsts& c, float* p, const float* g, float* m, float* v, int64_t n);
void lion32_ref(const StepConsts& c, float* p, const float* g, float* m, int64_t n);
void adamw32_avx512(const StepConsts& c, float* p, const float* g, float* m, float* v, int64_t n);
void lion32_avx512(const StepConsts& c, float* p, const float* g, float* m, int64_t n);

// ---- 8-bit blockwise state: n elements starting at a block boundary; absmax has
// ceil(n / kBlock) entries ----
void adamw8_ref(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1, uint8_t* q2,
                float* absmax2, const Codebook& cb1, const Codebook& cb2, int64_t n);
void lion8_ref(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1,
               const Codebook& cb1, int64_t n);
void adamw8_avx512(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1, uint8_t* q2,
                   float* absmax2, const Codebook& cb1, const Codebook& cb2, int64_t n);
void lion8_avx512(const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1,
                  const Codebook& cb1, int64_t n);

// Validated entry points shared by the unpaged and paged ABI functions: check the
// hyper-parameters / codes once (fn names the public function in messages) ...
nq_status check_params(const char* fn, nq_optimizer_kind kind, const nq_optimizer_params* params);
nq_status check_code(const char* fn, const char* name, const float* code);
nq_status check_tensor_args(const char* fn, nq_optimizer_kind kind, const nq_optimizer_params* params,
                            const float* p, const float* g, int64_t n);
// ... then run a range in parallel (OpenMP over blocks, static schedule) on the best path.
void step32(nq_optimizer_kind kind, const StepConsts& c, float* p, const float* g, float* m, float* v,
            int64_t n);
void step8(nq_optimizer_kind kind, const StepConsts& c, float* p, const float* g, uint8_t* q1, float* absmax1,
           uint8_t* q2, float* absmax2, const Codebook& cb1, const Codebook& cb2, int64_t n);

}  // namespace nq::optim
