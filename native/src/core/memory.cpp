// 64-byte aligned native buffers with live/peak accounting (the memory promise:
// every run can say what its native tensors take).
#include <sys/mman.h>

#include <atomic>
#include <mutex>
#include <vector>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace {

constexpr uint64_t kAlign = 64;
// A header in front of each block remembers its size so free() can account for it.
struct alignas(kAlign) BlockHeader {
  uint64_t bytes;
  uint64_t magic;
};
static_assert(sizeof(BlockHeader) == kAlign, "header must keep the payload 64-byte aligned");
constexpr uint64_t kMagic = 0x4e51425546464552ull;  // "NQBUFFER"

// Large buffers (weights, activations, streamed kernel inputs) start on a 2 MiB boundary and ask for
// transparent huge pages: streaming 64M floats through 4 KiB pages measured 10-14% slower (page walks)
// on the target box, whose THP mode is `madvise`. Only virtual space is padded, not resident memory.
constexpr uint64_t kHugePage = uint64_t(2) << 20;
constexpr uint64_t kHugeFrom = uint64_t(4) << 20;

std::atomic<uint64_t> g_live{0}, g_peak{0}, g_buffers{0}, g_allocs{0};

void raise_peak(uint64_t live) {
  uint64_t peak = g_peak.load(std::memory_order_relaxed);
  while (live > peak && !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

// Bytes a block of `bytes` payload occupies: header and 64-byte rounding, and whole huge pages for large
// blocks, so blocks of nearby sizes share one size for reuse.
uint64_t block_total(uint64_t bytes) {
  const uint64_t total = (bytes + sizeof(BlockHeader) + kAlign - 1) / kAlign * kAlign;
  return total < kHugeFrom ? total : (total + kHugePage - 1) / kHugePage * kHugePage;
}

// Freed large blocks kept for the next allocation of the same size: a training step allocates and frees the
// same large activations every step, and a fresh block costs page faults that zero every huge page again
// (3.3% of a GPT-2-small QLoRA step's CPU time for the 49 MiB head scratch alone). Kept blocks never take the
// process above the reported high-water mark: live + kept <= peak, counted in payload bytes as both are.
struct Kept {
  uint64_t total, bytes;  // block size, payload it last held
  void* raw;
};
std::mutex g_cache_mu;
std::vector<Kept> g_cache;  // oldest first
uint64_t g_cached = 0;      // sum of the kept blocks' payload bytes

// Frees kept blocks, oldest first, until live + kept + extra <= limit; returns the block bytes freed. Holds
// g_cache_mu.
uint64_t evict_locked(uint64_t extra, uint64_t limit) {
  const uint64_t live = g_live.load(std::memory_order_relaxed);
  uint64_t released = 0;
  size_t n = 0;
  for (; n < g_cache.size() && live + g_cached + extra > limit; ++n) {
    g_cached -= g_cache[n].bytes;
    released += g_cache[n].total;
    std::free(g_cache[n].raw);
  }
  g_cache.erase(g_cache.begin(), g_cache.begin() + ptrdiff_t(n));
  return released;
}

void* allocate(uint64_t bytes) {
  const uint64_t total = block_total(bytes);
  if (total < kHugeFrom) return std::aligned_alloc(kAlign, total);
  {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    for (size_t i = g_cache.size(); i-- > 0;)  // newest first: its lines are likeliest still in cache
      if (g_cache[i].total == total) {
        void* raw = g_cache[i].raw;
        g_cached -= g_cache[i].bytes;
        g_cache.erase(g_cache.begin() + ptrdiff_t(i));
        return raw;
      }
    evict_locked(bytes, g_peak.load(std::memory_order_relaxed));  // a new block must not sit beside idle ones
  }
  void* raw = nullptr;
  if (posix_memalign(&raw, kHugePage, total) != 0) return nullptr;
  madvise(raw, total, MADV_HUGEPAGE);  // advice only: without THP the buffer keeps 4 KiB pages
  return raw;
}

// Keeps a large block of `bytes` payload for reuse when live + kept stays within the peak, else frees it.
// g_live already dropped.
void release(void* raw, uint64_t bytes) {
  const uint64_t total = block_total(bytes);
  if (total >= kHugeFrom) {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    if (g_live.load(std::memory_order_relaxed) + g_cached + bytes <= g_peak.load(std::memory_order_relaxed)) {
      g_cache.push_back({total, bytes, raw});
      g_cached += bytes;
      return;
    }
  }
  std::free(raw);
}

}  // namespace

extern "C" {

NQ_API nq_status nq_buffer_alloc(uint64_t bytes, void** out_ptr) {
  NQ_CHECK_NOT_NULL("nq_buffer_alloc", out_ptr);
  *out_ptr = nullptr;
  NQ_CHECK(bytes > 0 && bytes <= (uint64_t(1) << 46), NQ_ERR_INVALID_ARGUMENT,
           "nq_buffer_alloc: argument 'bytes' must be in 1..2^46, got %llu",
           static_cast<unsigned long long>(bytes));
  void* raw = allocate(bytes);
  NQ_CHECK(raw != nullptr, NQ_ERR_OUT_OF_MEMORY, "nq_buffer_alloc: could not allocate %llu bytes",
           static_cast<unsigned long long>(bytes));
  auto* h = static_cast<BlockHeader*>(raw);
  h->bytes = bytes;
  h->magic = kMagic;
  raise_peak(g_live.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  g_buffers.fetch_add(1, std::memory_order_relaxed);
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  *out_ptr = h + 1;
  return NQ_OK;
}

NQ_API nq_status nq_buffer_free(void* ptr) {
  if (ptr == nullptr) return NQ_OK;
  NQ_CHECK(reinterpret_cast<uintptr_t>(ptr) % kAlign == 0, NQ_ERR_INVALID_ARGUMENT,
           "nq_buffer_free: argument 'ptr' was not returned by nq_buffer_alloc");
  auto* h = static_cast<BlockHeader*>(ptr) - 1;
  NQ_CHECK(h->magic == kMagic, NQ_ERR_INVALID_ARGUMENT,
           "nq_buffer_free: argument 'ptr' was not returned by nq_buffer_alloc (or freed twice)");
  h->magic = 0;
  g_live.fetch_sub(h->bytes, std::memory_order_relaxed);
  g_buffers.fetch_sub(1, std::memory_order_relaxed);
  release(h, h->bytes);
  return NQ_OK;
}

NQ_API nq_status nq_memory_stats_get(nq_memory_stats* out_stats) {
  NQ_CHECK_NOT_NULL("nq_memory_stats_get", out_stats);
  out_stats->live_bytes = g_live.load();
  out_stats->peak_bytes = g_peak.load();
  out_stats->live_buffers = g_buffers.load();
  out_stats->total_allocs = g_allocs.load();
  return NQ_OK;
}

NQ_API nq_status nq_memory_peak_reset(void) {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  g_peak.store(g_live.load());
  evict_locked(0, g_peak.load());  // kept blocks must fit under the new peak: none do
  return NQ_OK;
}

NQ_API nq_status nq_memory_cache_trim(uint64_t* out_released_bytes) {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  const uint64_t released = evict_locked(0, 0);
  if (out_released_bytes != nullptr) *out_released_bytes = released;
  return NQ_OK;
}

}  // extern "C"

static_assert(sizeof(nq_memory_stats) == 32, "nq_memory_stats layout is part of the ABI");
