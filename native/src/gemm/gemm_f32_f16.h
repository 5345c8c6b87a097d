// NQ_COMPUTE_F16 for fp32 x fp32 GEMM (nq_gemm_f32_compute): op(A) and op(B) cut into 64-k
// chunks as in f16_chunk.h, A scaled per (row, chunk) and B per (column, chunk):
// B values fp16(b * 2^s) with max|b| * 2^s in [0.5, 1), scale 2^-s.
#pragma once

#include <cstdint>

#include "gemm/driver.h"

namespace nq::gemm {

// Scalar reference: the same operations in scalar code; shapes and beta/bias as nq_gemm_f32.
void gemm_f32_f16_ref(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                      float beta, const float* bias, float* c);

// Driver packers for kUkF16Avx512 (only used when cpu::use_avx512fp16()).
// A (m, k), or stored (k, m) when trans.
struct PackAF32F16 {
  const float* a;
  int64_t m, k;
  bool trans;
  void operator()(void* out, const PackGeom& g, int64_t i0, int rows, int64_t k0, int64_t kc) const;
};
// B (k, n), or stored (n, k) when trans.
struct PackBF32F16 {
  const float* b;
  int64_t n, k;
  bool trans;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const;
};

// Products X op(B) sharing one X (m, k) (nq_linear_cross_entropy's logits blocks): X packed once as the fp16
// kernel's A, f16_prepack_bytes(m, k) bytes at out, then C (m, n) = X op(B) (beta 0) per B, with B (k, n) or
// stored (n, k) when trans_b. Only when cpu::use_avx512fp16(); the bits equal nq_gemm_f32_compute's.
int64_t f16_prepack_bytes(int64_t m, int64_t k);
PrepackedA f16_prepack_a(const float* x, int64_t m, int64_t k, uint8_t* out);
void gemm_f16_prepacked_a(const PrepackedA& x, int64_t m, int64_t k, const float* b, int64_t n, bool trans_b, float* c);

// A frozen B (k, n), or stored (n, k) when trans, packed once as the fp16 kernel's B (f16_prepack_b_bytes at
// out), for products with an fp32 A (packed per call) or a prepacked one; same bits as packing it per call.
int64_t f16_prepack_b_bytes(int64_t k, int64_t n);
PrepackedB f16_prepack_b(const float* b, int64_t k, int64_t n, bool trans, uint8_t* out);
PrepackedB f16_prepacked_b_at(int64_t k, int64_t n, const uint8_t* at);  // the view of a B packed at `at`
void gemm_f16_prepacked(const PrepackedA& x, int64_t m, int64_t k, const PrepackedB& b, int64_t n, float* c);
void gemm_f16_prepacked_b(const float* a, int64_t m, int64_t k, const PrepackedB& b, int64_t n, bool accumulate,
                          float* c);

// SIMD B packer (pack_f16_avx512fp16.cpp): columns [0, nc) and k [0, kc) of B starting at b,
// B(k, j) = b[k * ldb + j], or b[j * ldb + k] when trans, into a block of F16C micro-panels of
// panel_bytes each (zero-filled beforehand when kc or nc leave padding).
void pack_b_f32_f16_avx512fp16(const float* b, int64_t ldb, bool trans, uint8_t* out, int64_t panel_bytes, int64_t kc,
                               int64_t nc);

}  // namespace nq::gemm
