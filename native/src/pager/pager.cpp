// The pager: optimizer state larger than a memory budget, backed by one unnamed file.
//
// Design (chosen over an explicit pread/pwrite slot pool): every buffer is a MAP_SHARED
// mapping of its own page-aligned region of the file, so an acquired range of any size
// is one contiguous pointer and the kernel does the I/O. We own the residency policy:
// a page is resident from the first acquire/prefetch until we evict it; eviction is
// msync(MS_SYNC) (write back), MADV_DONTNEED (drop our mapping) and POSIX_FADV_DONTNEED
// (drop the now-clean page cache), so the RAM is really returned, not just forgotten.
// Resident unpinned pages sit on an intrusive LRU list; pinned pages are off it and can
// never be victims. Disk space is reserved with posix_fallocate at allocation time,
// because a write fault into a hole on a full disk would raise SIGBUS instead of
// returning a status.
#include "pager/pager.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

static_assert(sizeof(nq_pager_stats) == 64, "nq_pager_stats is 8 uint64 in the ABI");

namespace {

constexpr int32_t kNone = -1;

struct Page {
  int32_t buffer;       // owning buffer id
  int32_t pins = 0;     // outstanding acquires covering this page
  bool resident = false;
  int32_t prev = kNone, next = kNone;  // LRU links (resident and unpinned pages only)
};

struct Buffer {
  uint64_t bytes = 0, mapped_bytes = 0, file_offset = 0;
  uint8_t* base = nullptr;
  int32_t first_page = 0, num_pages = 0;
  bool live = false;
};

}  // namespace

struct nq_pager {
  mutable std::mutex mu;
  int fd = -1;
  uint64_t budget = 0, page = 0, budget_pages = 0;
  uint64_t file_end = 0;
  std::vector<Buffer> buffers;
  std::vector<Page> pages;
  std::vector<int32_t> victims;  // scratch for eviction, sized with `pages`
  int32_t lru_head = kNone, lru_tail = kNone;
  uint64_t lru_size = 0, resident_pages = 0, pinned_pages = 0, allocated_pages = 0;
  uint64_t evictions = 0, page_ins = 0;

  void lru_push(int32_t i) {
    Page& pg = pages[i];
    pg.prev = lru_tail;
    pg.next = kNone;
    (lru_tail == kNone ? lru_head : pages[lru_tail].next) = i;
    lru_tail = i;
    ++lru_size;
  }
  void lru_remove(int32_t i) {
    Page& pg = pages[i];
    (pg.prev == kNone ? lru_head : pages[pg.prev].next) = pg.next;
    (pg.next == kNone ? lru_tail : pages[pg.next].prev) = pg.prev;
    pg.prev = pg.next = kNone;
    --lru_size;
  }
  uint8_t* page_addr(int32_t i) const {
    const Buffer& b = buffers[pages[i].buffer];
    return b.base + uint64_t(i - b.first_page) * page;
  }
  uint64_t page_file_offset(int32_t i) const {
    const Buffer& b = buffers[pages[i].buffer];
    return b.file_offset + uint64_t(i - b.first_page) * page;
  }

  // Write back and drop `count` least recently used unpinned pages (count <= lru_size).
  // Victims are sorted so adjacent pages of a buffer go out in one system call each.
  nq_status evict(const char* fn, uint64_t count) {
    victims.clear();
    for (int32_t i = lru_head; i != kNone && victims.size() < count; i = pages[i].next) victims.push_back(i);
    std::sort(victims.begin(), victims.end());
    for (size_t a = 0; a < victims.size();) {
      size_t b = a + 1;
      while (b < victims.size() && victims[b] == victims[b - 1] + 1 &&
             pages[victims[b]].buffer == pages[victims[a]].buffer)
        ++b;
      uint8_t* addr = page_addr(victims[a]);
      const uint64_t len = uint64_t(b - a) * page;
      NQ_CHECK(msync(addr, len, MS_SYNC) == 0, NQ_ERR_IO, "%s: writing back %llu bytes of paged state failed: %s",
               fn, static_cast<unsigned long long>(len), std::strerror(errno));
      NQ_CHECK(madvise(addr, len, MADV_DONTNEED) == 0, NQ_ERR_IO, "%s: madvise(MADV_DONTNEED) failed: %s", fn,
               std::strerror(errno));
      // Only a hint (tmpfs ignores it); the data is safe in the file either way.
      posix_fadvise(fd, off_t(page_file_offset(victims[a])), off_t(len), POSIX_FADV_DONTNEED);
      for (size_t k = a; k < b; ++k) {
        lru_remove(victims[k]);
        pages[victims[k]].resident = false;
      }
      resident_pages -= b - a;
      evictions += b - a;
      a = b;
    }
    return NQ_OK;
  }

