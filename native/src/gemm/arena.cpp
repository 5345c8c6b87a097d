#include "gemm/arena.h"

#include <cstdlib>
#include <new>

namespace nq::gemm {
namespace {

struct Arena {
  void* ptr[kSlotCount] = {};
  size_t size[kSlotCount] = {};
  ~Arena() {
    for (void* p : ptr) std::free(p);
  }
};

thread_local Arena t_arena;

}  // namespace

void* arena_get(ArenaSlot slot, size_t bytes) {
  Arena& a = t_arena;
  if (bytes > a.size[slot]) {
    const size_t rounded = (bytes + 4095) & ~size_t(4095);
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) throw std::bad_alloc();
    std::free(a.ptr[slot]);
    a.ptr[slot] = p;
    a.size[slot] = rounded;
  }
  return a.ptr[slot];
}

}  // namespace nq::gemm
