// Argument checks shared by the matmul entry points (messages name the argument).
#pragma once

#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/overlap.h"

namespace nq::gemm {

// Largest dimension accepted: keeps every index product inside int64.
constexpr int64_t kMaxDim = int64_t(1) << 31;

// The raw integer of an enum argument: a C caller may pass any int, and loading an
// out-of-range value as the enum type is undefined in C++, so validate the bits instead.
template <class E>
inline int enum_bits(const E& e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

}  // namespace nq::gemm

#define NQ_CHECK_DIM(fn, v)                                                                    \
  NQ_CHECK((v) >= 1 && (v) <= ::nq::gemm::kMaxDim, NQ_ERR_INVALID_ARGUMENT,                    \
           "%s: argument '%s' must be in 1..2^31, got %lld", fn, #v, static_cast<long long>(v))

#define NQ_CHECK_NO_OVERLAP(fn, out, out_bytes, in, in_bytes)                                     \
  NQ_CHECK(!::nq::overlaps(out, uint64_t(out_bytes), in, uint64_t(in_bytes)), NQ_ERR_OVERLAP,                  \
           "%s: output '%s' overlaps input '%s'", fn, #out, #in)

#define NQ_CHECK_COMPUTE(fn, c)                                                                       \
  NQ_CHECK(::nq::gemm::enum_bits(c) == NQ_COMPUTE_F32 || ::nq::gemm::enum_bits(c) == NQ_COMPUTE_BF16,  \
           NQ_ERR_INVALID_ARGUMENT, "%s: argument '%s' must be NQ_COMPUTE_F32 (0) or NQ_COMPUTE_BF16 (1), got %d", \
           fn, #c, ::nq::gemm::enum_bits(c))

// Kernels that also take NQ_COMPUTE_F16 (the chunked fp16 scheme, f16_chunk.h).
#define NQ_CHECK_COMPUTE_F16(fn, c)                                                                         \
  NQ_CHECK(::nq::gemm::enum_bits(c) == NQ_COMPUTE_F32 || ::nq::gemm::enum_bits(c) == NQ_COMPUTE_BF16 ||       \
               ::nq::gemm::enum_bits(c) == NQ_COMPUTE_F16,                                                   \
           NQ_ERR_INVALID_ARGUMENT,                                                                          \
           "%s: argument '%s' must be NQ_COMPUTE_F32 (0), NQ_COMPUTE_BF16 (1) or NQ_COMPUTE_F16 (3), got %d", fn, \
           #c, ::nq::gemm::enum_bits(c))

// The 4-bit weight matmuls take every compute type (NQ_COMPUTE_INT8: quant4_int8.h).
#define NQ_CHECK_COMPUTE_ANY(fn, c)                                                                          \
  NQ_CHECK(::nq::gemm::enum_bits(c) >= NQ_COMPUTE_F32 && ::nq::gemm::enum_bits(c) <= NQ_COMPUTE_F16,          \
           NQ_ERR_INVALID_ARGUMENT,                                                                           \
           "%s: argument '%s' must be NQ_COMPUTE_F32 (0), NQ_COMPUTE_BF16 (1), NQ_COMPUTE_INT8 (2) or "        \
           "NQ_COMPUTE_F16 (3), got %d",                                                                      \
           fn, #c, ::nq::gemm::enum_bits(c))

#define NQ_CHECK_BETA(fn, beta)                                                                \
  NQ_CHECK((beta) == (beta) && (beta) - (beta) == 0.0f, NQ_ERR_INVALID_ARGUMENT,               \
           "%s: argument 'beta' must be finite", fn)
