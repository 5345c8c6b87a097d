// Helpers shared by the GEMM tests: random data, NaN poisoning, error norms, ISA forcing.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gemm/convert.h"
#include "nativequant.h"

namespace gemm_test {

inline std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = nq::gemm::f32_to_bf16(v[i]);
  return o;
}

inline std::vector<float> poisoned(size_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

// Every element written (no NaN left from the poison).
inline bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// ||out - ref|| / ||ref|| in double.
template <class R>
double rel_error(const std::vector<float>& out, const std::vector<R>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double d = double(out[i]) - double(ref[i]);
    num += d * d;
    den += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

inline const char* isa_name(nq_isa i) {
  switch (i) {
    case NQ_ISA_SCALAR: return "scalar";
    case NQ_ISA_AVX2: return "avx2";
    case NQ_ISA_AVX512: return "avx512";
    case NQ_ISA_AVX512_VNNI: return "avx512vnni";
    default: return "avx512bf16";
  }
}

// ISA levels this CPU supports (each forced in turn by the tests).
inline std::vector<nq_isa> supported_isas() {
  nq_isa sup = NQ_ISA_SCALAR;
  nq_cpu_isa_supported(&sup);
  std::vector<nq_isa> v;
  for (int i = NQ_ISA_SCALAR; i <= sup; ++i) v.push_back(nq_isa(i));
  return v;
}

// Caps dispatch for the scope; restores the full level afterwards.
struct IsaScope {
  explicit IsaScope(nq_isa isa) { EXPECT_EQ(nq_cpu_isa_set_max(isa), NQ_OK); }
  ~IsaScope() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

inline bool message_mentions(const char* word) {
  return std::string(nq_last_error_message()).find(word) != std::string::npos;
}

// NQ_COMPUTE_F16 (f16_chunk.h).
// vs float64: fp16 rounding of both operands (2^-11 relative each) and a rounding per
// fp16 add over a 64-step chunk (random walk ~ 2^-11 * sqrt(64/2)) give ~1.2e-3 measured
// on Gaussian data; 3e-3 is the documented bound.
constexpr double kF16RelTol = 3e-3;
// vs the fp16 reference: the chunk sums are bit-identical (same fp16 FMAs in the same
// order); only the fp32 sum of chunk results is reassociated in edge tiles (~1e-7).
constexpr double kF16RefRelTol = 1e-6;

inline bool has_fp16() {
  uint32_t f = 0;
  nq_cpu_features_get(&f);
  return (f & NQ_CPU_AVX512FP16) != 0;
}

// What `isa` must compute for compute = F16: the fp16 path (AVX-512 FP16 or the scalar
// reference) or the fp32 kernels.
inline bool f16_semantics(nq_isa isa) { return isa == NQ_ISA_SCALAR || (isa >= NQ_ISA_AVX512_BF16 && has_fp16()); }

// out from a kernel at `isa` with compute = F16: every element written; fp16 semantics -> tight
// to the fp16 reference and within the fp16 bound of float64; the fp32 fallback -> within
// f32_tol of float64.
template <class R>
void expect_f16_accurate(const std::vector<float>& out, const std::vector<float>& ref, const std::vector<R>& exact,
                         nq_isa isa, double f32_tol, const std::string& at) {
  ASSERT_TRUE(all_finite(out)) << at;
  if (f16_semantics(isa)) {
    EXPECT_LT(rel_error(out, ref), kF16RefRelTol) << at;
    EXPECT_LT(rel_error(out, exact), kF16RelTol) << at;
  } else {
    EXPECT_LT(rel_error(out, exact), f32_tol) << at;
  }
}

}  // namespace gemm_test
