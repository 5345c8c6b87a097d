// fp32 and bf16 GEMM: C (M,N) = beta*C + op(A) op(B) + bias, fp32 operands in fp32, bf16 or fp16 compute.
#include "gemm/gemm_f32.h"

#include <vector>

#include "core/error.h"
#include "cpu/cpu.h"
#include "gemm/driver.h"
#include "gemm/gemm_f32_f16.h"
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

// C = beta*C + bias + A B on the blocked driver with the given packers.
template <class PA, class PB>
void gemm_packed(const Ukernel& uk, int64_t m, int64_t n, int64_t k, const PA& pa, const PB& pb, float beta,
                 const float* bias, float* c) {
  const bool acc = beta != 0.0f || bias != nullptr;
  if (acc && !(beta == 1.0f && bias == nullptr)) prepare_output(c, m, n, beta, bias);
  run_gemm<float>(uk, m, n, k, pa, pb, c, n, acc);
}

// round: bf16 compute emulated on the fp32 kernel (operands rounded to bf16 by the packers).
template <class View>
void gemm_fast(const Ukernel& uk, int64_t m, int64_t n, int64_t k, const View& av, const View& bv, bool round,
               float beta, const float* bias, float* c) {
  gemm_packed(uk, m, n, k, PackA<View>{av, uk.a_fmt, round}, PackB<View>{bv, uk.b_fmt, round}, beta, bias, c);
}

// C (m, n) whose n fills at most a third of the micro-kernel's nr columns (LoRA's rank-8 products: 8 of 48) and
// whose m would fill many: computed as C^T = op(B)^T op(A)^T (n rows of m) in scratch and transposed back. Each
// element is the same chain of FMAs over k and C starts from the same beta*C + bias, so the bits equal the direct
// product's (tested). GPT-2 LoRA r=8 on c_attn, one layer's six products: 1,455 -> 777 us (dB = g^T h 681 -> 213,
// dh = g B 450 -> 255).
void gemm_f32_skinny(const Ukernel& uk, int64_t m, int64_t n, int64_t k, const ViewF32& av, const ViewF32& bv,
                     float beta, const float* bias, float* c) {
  std::vector<float> t(size_t(n * m));  // C^T (n, m)
  const bool acc = beta != 0.0f || bias != nullptr;
  if (acc) {  // C as gemm_packed leaves it before accumulating, then transposed
    if (!(beta == 1.0f && bias == nullptr)) prepare_output(c, m, n, beta, bias);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) t[size_t(j * m + i)] = c[i * n + j];
  }
  gemm_fast(uk, n, m, k, bv, av, false, acc ? 1.0f : 0.0f, nullptr, t.data());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * n + j] = t[size_t(j * m + i)];
}

// fp32 operands, fp32 compute.
void gemm_f32_run(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float beta,
                  const float* bias, float* c) {
  const Strides s = strides_of(ta, tb, m, n, k);
  const Ukernel* uk = ukernel_f32();
  if (uk == nullptr) {
    gemm_f32_ref(ta, tb, m, n, k, a, b, beta, bias, c);
  } else if (m <= kGemvMaxM && ta == 0 && tb == 1 && nq::cpu::use(NQ_ISA_AVX512)) {
    gemv_f32_nt_avx512(m, n, k, a, b, beta, bias, c);  // decode-shaped: stream W once
  } else if (m <= kGemvMaxM && tb == 0 && nq::cpu::use(NQ_ISA_AVX512)) {
    gemv_f32_nn_avx512(m, n, k, a, s.a_rs, s.a_ks, b, beta, bias, c);  // dX = dY W at decode sizes
  } else if (k <= kRankMaxK && tb == 0 && nq::cpu::use(NQ_ISA_AVX512)) {
    gemm_f32_rank_avx512(m, n, k, a, s.a_rs, s.a_ks, b, beta, bias, c);  // dW += dY^T X of one token
  } else if (3 * n <= uk->nr && m >= 2 * uk->nr) {
    gemm_f32_skinny(*uk, m, n, k, ViewF32{a, s.a_rs, s.a_ks}, ViewF32{b, s.b_ns, s.b_ks}, beta, bias, c);
  } else {
    gemm_fast(*uk, m, n, k, ViewF32{a, s.a_rs, s.a_ks}, ViewF32{b, s.b_ns, s.b_ks}, false, beta, bias, c);
  }
}

