// Attention ABI: shape and pointer checks, then the AVX-512 or AVX2 path or the scalar reference.
#include <cmath>
#include <cstddef>

#include "attention/attention.h"
#include "core/error.h"
#include "cpu/cpu.h"

static_assert(sizeof(nq_attention_shape) == 112, "nq_attention_shape is 112 bytes in the ABI");
static_assert(offsetof(nq_attention_shape, scale) == 104, "nq_attention_shape layout");

namespace {

#define NQ_CHECK_SHAPE(cond, ...) NQ_CHECK(cond, NQ_ERR_SHAPE, __VA_ARGS__)

nq_status check_operand(const char* fn, const char* name, int64_t batch, int64_t len, int64_t heads, int64_t d,
                        int64_t batch_stride, int64_t row_stride) {
  NQ_CHECK_SHAPE(row_stride >= heads * d, "%s: shape->%s_row_stride must be >= heads * head_dim = %lld, got %lld",
                 fn, name, static_cast<long long>(heads * d), static_cast<long long>(row_stride));
  NQ_CHECK_SHAPE(batch == 1 || batch_stride >= len * row_stride,
                 "%s: shape->%s_batch_stride must be >= length * row stride = %lld, got %lld", fn, name,
                 static_cast<long long>(len * row_stride), static_cast<long long>(batch_stride));
  return NQ_OK;
}

nq_status check_shape(const char* fn, const nq_attention_shape* shape) {
  NQ_CHECK_NOT_NULL(fn, shape);
  const nq_attention_shape& s = *shape;
  NQ_CHECK_SHAPE(s.batch >= 1 && s.q_len >= 1 && s.q_heads >= 1 && s.kv_heads >= 1 && s.head_dim >= 1,
                 "%s: shape->batch, q_len, q_heads, kv_heads and head_dim must be >= 1, got %lld, %lld, %lld, "
                 "%lld, %lld",
                 fn, static_cast<long long>(s.batch), static_cast<long long>(s.q_len),
                 static_cast<long long>(s.q_heads), static_cast<long long>(s.kv_heads),
                 static_cast<long long>(s.head_dim));
  NQ_CHECK_SHAPE(s.q_heads % s.kv_heads == 0, "%s: shape->q_heads (%lld) must be a multiple of kv_heads (%lld)",
                 fn, static_cast<long long>(s.q_heads), static_cast<long long>(s.kv_heads));
  NQ_CHECK_SHAPE(s.query_offset >= 0 && s.kv_len >= s.query_offset + s.q_len,
                 "%s: queries at positions %lld..%lld need kv_len >= %lld keys, got %lld (query_offset must be "
                 ">= 0)",
                 fn, static_cast<long long>(s.query_offset), static_cast<long long>(s.query_offset + s.q_len - 1),
                 static_cast<long long>(s.query_offset + s.q_len), static_cast<long long>(s.kv_len));
  NQ_CHECK(std::isfinite(s.scale) && s.scale > 0.0f, NQ_ERR_INVALID_ARGUMENT,
           "%s: shape->scale must be finite and > 0, got %g", fn, double(s.scale));
  if (nq_status st = check_operand(fn, "q", s.batch, s.q_len, s.q_heads, s.head_dim, s.q_batch_stride,
                                   s.q_row_stride);
      st != NQ_OK)
    return st;
  if (nq_status st = check_operand(fn, "k", s.batch, s.kv_len, s.kv_heads, s.head_dim, s.k_batch_stride,
                                   s.k_row_stride);
      st != NQ_OK)
    return st;
  return check_operand(fn, "v", s.batch, s.kv_len, s.kv_heads, s.head_dim, s.v_batch_stride, s.v_row_stride);
}

// [first, last) bytes a (B, L, H, D) operand spans.
struct Extent {
  const char* name;
  uintptr_t first, last;
};
Extent extent(const char* name, const void* p, int64_t batch, int64_t len, int64_t heads, int64_t d,
              int64_t batch_stride, int64_t row_stride) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return {name, a, a + 4 * uintptr_t((batch - 1) * batch_stride + (len - 1) * row_stride + heads * d)};
}

// Outputs must not overlap inputs (outputs may interleave with each other: narrow views of one buffer).
nq_status check_disjoint(const char* fn, const Extent* outs, int n_outs, const Extent* ins, int n_ins) {
  for (int i = 0; i < n_outs; ++i)
    for (int j = 0; j < n_ins; ++j)
      NQ_CHECK(outs[i].first == 0 || ins[j].first == 0 || outs[i].last <= ins[j].first ||
                   ins[j].last <= outs[i].first,
               NQ_ERR_OVERLAP, "%s: output '%s' overlaps input '%s'", fn, outs[i].name, ins[j].name);
  return NQ_OK;
}

