// Internal interface of LLM.int8() matmuls.
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::gemm {

// int32 accumulation bound on the reduction length (K of the forward, N of the int8 backward):
// (127 + 128) * 128 * 65536 < 2^31 even with the u8 offset.
constexpr int64_t kInt8MaxK = 65536;

// Scalar reference of nq_int8_matmul / nq_int8_matmul_bf16 (x_bf16 used when x is NULL):
// same decomposition and rounding, int32 accumulation, fp32 outlier sums in column order.
void int8_matmul_ref(const float* x, const uint16_t* x_bf16, int64_t m, int64_t k, const int8_t* w,
                     const float* scb, int64_t n, float threshold, const float* bias,
                     nq_compute_type outlier_compute, float* y, int32_t* outlier_cols, int64_t* outlier_count);

// GEMV part of LLM.int8() for m <= kInt8GemvMaxM on AVX-512 VNNI (no packing):
// out[i * ld + j - j0] = sum_k q[i][k] * (w[j][k] + 128) for W rows j in [j0, j1), the
// blocked VNNI kernel's accumulator (the caller subtracts 128 * rowsum(q[i])).
constexpr int64_t kInt8GemvMaxM = 4;
void int8_gemv_avx512vnni(int64_t m, int64_t k, const int8_t* q, const int8_t* w, int64_t j0, int64_t j1,
                          int32_t* out, int64_t ld);

// Scalar reference of nq_int8_matmul_backward: F32/BF16 accumulate dY * dequantised W in float
// (k order); INT8 quantizes G = dY * scb / 127 per row and sums in int32, as the fast path does.
void int8_matmul_backward_ref(const float* dy, int64_t m, int64_t n, const int8_t* w, const float* scb, int64_t k,
                              nq_compute_type compute, float beta, float* dx);

}  // namespace nq::gemm