// fp32 operands rounded to bf16 (nearest even) with fp32 accumulation: what nq_gemm_bf16 computes on the
// rounded inputs, through the same kernels and emulation.
void gemm_f32_bf16_run(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                       float beta, const float* bias, float* c) {
  const Strides s = strides_of(ta, tb, m, n, k);
  const Ukernel* uk = ukernel_bf16();
  if (uk == nullptr)
    gemm_ref_impl(ta, tb, m, n, k, a, b, beta, bias, c, round_bf16);
  else
    gemm_fast(*uk, m, n, k, ViewF32{a, s.a_rs, s.a_ks}, ViewF32{b, s.b_ns, s.b_ks}, bf16_emulated(uk), beta, bias,
              c);
}

// fp32 operands, NQ_COMPUTE_F16 (gemm_f32_f16.h); fp32 compute without AVX-512 FP16, as nq_quant4_gemm.
void gemm_f32_f16_run(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                      float beta, const float* bias, float* c) {
  if (ukernel_f32() == nullptr)
    gemm_f32_f16_ref(ta, tb, m, n, k, a, b, beta, bias, c);
  else if (nq::cpu::use_avx512fp16())
    gemm_packed(kUkF16Avx512, m, n, k, PackAF32F16{a, m, k, ta != 0}, PackBF32F16{b, n, k, tb != 0}, beta, bias, c);
  else
    gemm_f32_run(ta, tb, m, n, k, a, b, beta, bias, c);
}

template <class T>
nq_status gemm_entry(const char* fn, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const T* a,
                     const T* b, float beta, const float* bias, nq_compute_type compute, float* c) {
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
  NQ_CHECK_COMPUTE_F16(fn, compute);
  return guard(fn, [&] {
    if constexpr (std::is_same_v<T, float>) {
      gemm_f32_compute(ta, tb, m, n, k, a, b, beta, bias, compute, c);
    } else {
      const Strides s = strides_of(ta, tb, m, n, k);
      const Ukernel* uk = ukernel_bf16();
      if (uk == nullptr) {
        gemm_bf16_ref(ta, tb, m, n, k, a, b, beta, bias, c);
      } else {
        gemm_fast(*uk, m, n, k, ViewBf16{a, s.a_rs, s.a_ks}, ViewBf16{b, s.b_ns, s.b_ks}, false, beta, bias, c);
      }
    }
    return NQ_OK;
  });
}

}  // namespace

void gemm_f32_compute(int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b,
                      float beta, const float* bias, nq_compute_type compute, float* c) {
  if (compute == NQ_COMPUTE_F16)
    gemm_f32_f16_run(ta, tb, m, n, k, a, b, beta, bias, c);
  else if (compute == NQ_COMPUTE_BF16)
    gemm_f32_bf16_run(ta, tb, m, n, k, a, b, beta, bias, c);
  else
    gemm_f32_run(ta, tb, m, n, k, a, b, beta, bias, c);
}

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
  return nq::gemm::gemm_entry("nq_gemm_f32", trans_a, trans_b, m, n, k, a, b, beta, bias, NQ_COMPUTE_F32, c);
}

NQ_API nq_status nq_gemm_f32_compute(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                     const float* a, const float* b, float beta, const float* bias,
                                     nq_compute_type compute, float* c) {
  return nq::gemm::gemm_entry("nq_gemm_f32_compute", trans_a, trans_b, m, n, k, a, b, beta, bias, compute, c);
}

NQ_API nq_status nq_gemm_bf16(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                              const uint16_t* a, const uint16_t* b, float beta, const float* bias, float* c) {
  return nq::gemm::gemm_entry("nq_gemm_bf16", trans_a, trans_b, m, n, k, a, b, beta, bias, NQ_COMPUTE_BF16, c);
}

}  // extern "C"
