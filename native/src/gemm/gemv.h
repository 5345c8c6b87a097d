// Row-parallel driver shared by the packing-free GEMV kernels (M <= 4) and the serial
// cut-off shared with the blocked driver: below kSerialWorkBytes of streamed operand bytes
// (weights x rows of X) a product runs on the calling thread, because waking a passive
// OpenMP worker costs ~50-100 us on a quiet machine and a scheduler tick (4 ms) on a loaded
// one, more than splitting a ~100 us product saves.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "cpu/cpu.h"

namespace nq::gemm {

constexpr int64_t kSerialWorkBytes = int64_t(4) << 20;

// Threads for a product that streams `work_bytes`: 1 below the cut-off, and 1 inside a parallel region
// (a caller that splits its own work over threads runs each share's products serially: nested regions
// get one thread, and the drivers split work by the thread count they ask for).
inline int threads_for(int64_t work_bytes) {
  return work_bytes < kSerialWorkBytes || omp_in_parallel() ? 1 : nq::cpu::num_threads();
}

// rows(j0, j1) over a static split of [0, n); each thread streams a contiguous run of W rows.
template <class F>
void for_row_ranges(int64_t n, int64_t work_bytes, const F& rows) {
  const int nt = int(std::min<int64_t>(threads_for(work_bytes), n));
  if (nt <= 1) return rows(int64_t(0), n);
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    rows(n * t / team, n * (t + 1) / team);
  }
}

}  // namespace nq::gemm
