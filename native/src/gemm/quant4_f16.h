// NQ_COMPUTE_F16 for the 4-bit weight matmuls: fp16 products summed in fp16 over short
// chunks of the reduction, each chunk sum flushed into fp32 (see nq_quant4_gemm's header doc).
//
// Why chunks of 64 with scales on both sides:
//  - fp16 has 11 significant bits and a range of 2^-24..65504. A chunk's A values are scaled
//    by 2^s so max|a| is in [256, 512) and its W values are in [-1, 1] (codes, or code*absmax
//    scaled by a power of two), so |products| <= 512 and |chunk sum| <= 64 * 512 = 2^15:
//    no overflow whatever the activations' or weights' magnitudes, and values below max
//    stay normal for 22 binades.
//  - The forward's chunk is a run of one W row: 64-aligned runs lie inside one quantization
//    block when blocksize >= 64 and k % 64 == 0, so B holds the fp16 codes themselves (a
//    table lookup) and the block's absmax is the chunk's scale, applied in fp32 at the flush.
//    The backward's chunk runs down a W column (absmax changes along it), so it holds
//    code*absmax scaled by a power of two into (-1, 1). Every chunk follows the same rule
//    (f16_weight_chunk), so both directions, all K tails and the reference agree.
//  - Accumulation error of a chunk sum is ~2^-11 * sqrt(64/2) relative (a rounding per add,
//    random-walk); flushing to fp32 keeps it from growing with K. Measured ~1.2e-3.
// The scale exponents are clamped to [-120, 120] so 2^s and its inverse are normal floats.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "gemm/driver.h"
#include "nativequant.h"

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
constexpr int kF16MaxShift = 120;  // 2^±120 and its inverse are normal floats

// frexp's exponent of a finite m > 0 (m in [2^(e-1), 2^e)), from the bits when m is normal:
// std::frexp is a libm call, once per row and chunk in the A packer.
inline int frexp_exponent(float m) {
  uint32_t bits;
  std::memcpy(&bits, &m, 4);
  int e = int(bits >> 23);
  if (e == 0) std::frexp(m, &e);
  else e -= 126;
  return e;
}

inline int clamp_shift(int s) { return s < -kF16MaxShift ? -kF16MaxShift : s > kF16MaxShift ? kF16MaxShift : s; }

// Power-of-two exponent for a chunk of activations with largest |value| `maxabs` (NaN
// ignored by the caller): max * 2^s in [256, 512). 0 for 0, Inf or NaN.
inline int f16_act_shift(float maxabs) {
  if (!(maxabs > 0.0f) || !(maxabs <= 3.4028235e38f)) return 0;
  return clamp_shift(9 - frexp_exponent(maxabs));
}

// Exponent for a chunk of dequantised weights whose largest |absmax| is `maxabs`:
// |code * absmax| * 2^s < 1 (|code| <= 1). 0 for 0, Inf or NaN.
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

// One chunk of W: elements e0 + t * stride, t < len (<= 64). Writes their fp16 bits to
// vals[t * vstride] and returns the chunk's scale: the block's absmax when all elements
// lie in one block (vals = fp16(code)), else 2^-s with vals = fp16(code * (absmax * 2^s)).
float f16_weight_chunk(const nq_quant4_weight& w, int64_t e0, int64_t stride, int len, uint16_t* vals,
                       int64_t vstride);

// One chunk of a row of activations x[0..len): vals[t * vstride] = fp16(x[t] * 2^s);
// returns 2^-s (s = f16_act_shift(max |x|)).
float f16_act_chunk(const float* x, int len, uint16_t* vals, int64_t vstride);

// Reference: the same operations in scalar code (fp16 FMA emulated exactly in double).
void quant4_gemm_f16_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y);
void quant4_gemm_backward_f16_ref(const float* dy, int64_t m, const nq_quant4_weight& w, float beta, float* dx);

// Driver packers for kUkF16Avx512 (only used when cpu::use_avx512fp16()).
// A: rows of x (row stride ld), one chunk layout per 64 k.
struct PackAF16 {
  const float* x;
  int64_t ld;
  void operator()(void* out, const PackGeom& g, int64_t i0, int rows, int64_t k0, int64_t kc) const;
};
// B from W: forward B(k, j) = W[j][k] (runs of W rows), backward B(k, j) = W[k][j].
struct PackBQuant4F16 {
  const nq_quant4_weight& w;
  bool backward;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const;
};

// SIMD packers (pack_quant4_f16_avx512fp16.cpp). A: kc values of each of `rows` (<= 8) rows
// starting at x (row stride ld) into an A micro-panel (zero-filled beforehand).
void pack_a_f16_avx512fp16(const float* x, int64_t ld, int rows, int64_t kc, uint8_t* panel);
// Forward B(k, j) = W[n0 + j][k0 + k] for the first nc / 16 * 16 columns (returned); needs
// w.k % 64 == 0, w.blocksize >= 64, k0 % 64 == 0. panel_bytes = bytes per micro-panel.
int64_t pack_b_quant4_f16_fwd_avx512fp16(const nq_quant4_weight& w, uint8_t* out, int64_t panel_bytes, int64_t k0,
                                         int64_t kc, int64_t n0, int64_t nc);
// Backward B(k, j) = W[k0 + k][n0 + j] for the first nc / 16 * 16 columns (returned); needs
// w.k % 16 == 0 and n0 % 16 == 0.
int64_t pack_b_quant4_f16_bwd_avx512fp16(const nq_quant4_weight& w, uint8_t* out, int64_t panel_bytes, int64_t k0,
                                         int64_t kc, int64_t n0, int64_t nc);

}  // namespace nq::gemm
