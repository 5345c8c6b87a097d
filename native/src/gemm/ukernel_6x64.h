// The 6 x 64 AVX-512 register tile shared by the fp32, bf16 and u8s8 micro-kernels:
// 24 zmm accumulators, 4 B vectors (256 bytes) per k-group and one broadcast per row.
// Included only by *_avx512*.cpp files; the anonymous namespace keeps each ISA's
// instantiation private to its translation unit (no cross-ISA ODR merging).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace {

// Op supplies: Vec, zero(), bcast(const uint8_t* a) (one row's k-group), madd(acc, a, b),
// kAGroupBytes (bytes of one row's k-group in the A panel), and store(c, v, accumulate).
template <class Op>
inline void ukernel_6x64(int64_t groups, const void* a_, const void* b_, void* c_, int64_t ldc,
                         bool accumulate) {
  using Vec = typename Op::Vec;
  constexpr int kMr = 6;
  const uint8_t* a = static_cast<const uint8_t*>(a_);
  const uint8_t* b = static_cast<const uint8_t*>(b_);
  auto* c = static_cast<typename Op::Elem*>(c_);
  Vec acc[kMr][4];
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[i][j] = Op::zero();
  for (int64_t g = 0; g < groups; ++g) {
    const Vec b0 = Op::load(b), b1 = Op::load(b + 64), b2 = Op::load(b + 128), b3 = Op::load(b + 192);
    _mm_prefetch(reinterpret_cast<const char*>(b + 1024), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 1088), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 1152), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 1216), _MM_HINT_T0);
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      const Vec ai = Op::bcast(a + i * Op::kAGroupBytes);
      acc[i][0] = Op::madd(acc[i][0], ai, b0);
      acc[i][1] = Op::madd(acc[i][1], ai, b1);
      acc[i][2] = Op::madd(acc[i][2], ai, b2);
      acc[i][3] = Op::madd(acc[i][3], ai, b3);
    }
    a += kMr * Op::kAGroupBytes;
    b += 256;
  }
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) Op::store(c + i * ldc + 16 * j, acc[i][j], accumulate);
}

// fp32 accumulators stored to float C.
struct StoreF32 {
  using Elem = float;
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
