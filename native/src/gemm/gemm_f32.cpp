// fp32 and bf16 GEMM: C (M,N) = beta*C + op(A) op(B) + bias.
#include "gemm/gemm_f32.h"

#include "core/error.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"
#include "gemm/pack.h"
#include "gemm/validate.h"

namespace nq::gemm {

static_assert(kBPanelBytes / 4 == kKcF32, "the packing-free fp32 paths must sum K in the driver's KC blocks");

namespace {

// op(A)(i, k) and op(B)(k, n) element strides for row-major storage.
struct Strides {
  int64_t a_rs, a_ks, b_ns, b_ks;
};
Strides strides_of(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k) {
  return {ta ? 1 : k, ta ? m : 1, tb ? k : 1, tb ? 1 : n};
}

template <class T, class ToF>
void gemm_ref_impl(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const T* a, const T* b,
                   float beta, const float* bias, float* c, ToF to_f) {
  const Strides s = strides_of(ta, tb, m, n, k);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) acc += to_f(a[i * s.a_rs + p * s.a_ks]) * to_f(b[j * s.b_ns + p * s.b_ks]);
      const float old = beta == 0.0f ? 0.0f : beta * c[i * n + j];
      c[i * n + j] = old + acc + (bias ? bias[j] : 0.0f);
    }
}

template <class View>
void gemm_fast(const Ukernel& uk, int64_t m, int64_t n, int64_t k, const View& av, const View& bv,
               float beta, const float* bias, float* c) {
  const bool acc = beta != 0.0f || bias != nullptr;
  if (acc && !(beta == 1.0f && bias == nullptr)) prepare_output(c, m, n, beta, bias);
  run_gemm<float>(uk, m, n, k, PackA<View>{av, uk.a_fmt}, PackB<View>{bv, uk.b_fmt}, c, n, acc);
}

template <class T>
nq_status gemm_entry(const char* fn, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const T* a,
                     const T* b, float beta, const float* bias, float* c) {
  NQ_CHECK_NOT_NULL(fn, a);
  NQ_CHECK_NOT_NULL(fn, b);
  NQ_CHECK_NOT_NULL(fn, c);
  NQ_CHECK(ta == 0 || ta == 1, NQ_ERR_INVALID_ARGUMENT, "%s: argument 'trans_a' must be 0 or 1, got %d", fn, ta);
  NQ_CHECK(tb == 0 || tb == 1, NQ_ERR_INVALID_ARGUMENT, "%s: argument 'trans_b' must be 0 or 1, got %d", fn, tb);
  NQ_CHECK_DIM(fn, m);
  NQ_CHECK_DIM(fn, n);
  NQ_CHECK_DIM(fn, k);
  NQ_CHECK_BETA(fn, beta);
  const int64_t cb = m * n * 4;
  NQ_CHECK_NO_OVERLAP(fn, c, cb, a, m * k * int64_t(sizeof(T)));
  NQ_CHECK_NO_OVERLAP(fn, c, cb, b, n * k * int64_t(sizeof(T)));
  NQ_CHECK_NO_OVERLAP(fn, c, cb, bias, n * 4);
  return guard(fn, [&] {
    const Strides s = strides_of(ta, tb, m, n, k);
    if constexpr (std::is_same_v<T, float>) {
      const Ukernel* uk = ukernel_f32();
      if (uk == nullptr) {
        gemm_f32_ref(ta, tb, m, n, k, a, b, beta, bias, c);
      } else if (m <= kGemvMaxM && ta == 0 && tb == 1 && nq::cpu::use(NQ_ISA_AVX512)) {
        gemv_f32_nt_avx512(m, n, k, a, b, beta, bias, c);  // decode-shaped: stream W once
      } else if (m <= kGemvMaxM && tb == 0 && nq::cpu::use(NQ_ISA_AVX512)) {
        gemv_f32_nn_avx512(m, n, k, a, s.a_rs, s.a_ks, b, beta, bias, c);  // dX = dY W at decode sizes
      } else if (k <= kRankMaxK && tb == 0 && nq::cpu::use(NQ_ISA_AVX512)) {
        gemm_f32_rank_avx512(m, n, k, a, s.a_rs, s.a_ks, b, beta, bias, c);  // dW += dY^T X of one token
      } else {
        gemm_fast(*uk, m, n, k, ViewF32{a, s.a_rs, s.a_ks}, ViewF32{b, s.b_ns, s.b_ks}, beta, bias, c);
      }
    } else {
      const Ukernel* uk = ukernel_bf16();
      if (uk == nullptr) {
        gemm_bf16_ref(ta, tb, m, n, k, a, b, beta, bias, c);
      } else {
        gemm_fast(*uk, m, n, k, ViewBf16{a, s.a_rs, s.a_ks}, ViewBf16{b, s.b_ns, s.b_ks}, beta, bias, c);
      }
    }
    return NQ_OK;
  });
}

}  // namespace

void gemm_f32_ref(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                  float beta, const float* bias, float* c) {
  gemm_ref_impl(ta, tb, m, n, k, a, b, beta, bias, c, [](float v) { return v; });
}

void gemm_bf16_ref(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const uint16_t* a,
                   const uint16_t* b, float beta, const float* bias, float* c) {
  gemm_ref_impl(ta, tb, m, n, k, a, b, beta, bias, c, bf16_to_f32);
}

}  // namespace nq::gemm

extern "C" {

NQ_API nq_status nq_gemm_f32(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                             const float* b, float beta, const float* bias, float* c) {
  return nq::gemm::gemm_entry("nq_gemm_f32", trans_a, trans_b, m, n, k, a, b, beta, bias, c);
}

NQ_API nq_status nq_gemm_bf16(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                              const uint16_t* a, const uint16_t* b, float beta, const float* bias, float* c) {
  return nq::gemm::gemm_entry("nq_gemm_bf16", trans_a, trans_b, m, n, k, a, b, beta, bias, c);
}

}  // extern "C"