  // Validate (buffer, offset, bytes) and return its page range [p0, p1).
  nq_status range(const char* fn, int64_t buffer, uint64_t offset, uint64_t bytes, int32_t* p0, int32_t* p1) const {
    NQ_CHECK(buffer >= 0 && buffer < int64_t(buffers.size()) && buffers[buffer].live, NQ_ERR_INVALID_ARGUMENT,
             "%s: argument 'buffer' (%lld) is not a live buffer of this pager", fn, static_cast<long long>(buffer));
    const Buffer& b = buffers[buffer];
    NQ_CHECK(bytes > 0 && offset <= b.bytes && bytes <= b.bytes - offset, NQ_ERR_INVALID_ARGUMENT,
             "%s: range [offset %llu, +%llu bytes) must be non-empty and inside the buffer's %llu bytes", fn,
             static_cast<unsigned long long>(offset), static_cast<unsigned long long>(bytes),
             static_cast<unsigned long long>(b.bytes));
    *p0 = b.first_page + int32_t(offset / page);
    *p1 = b.first_page + int32_t((offset + bytes - 1) / page) + 1;
    return NQ_OK;
  }
};

namespace nq::pager {

uint64_t budget_bytes(const nq_pager* pager) { return pager->budget; }
uint64_t page_bytes(const nq_pager* pager) { return pager->page; }

nq_status buffer_bytes(const char* fn, const char* arg, nq_pager* pager, int64_t buffer, uint64_t* out_bytes) {
  std::lock_guard<std::mutex> lock(pager->mu);
  NQ_CHECK(buffer >= 0 && buffer < int64_t(pager->buffers.size()) && pager->buffers[buffer].live,
           NQ_ERR_INVALID_ARGUMENT, "%s: argument '%s' (%lld) is not a live buffer of the pager", fn, arg,
           static_cast<long long>(buffer));
  *out_bytes = pager->buffers[buffer].bytes;
  return NQ_OK;
}

}  // namespace nq::pager

namespace {

// An unnamed file in `dir`: O_TMPFILE where the filesystem has it, else create + unlink.
int open_unnamed(const char* dir) {
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd;
  std::string path = std::string(dir) + "/nq-pager-XXXXXX";
  fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd >= 0) unlink(path.c_str());
  return fd;
}

}  // namespace

extern "C" {

NQ_API nq_status nq_pager_create(uint64_t budget_bytes, uint64_t page_bytes, const char* dir,
                                 nq_pager** out_pager) {
  static constexpr const char* fn = "nq_pager_create";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, out_pager);
    *out_pager = nullptr;
    NQ_CHECK_NOT_NULL(fn, dir);
    const uint64_t os_page = uint64_t(sysconf(_SC_PAGESIZE));
    NQ_CHECK(page_bytes >= os_page && page_bytes <= (uint64_t(1) << 30) && (page_bytes & (page_bytes - 1)) == 0,
             NQ_ERR_INVALID_ARGUMENT,
             "%s: argument 'page_bytes' must be a power of two in %llu..2^30 (the OS page size up to 1 GiB), got %llu",
             fn, static_cast<unsigned long long>(os_page), static_cast<unsigned long long>(page_bytes));
    NQ_CHECK(budget_bytes >= page_bytes, NQ_ERR_INVALID_ARGUMENT,
             "%s: argument 'budget_bytes' (%llu) must be >= page_bytes (%llu)", fn,
             static_cast<unsigned long long>(budget_bytes), static_cast<unsigned long long>(page_bytes));
    const int fd = open_unnamed(dir);
    NQ_CHECK(fd >= 0, NQ_ERR_IO, "%s: cannot create a backing file in directory '%s' (argument 'dir'): %s", fn,
             dir, std::strerror(errno));
    auto* p = new (std::nothrow) nq_pager();
    if (p == nullptr) {
      close(fd);
      return nq::fail(NQ_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
    }
    p->fd = fd;
    p->budget = budget_bytes;
    p->page = page_bytes;
    p->budget_pages = budget_bytes / page_bytes;
    *out_pager = p;
    return NQ_OK;
  });
}

