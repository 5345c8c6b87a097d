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

}  // namespace gemm_test
