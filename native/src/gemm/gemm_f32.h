// Internal entry points of the fp32/bf16 GEMM (scalar references used by tests and by
// NQ_ISA_SCALAR dispatch).
#pragma once

#include <cstdint>

namespace nq::gemm {

// Plain triple loop, fp32 accumulation in k order; shapes as nq_gemm_f32.
void gemm_f32_ref(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                  const float* b, float beta, const float* bias, float* c);
void gemm_bf16_ref(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const uint16_t* a,
                   const uint16_t* b, float beta, const float* bias, float* c);

// Y (m,n) = beta*Y + X (m,k) W^T + bias for m <= kGemvMaxM on AVX-512 (no packing).
constexpr int64_t kGemvMaxM = 4;
void gemv_f32_nt_avx512(int64_t m, int64_t n, int64_t k, const float* x, const float* w, float beta,
                        const float* bias, float* c);

// dst[k * ds + r] = src[r * ss + k] for r < rows (a multiple of 16), k < kc: the transposing
// fp32 panel packer on AVX-512 (pack_f32_avx512.cpp; call only after cpu::use(NQ_ISA_AVX512)).
void transpose_panel_f32_avx512(const float* src, int64_t ss, int rows, int64_t kc, float* dst, int64_t ds);

}  // namespace nq::gemm
