// NQ_COMPUTE_F16's chunked fp16 scheme, shared by every matmul that offers it (the 4-bit weight
// matmuls, quant4_f16.h, and fp32 x fp32, gemm_f32_f16.cpp): chunk rules, packed layouts, the
// A packers and the scalar emulation the references are built from.
//
// Why chunks of 64 with scales on both sides:
//  - fp16 has 11 significant bits and a range of 2^-24..65504. A chunk's A values are scaled
//    by 2^s so max|a| is in [256, 512) and its B values lie in [-1, 1] (scaled by a power of
//    two, or 4-bit codes), so |products| <= 512 and |chunk sum| <= 64 * 512 = 2^15: no overflow
//    whatever the operands' magnitudes, and values below max stay normal for 22 binades.
//  - Accumulation error of a chunk sum is ~2^-11 * sqrt(64/2) relative (a rounding per add,
//    random-walk); flushing to fp32 keeps it from growing with K. Measured ~1.2e-3.
// The scale exponents are clamped to [-120, 120] so 2^s and its inverse are normal floats.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gemm/driver.h"

namespace nq::gemm {

constexpr int kF16Chunk = 64;  // reduction steps summed in fp16 before a flush
constexpr int kF16Mr = 8, kF16Nr = 96;
// Packed chunk layouts (one micro-panel, one chunk of 64 k):
//   A: row i's 64 values at i * kF16ARowBytes, each fp16 value doubled into 32 bits (the kernel
//      broadcasts a[i][k] with vbroadcastss, a plain load; rows need no transpose; the 16-byte
//      pad puts the 8 loads of a k step in different L1 banks: unpadded rows ran the kernel 12%
//      slower), then fp32 inv_scale[8], padded.
//   B: fp16 b[64][96] (column j's value at k) then fp32 scale[96].
constexpr int64_t kF16ARowBytes = kF16Chunk * 4 + 16;  // +16: rows in different L1 banks
constexpr int64_t kF16AChunkBytes = kF16Mr * kF16ARowBytes + 64;
constexpr int64_t kF16BChunkBytes = kF16Chunk * kF16Nr * 2 + kF16Nr * 4;
constexpr int64_t kF16BScaleOffset = kF16Chunk * kF16Nr * 2;  // scale[96] inside a B chunk
constexpr int kF16MaxShift = 120;                             // 2^±120 and its inverse are normal floats

// frexp's exponent of a finite m > 0 (m in [2^(e-1), 2^e)), from the bits when m is normal:
// std::frexp is a libm call, once per row and chunk in the A packer.
inline int frexp_exponent(float m) {
  uint32_t bits;
  std::memcpy(&bits, &m, 4);
  int e = int(bits >> 23);
  if (e == 0)
    std::frexp(m, &e);
  else
    e -= 126;
  return e;
}

inline int clamp_shift(int s) { return s < -kF16MaxShift ? -kF16MaxShift : s > kF16MaxShift ? kF16MaxShift : s; }

// Power-of-two exponent for a chunk of activations with largest |value| `maxabs` (NaN
// ignored by the caller): max * 2^s in [256, 512). 0 for 0, Inf or NaN.
inline int f16_act_shift(float maxabs) {
  if (!(maxabs > 0.0f) || !(maxabs <= 3.4028235e38f)) return 0;
  return clamp_shift(9 - frexp_exponent(maxabs));
}

// Exponent for a chunk of B (weights) whose largest |value| is `maxabs`: maxabs * 2^s in
// [0.5, 1). 0 for 0, Inf or NaN.
inline int f16_weight_shift(float maxabs) {
  if (!(maxabs > 0.0f) || !(maxabs <= 3.4028235e38f)) return 0;
  return clamp_shift(-frexp_exponent(maxabs));
}

// 2^s for |s| <= kF16MaxShift, built from its exponent bits (std::ldexp is a libm call).
inline float pow2f(int s) {
  const uint32_t bits = uint32_t(127 + s) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// fp16 bits of v, rounded to nearest even as vcvtps2ph.
inline uint16_t f16_bits(float v) {
  const _Float16 h = static_cast<_Float16>(v);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}

inline int64_t chunks_of(int64_t len) { return (len + kF16Chunk - 1) / kF16Chunk; }

inline int chunk_len(int64_t total, int64_t c) { return int(std::min<int64_t>(kF16Chunk, total - c * kF16Chunk)); }

// One chunk of a row of activations x[0..len): vals[t * vstride] = fp16(x[t] * 2^s);
// returns 2^-s (s = f16_act_shift(max |x|)).
float f16_act_chunk(const float* x, int len, uint16_t* vals, int64_t vstride);

// One chunk of an fp32 B column x[t * xstride], t < len: vals[t * vstride] = fp16(x * 2^s);
// returns 2^-s (s = f16_weight_shift(max |x|), NaN ignored).
float f16_b_chunk(const float* x, int64_t xstride, int len, uint16_t* vals, int64_t vstride);

// Scalar emulation for the references. Activations of m rows of length len (row stride len)
// in chunk form: fp16 values and the per-(row, chunk) inverse scales.
void act_chunks(const float* x, int64_t m, int64_t len, std::vector<uint16_t>& v, std::vector<float>& inv);
// c + sum over chunks of (fp16 chunk sum of a*b, one rounding per FMA) * (bscale * ainv): the
// micro-kernel's operations in its order.
float dot_f16(const uint16_t* a, const float* ainv, const uint16_t* b, const float* bscale, int64_t len, float c);

// Driver packer for kUkF16Avx512's A (only used when cpu::use_avx512fp16()): the m rows of x (row
// stride ld), one chunk layout per 64 k.
struct PackAF16 {
  const float* x;
  int64_t ld, m;
  void operator()(void* out, const PackGeom& g, int64_t i0, int rows, int64_t k0, int64_t kc) const;
};

// SIMD A packer (pack_f16_avx512fp16.cpp): kc values of each of `rows` (<= 8) rows starting at
// x (row stride ld) into an A micro-panel (zero-filled beforehand). next (or nullptr): the 8 rows
// of the micro-panel packed next, prefetched while this one ends.
void pack_a_f16_avx512fp16(const float* x, int64_t ld, int rows, int64_t kc, uint8_t* panel,
                           const float* next = nullptr);

}  // namespace nq::gemm
