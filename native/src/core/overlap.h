// Byte-range overlap test for argument validation (NQ_ERR_OVERLAP checks in every ABI family).
#pragma once

#include <cstdint>

namespace nq {

// True when [a, a + a_bytes) and [b, b + b_bytes) share a byte; false when either pointer is null.
inline bool overlaps(const void* a, uint64_t a_bytes, const void* b, uint64_t b_bytes) {
  if (a == nullptr || b == nullptr) return false;
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

}  // namespace nq
