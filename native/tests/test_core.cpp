// Core ABI: errors, version, dispatch cap, threads, memory accounting.
#include <gtest/gtest.h>

#include <cstring>

#include "nativequant.h"

TEST(Core, VersionAndStatusNames) {
  int32_t a = -1, b = -1, c = -1;
  ASSERT_EQ(nq_version_get(&a, &b, &c), NQ_OK);
  EXPECT_EQ(a, 0);
  EXPECT_GE(b, 1);
  EXPECT_STREQ(nq_status_name(NQ_ERR_SHAPE), "NQ_ERR_SHAPE");
}

TEST(Core, NullArgumentNamesTheArgument) {
  EXPECT_EQ(nq_version_get(nullptr, nullptr, nullptr), NQ_ERR_NULL_POINTER);
  EXPECT_NE(std::strstr(nq_last_error_message(), "major"), nullptr) << nq_last_error_message();
}

TEST(Core, IsaCapIsRespectedAndRestorable) {
  nq_isa sup, cur;
  ASSERT_EQ(nq_cpu_isa_supported(&sup), NQ_OK);
  EXPECT_GE(sup, NQ_ISA_AVX2) << "the library requires AVX2";
  ASSERT_EQ(nq_cpu_isa_set_max(NQ_ISA_SCALAR), NQ_OK);
  ASSERT_EQ(nq_cpu_isa_get(&cur), NQ_OK);
  EXPECT_EQ(cur, NQ_ISA_SCALAR);
  ASSERT_EQ(nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16), NQ_OK);
  ASSERT_EQ(nq_cpu_isa_get(&cur), NQ_OK);
  EXPECT_EQ(cur, sup);
  EXPECT_EQ(nq_cpu_isa_set_max(static_cast<nq_isa>(9)), NQ_ERR_INVALID_ARGUMENT);
}

TEST(Core, ThreadsValidated) {
  int32_t n = 0;
  ASSERT_EQ(nq_threads_get(&n), NQ_OK);
  EXPECT_GE(n, 1);
  EXPECT_EQ(nq_threads_set(0), NQ_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(nq_threads_set(n), NQ_OK);
}

TEST(Core, MemoryAccountingTracksLiveAndPeak) {
  nq_memory_stats before{}, during{}, after{};
  ASSERT_EQ(nq_memory_stats_get(&before), NQ_OK);
  void* p = nullptr;
  ASSERT_EQ(nq_buffer_alloc(1000, &p), NQ_OK);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  std::memset(p, 0xab, 1000);
  ASSERT_EQ(nq_memory_stats_get(&during), NQ_OK);
  EXPECT_EQ(during.live_bytes, before.live_bytes + 1000);
  EXPECT_GE(during.peak_bytes, during.live_bytes);
  ASSERT_EQ(nq_buffer_free(p), NQ_OK);
  ASSERT_EQ(nq_memory_stats_get(&after), NQ_OK);
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_EQ(nq_buffer_alloc(0, &p), NQ_ERR_INVALID_ARGUMENT);
}

// Buffers of 4 MiB and more are huge-page candidates: their block starts on a 2 MiB boundary (the 64-byte
// header sits in front of the payload), and accounting and alignment are unchanged.
TEST(Core, LargeBuffersStartOnAHugePageBoundary) {
  nq_memory_stats before{}, during{};
  ASSERT_EQ(nq_memory_stats_get(&before), NQ_OK);
  const uint64_t bytes = (uint64_t(8) << 20) + 12345;
  void* p = nullptr;
  ASSERT_EQ(nq_buffer_alloc(bytes, &p), NQ_OK);
  EXPECT_EQ((reinterpret_cast<uintptr_t>(p) - 64) % (uintptr_t(2) << 20), 0u);
  std::memset(p, 0x5a, bytes);
  EXPECT_EQ(static_cast<unsigned char*>(p)[bytes - 1], 0x5a);
  ASSERT_EQ(nq_memory_stats_get(&during), NQ_OK);
  EXPECT_EQ(during.live_bytes, before.live_bytes + bytes);
  ASSERT_EQ(nq_buffer_free(p), NQ_OK);
}

// Freed large buffers are kept for an allocation of the same size (no fresh page faults), but only while live +
// kept <= peak: they never take native memory above the reported high-water mark.
TEST(Core, FreedLargeBuffersAreReusedWithinThePeak) {
  ASSERT_EQ(nq_memory_cache_trim(nullptr), NQ_OK);
  ASSERT_EQ(nq_memory_peak_reset(), NQ_OK);
  const uint64_t mib8 = (uint64_t(8) << 20) - 64;  // + the 64-byte header: exactly 8 MiB
  void *a = nullptr, *b = nullptr, *c = nullptr;
  ASSERT_EQ(nq_buffer_alloc(mib8, &a), NQ_OK);
  std::memset(a, 1, mib8);
  ASSERT_EQ(nq_buffer_free(a), NQ_OK);
  ASSERT_EQ(nq_buffer_alloc(mib8 - 1000, &b), NQ_OK);  // same huge-page size: the kept block comes back
  EXPECT_EQ(b, a);
  nq_memory_stats s{};
  ASSERT_EQ(nq_memory_stats_get(&s), NQ_OK);
  const uint64_t live = s.live_bytes;
  ASSERT_EQ(nq_buffer_free(b), NQ_OK);
  uint64_t released = 1;
  ASSERT_EQ(nq_memory_cache_trim(&released), NQ_OK);
  EXPECT_EQ(released, uint64_t(8) << 20);
  ASSERT_EQ(nq_memory_cache_trim(&released), NQ_OK);
  EXPECT_EQ(released, 0u);

  // A larger block does not fit beside a kept one under the peak: the kept one goes first.
  ASSERT_EQ(nq_memory_peak_reset(), NQ_OK);
  ASSERT_EQ(nq_buffer_alloc(mib8, &a), NQ_OK);
  ASSERT_EQ(nq_buffer_free(a), NQ_OK);
  ASSERT_EQ(nq_buffer_alloc(2 * mib8, &c), NQ_OK);
  ASSERT_EQ(nq_buffer_free(c), NQ_OK);
  ASSERT_EQ(nq_memory_stats_get(&s), NQ_OK);
  EXPECT_EQ(s.peak_bytes, live - (mib8 - 1000) + 2 * mib8);
  ASSERT_EQ(nq_memory_cache_trim(&released), NQ_OK);
  EXPECT_EQ(released, uint64_t(16) << 20);  // only the 16 MiB block was kept

  // Resetting the peak releases what is kept.
  ASSERT_EQ(nq_buffer_alloc(mib8, &a), NQ_OK);
  ASSERT_EQ(nq_buffer_free(a), NQ_OK);
  ASSERT_EQ(nq_memory_peak_reset(), NQ_OK);
  ASSERT_EQ(nq_memory_cache_trim(&released), NQ_OK);
  EXPECT_EQ(released, 0u);
}
