// Pager: data survives eviction, the budget holds, eviction really drops memory, bad input.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include "nativequant.h"

namespace {

constexpr uint64_t kPage = 4096;
const char* kDir = "/tmp";

struct Pager {
  nq_pager* p = nullptr;
  Pager(uint64_t budget, uint64_t page) { EXPECT_EQ(nq_pager_create(budget, page, kDir, &p), NQ_OK) << nq_last_error_message(); }
  ~Pager() { nq_pager_destroy(p); }
  nq_pager_stats stats() const {
    nq_pager_stats s{};
    EXPECT_EQ(nq_pager_stats_get(p, &s), NQ_OK);
    return s;
  }
};

void expect_error(nq_status got, nq_status want, const char* needle) {
  EXPECT_EQ(got, want) << nq_last_error_message();
  EXPECT_NE(std::strstr(nq_last_error_message(), needle), nullptr)
      << "message '" << nq_last_error_message() << "' should mention '" << needle << "'";
}

}  // namespace

TEST(Pager, DataSurvivesEvictionWithinBudget) {
  Pager pg(4 * kPage, kPage);
  const uint64_t bytes = 10 * kPage + 123;
  int64_t a = -1, b = -1;
  ASSERT_EQ(nq_pager_alloc(pg.p, bytes, &a), NQ_OK);
  ASSERT_EQ(nq_pager_alloc(pg.p, bytes, &b), NQ_OK);
  std::mt19937_64 rng(5);
  std::vector<uint8_t> want_a(bytes), want_b(bytes);
  for (auto& x : want_a) x = uint8_t(rng());
  for (auto& x : want_b) x = uint8_t(rng());
  // Write in pieces of 1.5 pages (ranges straddle page boundaries), interleaving buffers.
  const uint64_t piece = kPage * 3 / 2;
  for (uint64_t off = 0; off < bytes; off += piece) {
    const uint64_t len = std::min(piece, bytes - off);
    for (auto [id, want] : {std::pair{a, &want_a}, std::pair{b, &want_b}}) {
      void* ptr = nullptr;
      ASSERT_EQ(nq_pager_acquire(pg.p, id, off, len, &ptr), NQ_OK) << nq_last_error_message();
      const uint8_t* fresh = static_cast<uint8_t*>(ptr);
      for (uint64_t i = 0; i < len; ++i) ASSERT_EQ(fresh[i], 0) << "buffers start zero-filled";
      std::memcpy(ptr, want->data() + off, len);
      ASSERT_EQ(nq_pager_release(pg.p, id, off, len), NQ_OK);
      EXPECT_LE(pg.stats().resident_bytes, 4 * kPage);
    }
  }
  for (uint64_t off = 0; off < bytes; off += piece) {
    const uint64_t len = std::min(piece, bytes - off);
    for (auto [id, want] : {std::pair{a, &want_a}, std::pair{b, &want_b}}) {
      void* ptr = nullptr;
      ASSERT_EQ(nq_pager_acquire(pg.p, id, off, len, &ptr), NQ_OK);
      EXPECT_EQ(std::memcmp(ptr, want->data() + off, len), 0) << "buffer " << id << " offset " << off;
      ASSERT_EQ(nq_pager_release(pg.p, id, off, len), NQ_OK);
    }
  }
  const nq_pager_stats s = pg.stats();
  EXPECT_EQ(s.allocated_bytes, 2 * 11 * kPage);
  EXPECT_LE(s.resident_bytes, s.budget_bytes);
  EXPECT_EQ(s.paged_out_bytes, s.allocated_bytes - s.resident_bytes);
  EXPECT_GE(s.evictions, 2 * 11 * 2 - 4u);  // every page went out at least twice but the last 4
  EXPECT_GE(s.page_ins, 2 * 11 * 2u);
  EXPECT_EQ(s.pinned_bytes, 0u);
}

