// Per-thread scratch for packed panels and small per-call statistics. Each slot grows to
// the largest request seen on its thread and is then reused, so steady-state calls do not
// allocate; memory is released when the thread exits.
#pragma once

#include <cstddef>

namespace nq::gemm {

enum ArenaSlot : int {
  kSlotB = 0,       // packed B block (KC x NC)
  kSlotA = 1,       // packed A micro-panel (MR x KC)
  kSlotC = 2,       // edge tile (MR x NR)
  kSlotStats0 = 3,  // caller-side per-call scratch (row scales, outlier lists, ...)
  kSlotStats1 = 4,
  kSlotStats2 = 5,
  kSlotAShared = 6, // packed A for every thread of a run_gemm region (the calling thread's)
  kSlotCount = 7,
};

// 64-byte aligned; throws std::bad_alloc on failure (callers run under nq::guard).
void* arena_get(ArenaSlot slot, size_t bytes);

}  // namespace nq::gemm