NQ_API nq_status nq_pager_destroy(nq_pager* pager) {
  if (pager == nullptr) return NQ_OK;
  for (const Buffer& b : pager->buffers)
    if (b.live) munmap(b.base, b.mapped_bytes);
  close(pager->fd);
  delete pager;
  return NQ_OK;
}

NQ_API nq_status nq_pager_alloc(nq_pager* pager, uint64_t bytes, int64_t* out_buffer) {
  static constexpr const char* fn = "nq_pager_alloc";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, pager);
    NQ_CHECK_NOT_NULL(fn, out_buffer);
    *out_buffer = -1;
    NQ_CHECK(bytes > 0 && bytes <= (uint64_t(1) << 46), NQ_ERR_INVALID_ARGUMENT,
             "%s: argument 'bytes' must be in 1..2^46, got %llu", fn, static_cast<unsigned long long>(bytes));
    std::lock_guard<std::mutex> lock(pager->mu);
    const uint64_t mapped = (bytes + pager->page - 1) / pager->page * pager->page;
    NQ_CHECK(pager->pages.size() + mapped / pager->page < uint64_t(INT32_MAX), NQ_ERR_INVALID_ARGUMENT,
             "%s: too many pages; use a larger page_bytes", fn);
    // Reserve after the existing vectors grow, so a failure below leaves no stale mapping.
    pager->buffers.reserve(pager->buffers.size() + 1);
    pager->pages.reserve(pager->pages.size() + mapped / pager->page);
    pager->victims.reserve(pager->pages.capacity());
    const int err = posix_fallocate(pager->fd, off_t(pager->file_end), off_t(mapped));
    NQ_CHECK(err == 0, NQ_ERR_IO, "%s: cannot reserve %llu bytes of disk for paged state: %s", fn,
             static_cast<unsigned long long>(mapped), std::strerror(err));
    void* base = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, pager->fd, off_t(pager->file_end));
    NQ_CHECK(base != MAP_FAILED, NQ_ERR_OUT_OF_MEMORY, "%s: cannot map %llu bytes: %s", fn,
             static_cast<unsigned long long>(mapped), std::strerror(errno));
    Buffer b;
    b.bytes = bytes;
    b.mapped_bytes = mapped;
    b.file_offset = pager->file_end;
    b.base = static_cast<uint8_t*>(base);
    b.first_page = int32_t(pager->pages.size());
    b.num_pages = int32_t(mapped / pager->page);
    b.live = true;
    const int32_t id = int32_t(pager->buffers.size());
    pager->buffers.push_back(b);
    for (int32_t k = 0; k < b.num_pages; ++k) pager->pages.push_back(Page{id});
    pager->file_end += mapped;
    pager->allocated_pages += uint64_t(b.num_pages);
    *out_buffer = id;
    return NQ_OK;
  });
}

