// AVX2 (baseline ISA) 6 x 16 micro-kernels: fp32 FMA and int16-pair vpmaddwd (the int8
// path: values are widened to int16 so vpmaddwd never saturates, unlike vpmaddubsw), plus the
// run-time choice of kernel per data type.
#include <immintrin.h>

#include <cstring>

#include "cpu/cpu.h"
#include "gemm/ukernel.h"

namespace nq::gemm {
namespace {

// Op: Vec, zero(), load(p), bcast(p), madd(acc, a, b), store(c, v, accumulate).
template <class Op>
void ukernel_6x16(int64_t groups, const void* a_, const void* b_, void* c_, int64_t ldc,
                  bool accumulate) {
  using Vec = typename Op::Vec;
  constexpr int kMr = 6;
  const uint8_t* a = static_cast<const uint8_t*>(a_);
  const uint8_t* b = static_cast<const uint8_t*>(b_);
  auto* c = static_cast<typename Op::Elem*>(c_);
  Vec acc[kMr][2];
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = Op::zero();
  for (int64_t g = 0; g < groups; ++g) {
    const Vec b0 = Op::load(b), b1 = Op::load(b + 32);
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      const Vec ai = Op::bcast(a + i * 4);
      acc[i][0] = Op::madd(acc[i][0], ai, b0);
      acc[i][1] = Op::madd(acc[i][1], ai, b1);
    }
    a += kMr * 4;
    b += 64;
  }
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) {
    Op::store(c + i * ldc, acc[i][0], accumulate);
    Op::store(c + i * ldc + 8, acc[i][1], accumulate);
  }
}

struct OpF32 {
  using Vec = __m256;
  using Elem = float;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static Vec bcast(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_ps(v);
  }
  static Vec madd(Vec acc, Vec a, Vec b) { return _mm256_fmadd_ps(a, b, acc); }
  static void store(float* c, Vec v, bool accumulate) {
    if (accumulate) v = _mm256_add_ps(v, _mm256_loadu_ps(c));
    _mm256_storeu_ps(c, v);
  }
};

struct OpI16 {
  using Vec = __m256i;
  using Elem = int32_t;
  static Vec zero() { return _mm256_setzero_si256(); }
  static Vec load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static Vec bcast(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  // The add is written in place: from acc = acc + product GCC 12 made a new register and copied it back
  // (a vmovdqa per accumulator and k group) and at 6 rows spilled 6 accumulators to the stack inside the
  // k loop: the kernel ran at ~0.5 of vpmaddwd + vpaddd's peak on Zen 3, ~0.9 this way (in cache).
  static Vec madd(Vec acc, Vec a, Vec b) {
    const Vec p = _mm256_madd_epi16(a, b);
    __asm__("vpaddd %1, %0, %0" : "+x"(acc) : "x"(p));
    return acc;
  }
  static void store(int32_t* c, Vec v, bool accumulate) {
    auto* p = reinterpret_cast<__m256i*>(c);
    if (accumulate) v = _mm256_add_epi32(v, _mm256_loadu_si256(p));
    _mm256_storeu_si256(p, v);
  }
};

void run_f32(int64_t groups, const void* a, const void* b, void* c, int64_t ldc, bool accumulate) {
  ukernel_6x16<OpF32>(groups, a, b, c, ldc, accumulate);
}
void run_i16(int64_t groups, const void* a, const void* b, void* c, int64_t ldc, bool accumulate) {
  ukernel_6x16<OpI16>(groups, a, b, c, ldc, accumulate);
}

}  // namespace

const Ukernel kUkF32Avx2{6, 16, 1, Fmt::F32, Fmt::F32, false, run_f32, nullptr};
const Ukernel kUkI16Avx2{6, 16, 2, Fmt::I16, Fmt::I16, true, run_i16, nullptr};

const Ukernel* ukernel_f32() {
  if (cpu::use(NQ_ISA_AVX512)) return &kUkF32Avx512;
  if (cpu::use(NQ_ISA_AVX2)) return &kUkF32Avx2;
  return nullptr;
}

const Ukernel* ukernel_bf16() {
  if (cpu::use(NQ_ISA_AVX512_BF16)) return &kUkBf16Avx512;
  return ukernel_f32();
}

const Ukernel* ukernel_int8() {
  if (cpu::use(NQ_ISA_AVX512_VNNI)) return &kUkU8S8Vnni;
  if (cpu::use(NQ_ISA_AVX2)) return &kUkI16Avx2;
  return nullptr;
}

}  // namespace nq::gemm
