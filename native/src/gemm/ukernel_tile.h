// The AVX-512 register tile shared by the fp32, bf16 and u8s8 micro-kernels: kMr rows x kNv
// zmm vectors of accumulators (kMr * kNv <= 24), kNv B vectors per k-group and one broadcast
// per row. Included only by *_avx512*.cpp files; the anonymous namespace keeps each ISA's
// instantiation private to its translation unit (no cross-ISA ODR merging).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace {

// Op supplies: Vec, zero(), bcast(const uint8_t* a) (one row's k-group), madd(acc, a, b),
// kAGroupBytes (bytes of one row's k-group in the A panel), and store(c, v, accumulate).
// kStridedA: A is read in place, row i's k-groups at a + i * a_row_bytes (no A panel).
template <class Op, int kMr, int kNv, bool kStridedA = false>
inline void ukernel_tile(int64_t groups, const void* a_, const void* b_, void* c_, int64_t ldc, bool accumulate,
                         int64_t a_row_bytes = 0) {
  using Vec = typename Op::Vec;
  constexpr int kBGroupBytes = 64 * kNv;
  const int64_t a_rs = kStridedA ? a_row_bytes : Op::kAGroupBytes;
  const int64_t a_step = kStridedA ? Op::kAGroupBytes : kMr * Op::kAGroupBytes;
  const uint8_t* a = static_cast<const uint8_t*>(a_);
  const uint8_t* b = static_cast<const uint8_t*>(b_);
  auto* c = static_cast<typename Op::Elem*>(c_);
  Vec acc[kMr][kNv];
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kNv; ++j) {
      acc[i][j] = Op::zero();
      // C comes back from L3/DRAM once per KC block (rows ldc apart defeat the streamer): fetch it
      // into L2 now (the B micro-panel streaming through L1 would evict it from there) so the
      // stores after the k loop do not stall on it (was 5-12% of the tile's samples).
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * j), _MM_HINT_T1);
    }
  for (int64_t g = 0; g < groups; ++g) {
    Vec bv[kNv];
#pragma GCC unroll 4
    for (int j = 0; j < kNv; ++j) {
      bv[j] = Op::load(b + 64 * j);
      // B streams from L2: fetch the group 4 iterations ahead.
      _mm_prefetch(reinterpret_cast<const char*>(b + 4 * kBGroupBytes + 64 * j), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
      const Vec ai = Op::bcast(a + i * a_rs);
#pragma GCC unroll 4
      for (int j = 0; j < kNv; ++j) acc[i][j] = Op::madd(acc[i][j], ai, bv[j]);
    }
    a += a_step;
    b += kBGroupBytes;
  }
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kNv; ++j) Op::store(c + i * ldc + 16 * j, acc[i][j], accumulate);
}

// fp32 lanes (fp32 FMA, and vdpbf16ps whose bf16 pairs travel as 32-bit lanes): zero, B load,
// broadcast of one row's 4-byte A group, and the store of fp32 accumulators to float C.
struct LanesF32 {
  using Vec = __m512;
  using Elem = float;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static Vec bcast(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_ps(v);
  }
  static void store(float* c, __m512 v, bool accumulate) {
    if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(c));
    _mm512_storeu_ps(c, v);
  }
};

// int32 accumulators stored to int32 C.
struct StoreI32 {
  using Elem = int32_t;
  static void store(int32_t* c, __m512i v, bool accumulate) {
    if (accumulate) v = _mm512_add_epi32(v, _mm512_loadu_si512(c));
    _mm512_storeu_si512(c, v);
  }
};

}  // namespace
