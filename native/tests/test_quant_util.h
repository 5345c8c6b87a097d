// Helpers shared by the quantization tests: ISA sweep, seeded data, poison fills.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "nativequant.h"

namespace qt {

// Every dispatch level this CPU can run, from the scalar reference up.
inline std::vector<nq_isa> isas() {
  nq_isa sup = NQ_ISA_SCALAR;
  nq_cpu_isa_supported(&sup);
  std::vector<nq_isa> out;
  for (int i = NQ_ISA_SCALAR; i <= sup; ++i) out.push_back(static_cast<nq_isa>(i));
  return out;
}

// Caps dispatch for one scope and restores the uncapped level afterwards.
struct IsaScope {
  explicit IsaScope(nq_isa isa) { EXPECT_EQ(nq_cpu_isa_set_max(isa), NQ_OK); }
  ~IsaScope() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

inline std::vector<float> randn(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::vector<float> randu(int64_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

inline std::vector<float> nan_filled(int64_t n) { return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()); }

inline bool contains(const char* haystack, const char* needle) { return std::strstr(haystack, needle) != nullptr; }

}  // namespace qt