TEST(Pager, EvictedPagesLeaveMemoryAndPrefetchBringsThemBack) {
  Pager pg(2 * kPage, kPage);
  int64_t a = -1;
  ASSERT_EQ(nq_pager_alloc(pg.p, 4 * kPage, &a), NQ_OK);
  void* base = nullptr;
  for (uint64_t k = 0; k < 4; ++k) {
    void* ptr = nullptr;
    ASSERT_EQ(nq_pager_acquire(pg.p, a, k * kPage, kPage, &ptr), NQ_OK);
    std::memset(ptr, int(k + 1), kPage);
    if (k == 0) base = ptr;
    ASSERT_EQ(nq_pager_release(pg.p, a, k * kPage, kPage), NQ_OK);
  }
  // Pages 0 and 1 were evicted: the kernel must not hold them (written back, dropped).
  unsigned char vec[4] = {};
  ASSERT_EQ(mincore(base, 4 * kPage, vec), 0);
  EXPECT_EQ(vec[0] & 1, 0) << "evicted page still resident";
  EXPECT_EQ(vec[1] & 1, 0) << "evicted page still resident";
  const uint64_t ins = pg.stats().page_ins;
  ASSERT_EQ(nq_pager_prefetch(pg.p, a, 0, kPage), NQ_OK);
  EXPECT_EQ(pg.stats().page_ins, ins + 1);
  void* ptr = nullptr;
  ASSERT_EQ(nq_pager_acquire(pg.p, a, 0, kPage, &ptr), NQ_OK);
  EXPECT_EQ(pg.stats().page_ins, ins + 1) << "a prefetched page is not paged in again";
  EXPECT_EQ(static_cast<uint8_t*>(ptr)[kPage - 1], 1);
  ASSERT_EQ(nq_pager_release(pg.p, a, 0, kPage), NQ_OK);
}

TEST(Pager, RejectsBadInput) {
  nq_pager* p = nullptr;
  expect_error(nq_pager_create(1 << 20, 4096, "/nonexistent/dir", &p), NQ_ERR_IO, "/nonexistent/dir");
  expect_error(nq_pager_create(1 << 20, 5000, kDir, &p), NQ_ERR_INVALID_ARGUMENT, "page_bytes");
  expect_error(nq_pager_create(1024, 4096, kDir, &p), NQ_ERR_INVALID_ARGUMENT, "budget_bytes");
  expect_error(nq_pager_create(1 << 20, 4096, nullptr, &p), NQ_ERR_NULL_POINTER, "dir");
  Pager pg(2 * kPage, kPage);
  int64_t a = -1;
  expect_error(nq_pager_alloc(pg.p, 0, &a), NQ_ERR_INVALID_ARGUMENT, "bytes");
  ASSERT_EQ(nq_pager_alloc(pg.p, 8 * kPage, &a), NQ_OK);
  void* ptr = nullptr;
  expect_error(nq_pager_acquire(pg.p, a, 0, 3 * kPage, &ptr), NQ_ERR_OUT_OF_MEMORY, "budget");
  expect_error(nq_pager_acquire(pg.p, a, 8 * kPage - 10, 11, &ptr), NQ_ERR_INVALID_ARGUMENT, "inside");
  expect_error(nq_pager_acquire(pg.p, 7, 0, 1, &ptr), NQ_ERR_INVALID_ARGUMENT, "buffer");
  expect_error(nq_pager_release(pg.p, a, 0, 1), NQ_ERR_INVALID_ARGUMENT, "not acquired");
  ASSERT_EQ(nq_pager_acquire(pg.p, a, 0, 2 * kPage, &ptr), NQ_OK);
  expect_error(nq_pager_free(pg.p, a), NQ_ERR_INVALID_ARGUMENT, "release");
  ASSERT_EQ(nq_pager_release(pg.p, a, 0, 2 * kPage), NQ_OK);
  ASSERT_EQ(nq_pager_free(pg.p, a), NQ_OK);
  expect_error(nq_pager_acquire(pg.p, a, 0, 1, &ptr), NQ_ERR_INVALID_ARGUMENT, "buffer");
  EXPECT_EQ(pg.stats().allocated_bytes, 0u);
  EXPECT_EQ(pg.stats().resident_bytes, 0u);
}

// Disk full, simulated with a file-size limit: the failure surfaces at allocation as a
// status, never as SIGBUS on a later write fault.
TEST(Pager, DiskFullIsAStatusAtAllocation) {
  Pager pg(4 * kPage, kPage);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 16 * kPage;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  int64_t a = -1, b = -1;
  const nq_status ok = nq_pager_alloc(pg.p, 8 * kPage, &a);
  const nq_status full = nq_pager_alloc(pg.p, 64 * kPage, &b);
  const std::string msg = nq_last_error_message();
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);
  EXPECT_EQ(ok, NQ_OK);
  EXPECT_EQ(full, NQ_ERR_IO);
  EXPECT_EQ(b, -1);
  EXPECT_NE(msg.find("disk"), std::string::npos) << msg;
  void* ptr = nullptr;  // the pager stays usable
  ASSERT_EQ(nq_pager_acquire(pg.p, a, 0, kPage, &ptr), NQ_OK);
  ASSERT_EQ(nq_pager_release(pg.p, a, 0, kPage), NQ_OK);
}
