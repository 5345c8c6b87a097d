// Internal entry points of the fp32/bf16 GEMM (scalar references used by tests and by
// NQ_ISA_SCALAR dispatch).
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::gemm {

// nq_gemm_f32_compute without the argument checks (callers inside the library validate their own):
// C (m,n) = beta*C + op(A) op(B) + bias in `compute`'s precision.
void gemm_f32_compute(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      const float* b, float beta, const float* bias, nq_compute_type compute, float* c);

// Plain triple loop, fp32 accumulation in k order; shapes as nq_gemm_f32.
void gemm_f32_ref(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                  const float* b, float beta, const float* bias, float* c);
void gemm_bf16_ref(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const uint16_t* a,
                   const uint16_t* b, float beta, const float* bias, float* c);

// Y (m,n) = beta*Y + X (m,k) W^T + bias for m <= kGemvMaxM on AVX-512 (no packing).
constexpr int64_t kGemvMaxM = 4;
void gemv_f32_nt_avx512(int64_t m, int64_t n, int64_t k, const float* x, const float* w, float beta,
                        const float* bias, float* c);

// KC of the blocked driver's fp32 tiles (kc_for; checked in gemm_f32.cpp): the packing-free paths below
// sum K in the same blocks so that they give the driver's bits.
constexpr int64_t kKcF32 = 384;

// C (m,n) = beta*C + A (m,k) B (k,n) + bias for m <= kGemvMaxM, B row-major (n contiguous), A(i, p) at
// a[i * a_rs + p * a_ks] (either layout) on AVX-512: B's rows stream once, no packing.
void gemv_f32_nn_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ks,
                        const float* b, float beta, const float* bias, float* c);

// The same product for k <= kRankMaxK (any m) on AVX-512: a rank-k update streaming C's rows once.
constexpr int64_t kRankMaxK = 4;
void gemm_f32_rank_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ks,
                          const float* b, float beta, const float* bias, float* c);

// dst[k * ds + r] = src[r * ss + k] for r < rows (a multiple of 16), k < kc: the transposing
// fp32 panel packer on AVX-512 (pack_f32_avx512.cpp; call only after cpu::use(NQ_ISA_AVX512)).
void transpose_panel_f32_avx512(const float* src, int64_t ss, int rows, int64_t kc, float* dst, int64_t ds);

}  // namespace nq::gemm
