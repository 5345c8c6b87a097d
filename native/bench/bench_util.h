// Helpers shared by the benchmark binaries.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

// n standard-normal floats from a fixed seed: benchmarks run on data like the tests', never zeros.
inline std::vector<float> randn(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