NQ_API nq_status nq_pager_free(nq_pager* pager, int64_t buffer) {
  static constexpr const char* fn = "nq_pager_free";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, pager);
    std::lock_guard<std::mutex> lock(pager->mu);
    int32_t p0 = 0, p1 = 0;
    if (buffer >= 0 && buffer < int64_t(pager->buffers.size()) && pager->buffers[buffer].live) {
      p0 = pager->buffers[buffer].first_page;
      p1 = p0 + pager->buffers[buffer].num_pages;
    } else {
      return nq::fail(NQ_ERR_INVALID_ARGUMENT, "%s: argument 'buffer' (%lld) is not a live buffer of this pager",
                      fn, static_cast<long long>(buffer));
    }
    for (int32_t i = p0; i < p1; ++i)
      NQ_CHECK(pager->pages[i].pins == 0, NQ_ERR_INVALID_ARGUMENT,
               "%s: argument 'buffer' (%lld) still has acquired ranges; release them first", fn,
               static_cast<long long>(buffer));
    for (int32_t i = p0; i < p1; ++i) {
      if (!pager->pages[i].resident) continue;
      pager->lru_remove(i);
      pager->pages[i].resident = false;
      --pager->resident_pages;
    }
    Buffer& b = pager->buffers[buffer];
    munmap(b.base, b.mapped_bytes);
    // Give the disk back; a filesystem without hole punching just keeps the blocks.
    fallocate(pager->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(b.file_offset), off_t(b.mapped_bytes));
    b.live = false;
    b.base = nullptr;
    pager->allocated_pages -= uint64_t(b.num_pages);
    return NQ_OK;
  });
}

NQ_API nq_status nq_pager_acquire(nq_pager* pager, int64_t buffer, uint64_t offset, uint64_t bytes,
                                  void** out_ptr) {
  static constexpr const char* fn = "nq_pager_acquire";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, pager);
    NQ_CHECK_NOT_NULL(fn, out_ptr);
    *out_ptr = nullptr;
    std::lock_guard<std::mutex> lock(pager->mu);
    int32_t p0 = 0, p1 = 0;
    if (nq_status s = pager->range(fn, buffer, offset, bytes, &p0, &p1); s != NQ_OK) return s;
    uint64_t newly_pinned = 0, need_in = 0;
    for (int32_t i = p0; i < p1; ++i) {
      newly_pinned += pager->pages[i].pins == 0;
      need_in += !pager->pages[i].resident;
    }
    NQ_CHECK(pager->pinned_pages + newly_pinned <= pager->budget_pages, NQ_ERR_OUT_OF_MEMORY,
             "%s: pinning %llu more bytes would exceed the budget of %llu bytes (%llu already pinned)", fn,
             static_cast<unsigned long long>(newly_pinned * pager->page),
             static_cast<unsigned long long>(pager->budget),
             static_cast<unsigned long long>(pager->pinned_pages * pager->page));
    // Pin first so the range's own resident pages cannot be chosen as victims.
    for (int32_t i = p0; i < p1; ++i) {
      Page& pg = pager->pages[i];
      if (pg.resident && pg.pins == 0) pager->lru_remove(i);
      ++pg.pins;
    }
    pager->pinned_pages += newly_pinned;
    const uint64_t after = pager->resident_pages + need_in;
    nq_status s = after > pager->budget_pages ? pager->evict(fn, after - pager->budget_pages) : NQ_OK;
    if (s == NQ_OK) {
      for (int32_t i = p0; i < p1; ++i) {
        Page& pg = pager->pages[i];
        if (pg.resident) continue;
        pg.resident = true;
        ++pager->resident_pages;
        ++pager->page_ins;
      }
      // Fault the range in now (one call) rather than page by page inside the kernel loop.
      uint8_t* first = pager->page_addr(p0);
      const uint64_t len = uint64_t(p1 - p0) * pager->page;
      if (need_in > 0 && madvise(first, len, MADV_POPULATE_WRITE) != 0 && errno != EINVAL)
        s = nq::fail(NQ_ERR_IO, "%s: reading paged state back failed: %s", fn, std::strerror(errno));
    }
    if (s != NQ_OK) {  // roll the pins back; pages stay consistent (resident ones rejoin the LRU)
      for (int32_t i = p0; i < p1; ++i) {
        Page& pg = pager->pages[i];
        if (--pg.pins == 0 && pg.resident) pager->lru_push(i);
      }
      pager->pinned_pages -= newly_pinned;
      return s;
    }
    *out_ptr = pager->buffers[buffer].base + offset;
    return NQ_OK;
  });
}

