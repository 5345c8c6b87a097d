// Scalar element conversions shared by packers and reference kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace nq::gemm {

inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even (what vcvtne2ps2bf16 does); NaN stays a quiet NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// int8 quantization of one value with a precomputed 127/absmax (round half to even).
inline int32_t quantize_s8(float x, float inv_scale) {
  return int32_t(std::nearbyint(x * inv_scale));
}

}  // namespace nq::gemm
