// GELU (tanh approximation) kernels: internal API. The ABI layer (gelu_api.cpp) validates and picks a
// path; every path runs the same operations (gelu_kernel.h) on [0, n) and gives the same bits.
#pragma once

#include <cstdint>

namespace nq::activation {

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;

// y (n) = gelu(x)
void gelu_forward_ref(const float* x, int64_t n, float* y);
void gelu_forward_avx2(const float* x, int64_t n, float* y);
void gelu_forward_avx512(const float* x, int64_t n, float* y);

// dx (n) = beta dx + g gelu'(x); beta = 0 writes dx without reading it
void gelu_backward_ref(const float* x, const float* g, int64_t n, float beta, float* dx);
void gelu_backward_avx2(const float* x, const float* g, int64_t n, float beta, float* dx);
void gelu_backward_avx512(const float* x, const float* g, int64_t n, float beta, float* dx);

}  // namespace nq::activation
