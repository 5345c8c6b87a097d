// Causal attention kernels: internal API. The ABI layer (attention_api.cpp) validates the
// shape once; each path then runs a whole call (the reference serially, the AVX2 and AVX-512
// paths with the OpenMP split of blocked.h) over the strided (B, L, H, D) operands described
// by the shape.
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::attention {

// Keys visible to query t (causal, queries at query_offset + t).
inline int64_t visible(const nq_attention_shape& s, int64_t t) { return s.query_offset + t + 1; }

// Offsets of (b, l, h) rows; o, do and lse are contiguous.
inline int64_t q_at(const nq_attention_shape& s, int64_t b, int64_t t, int64_t h) {
  return b * s.q_batch_stride + t * s.q_row_stride + h * s.head_dim;
}
inline int64_t k_at(const nq_attention_shape& s, int64_t b, int64_t j, int64_t kh) {
  return b * s.k_batch_stride + j * s.k_row_stride + kh * s.head_dim;
}
inline int64_t v_at(const nq_attention_shape& s, int64_t b, int64_t j, int64_t kh) {
  return b * s.v_batch_stride + j * s.v_row_stride + kh * s.head_dim;
}
inline int64_t o_at(const nq_attention_shape& s, int64_t b, int64_t t, int64_t h) {
  return ((b * s.q_len + t) * s.q_heads + h) * s.head_dim;
}
inline int64_t lse_at(const nq_attention_shape& s, int64_t b, int64_t h, int64_t t) {
  return (b * s.q_heads + h) * s.q_len + t;
}

// Plain loops in float, one query row and one key at a time: the definition the fast path
// is tested against.
void forward_ref(const nq_attention_shape& s, const float* q, const float* k, const float* v, float* o,
                 float* lse);
void backward_ref(const nq_attention_shape& s, const float* q, const float* k, const float* v, const float* d_o,
                  const float* lse, float* dq, float* dk, float* dv);

void forward_avx2(const nq_attention_shape& s, const float* q, const float* k, const float* v, float* o,
                  float* lse);
void backward_avx2(const nq_attention_shape& s, const float* q, const float* k, const float* v, const float* d_o,
                   const float* lse, float* dq, float* dk, float* dv);

void forward_avx512(const nq_attention_shape& s, const float* q, const float* k, const float* v, float* o,
                    float* lse);
void backward_avx512(const nq_attention_shape& s, const float* q, const float* k, const float* v,
                     const float* d_o, const float* lse, float* dq, float* dk, float* dv);

}  // namespace nq::attention