Extent q_extent(const nq_attention_shape& s, const char* name, const void* p) {
  return extent(name, p, s.batch, s.q_len, s.q_heads, s.head_dim, s.q_batch_stride, s.q_row_stride);
}
Extent k_extent(const nq_attention_shape& s, const char* name, const void* p) {
  return extent(name, p, s.batch, s.kv_len, s.kv_heads, s.head_dim, s.k_batch_stride, s.k_row_stride);
}
Extent v_extent(const nq_attention_shape& s, const char* name, const void* p) {
  return extent(name, p, s.batch, s.kv_len, s.kv_heads, s.head_dim, s.v_batch_stride, s.v_row_stride);
}
Extent o_extent(const nq_attention_shape& s, const char* name, const void* p) {  // contiguous (B, T, Hq, D)
  return extent(name, p, 1, 1, 1, s.batch * s.q_len * s.q_heads * s.head_dim, 0, 0);
}
Extent lse_extent(const nq_attention_shape& s, const void* p) {  // (B, Hq, T)
  return extent("lse", p, 1, 1, 1, s.batch * s.q_heads * s.q_len, 0, 0);
}

using Forward = void (*)(const nq_attention_shape&, const float*, const float*, const float*, float*, float*);
using Backward = void (*)(const nq_attention_shape&, const float*, const float*, const float*, const float*,
                          const float*, float*, float*, float*);

Forward forward_for_isa() {
  using namespace nq::attention;
  return nq::cpu::use(NQ_ISA_AVX512) ? forward_avx512 : nq::cpu::use(NQ_ISA_AVX2) ? forward_avx2 : forward_ref;
}
Backward backward_for_isa() {
  using namespace nq::attention;
  return nq::cpu::use(NQ_ISA_AVX512) ? backward_avx512 : nq::cpu::use(NQ_ISA_AVX2) ? backward_avx2 : backward_ref;
}

}  // namespace

extern "C" {

NQ_API nq_status nq_attention_forward(const nq_attention_shape* shape, const float* q, const float* k,
                                      const float* v, float* o, float* lse) {
  static constexpr const char* fn = "nq_attention_forward";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status st = check_shape(fn, shape); st != NQ_OK) return st;
    NQ_CHECK_NOT_NULL(fn, q);
    NQ_CHECK_NOT_NULL(fn, k);
    NQ_CHECK_NOT_NULL(fn, v);
    NQ_CHECK_NOT_NULL(fn, o);
    const nq_attention_shape& s = *shape;
    const Extent outs[] = {o_extent(s, "o", o), lse_extent(s, lse)};
    const Extent ins[] = {q_extent(s, "q", q), k_extent(s, "k", k), v_extent(s, "v", v), outs[1]};
    if (nq_status st = check_disjoint(fn, outs, 1, ins, 4); st != NQ_OK) return st;  // o vs q, k, v, lse
    if (nq_status st = check_disjoint(fn, outs + 1, 1, ins, 3); st != NQ_OK) return st;
    forward_for_isa()(*shape, q, k, v, o, lse);
    return NQ_OK;
  });
}

NQ_API nq_status nq_attention_backward(const nq_attention_shape* shape, const float* q, const float* k,
                                       const float* v, const float* d_o, const float* lse, float* dq,
                                       float* dk, float* dv) {
  static constexpr const char* fn = "nq_attention_backward";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status st = check_shape(fn, shape); st != NQ_OK) return st;
    NQ_CHECK_NOT_NULL(fn, q);
    NQ_CHECK_NOT_NULL(fn, k);
    NQ_CHECK_NOT_NULL(fn, v);
    NQ_CHECK_NOT_NULL(fn, d_o);
    NQ_CHECK_NOT_NULL(fn, lse);
    const nq_attention_shape& s = *shape;
    const Extent outs[] = {q_extent(s, "dq", dq), k_extent(s, "dk", dk), v_extent(s, "dv", dv)};
    const Extent ins[] = {q_extent(s, "q", q), k_extent(s, "k", k), v_extent(s, "v", v), o_extent(s, "d_o", d_o),
                          lse_extent(s, lse)};
    if (nq_status st = check_disjoint(fn, outs, 3, ins, 5); st != NQ_OK) return st;
    backward_for_isa()(*shape, q, k, v, d_o, lse, dq, dk, dv);
    return NQ_OK;
  });
}

}  // extern "C"