NQ_API nq_status nq_pager_release(nq_pager* pager, int64_t buffer, uint64_t offset, uint64_t bytes) {
  static constexpr const char* fn = "nq_pager_release";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, pager);
    std::lock_guard<std::mutex> lock(pager->mu);
    int32_t p0 = 0, p1 = 0;
    if (nq_status s = pager->range(fn, buffer, offset, bytes, &p0, &p1); s != NQ_OK) return s;
    for (int32_t i = p0; i < p1; ++i)
      NQ_CHECK(pager->pages[i].pins > 0, NQ_ERR_INVALID_ARGUMENT,
               "%s: range [offset %llu, +%llu bytes) of buffer %lld was not acquired", fn,
               static_cast<unsigned long long>(offset), static_cast<unsigned long long>(bytes),
               static_cast<long long>(buffer));
    for (int32_t i = p0; i < p1; ++i) {
      Page& pg = pager->pages[i];
      if (--pg.pins > 0) continue;
      --pager->pinned_pages;
      pager->lru_push(i);  // pinned pages are always resident
    }
    return NQ_OK;
  });
}

NQ_API nq_status nq_pager_prefetch(nq_pager* pager, int64_t buffer, uint64_t offset, uint64_t bytes) {
  static constexpr const char* fn = "nq_pager_prefetch";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_NOT_NULL(fn, pager);
    std::lock_guard<std::mutex> lock(pager->mu);
    int32_t p0 = 0, p1 = 0;
    if (nq_status s = pager->range(fn, buffer, offset, bytes, &p0, &p1); s != NQ_OK) return s;
    uint64_t need_in = 0, own_lru = 0;
    for (int32_t i = p0; i < p1; ++i) {
      Page& pg = pager->pages[i];
      if (!pg.resident) {
        ++need_in;
      } else if (pg.pins == 0) {  // about to be used: most recently used
        pager->lru_remove(i);
        pager->lru_push(i);
        ++own_lru;
      }
    }
    // Room = free budget + evictable pages other than the range's own (just moved to the
    // LRU tail; evicting them to make room for their neighbours would be pointless).
    const uint64_t free_pages = pager->budget_pages - pager->resident_pages;
    const uint64_t evictable = pager->lru_size - own_lru;
    const uint64_t take = std::min(need_in, free_pages + evictable);
    if (take > free_pages)
      if (nq_status s = pager->evict(fn, take - free_pages); s != NQ_OK) return s;
    uint64_t taken = 0;
    for (int32_t i = p0; i < p1 && taken < take; ++i) {
      Page& pg = pager->pages[i];
      if (pg.resident) continue;
      pg.resident = true;
      ++pager->resident_pages;
      ++pager->page_ins;
      pager->lru_push(i);
      madvise(pager->page_addr(i), pager->page, MADV_WILLNEED);  // a hint: failure is harmless
      ++taken;
    }
    return NQ_OK;
  });
}

NQ_API nq_status nq_pager_stats_get(const nq_pager* pager, nq_pager_stats* out_stats) {
  static constexpr const char* fn = "nq_pager_stats_get";
  NQ_CHECK_NOT_NULL(fn, pager);
  NQ_CHECK_NOT_NULL(fn, out_stats);
  const nq_pager* p = pager;
  std::lock_guard<std::mutex> lock(p->mu);
  out_stats->budget_bytes = p->budget;
  out_stats->page_bytes = p->page;
  out_stats->allocated_bytes = p->allocated_pages * p->page;
  out_stats->resident_bytes = p->resident_pages * p->page;
  out_stats->pinned_bytes = p->pinned_pages * p->page;
  out_stats->paged_out_bytes = (p->allocated_pages - p->resident_pages) * p->page;
  out_stats->evictions = p->evictions;
  out_stats->page_ins = p->page_ins;
  return NQ_OK;
}

}  // extern "C"
