// Argument checks and the OpenMP block driver shared by the quantization ABI functions.
#pragma once

#include <omp.h>

#include <cstdint>

#include "core/error.h"
#include "core/overlap.h"
#include "cpu/cpu.h"

namespace nq::quant {

// Below this many elements a kernel runs on the calling thread (fork/join costs more).
constexpr int64_t kParallelMinElements = int64_t(1) << 16;

inline bool is_pow2_in(int64_t v, int64_t lo, int64_t hi) {
  return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Run f(b0, b1) -> first bad block or -1 over contiguous ranges of `blocks` blocks, one range
// per thread; returns the lowest bad block (deterministic whatever the thread count) or -1.
template <class F>
int64_t for_block_ranges(int64_t blocks, int64_t elements, F&& f) {
  int64_t bad = INT64_MAX;
#pragma omp parallel num_threads(nq::cpu::num_threads()) if (elements >= kParallelMinElements) \
    reduction(min : bad)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
    if (b0 < b1) {
      const int64_t r = f(b0, b1);
      if (r >= 0) bad = r;
    }
  }
  return bad == INT64_MAX ? -1 : bad;
}

}  // namespace nq::quant

// Shared argument checks of the ABI functions; `fn` is the public function name.
#define NQ_CHECK_POSITIVE(fn, v)                                                            \
  NQ_CHECK((v) > 0, NQ_ERR_INVALID_ARGUMENT, "%s: argument '%s' must be > 0, got %lld", fn, #v, \
           static_cast<long long>(v))

#define NQ_CHECK_NO_OVERLAP(fn, a, a_bytes, b, b_bytes)                                         \
  NQ_CHECK(!::nq::overlaps(a, a_bytes, b, b_bytes), NQ_ERR_OVERLAP,                      \
           "%s: buffers '%s' and '%s' overlap; outputs must not alias inputs or each other", fn, \
           #a, #b)

#define NQ_CHECK_BLOCKSIZE(fn, bs, lo, hi)                                                     \
  NQ_CHECK(::nq::quant::is_pow2_in(bs, lo, hi), NQ_ERR_INVALID_ARGUMENT,                        \
           "%s: argument '%s' must be a power of two in %d..%d, got %d", fn, #bs, lo, hi, (int)(bs))
