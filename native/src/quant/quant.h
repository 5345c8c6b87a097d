// Internal interface of the quantization kernels: code tables, scalar element helpers shared
// by every ISA path, and the per-ISA kernel table the ABI functions dispatch through.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "nativequant.h"

namespace nq::quant {

// ---- lookup tables ------------------------------------------------------------------------

// A sorted 256-entry code prepared for nearest-code search. The nearest code of v is the
// number of midpoints strictly below v (ties go to the lower index); every ISA path counts
// against these same fp32 midpoints, which is what makes them byte-identical.
struct Code8 {
  alignas(64) float code[256];
  alignas(64) float mid[256];     // mid[i] = (code[i] + code[i+1]) * 0.5f (i < 255); mid[255] = +inf
  alignas(64) float coarse[48];   // coarse[g] = mid[8g + 7] (g < 31); +inf from 31 (AVX-512 reads shifted windows)
  alignas(64) float fine[7][32];  // fine[j][g] = mid[8g + j]: the 7 midpoints inside group g
  alignas(64) float coarse8[8];   // coarse8[k] = mid[32k + 31] (k < 7); coarse8[7] = +inf (AVX2)
  // One-gather search (AVX-512 BucketSearch8; built by code8_buckets_init). The key of v is
  // k = clamp((max(|v|, floor) - floor) bits, negated by ~ when v < 0, to [key_lo, key_hi]):
  // monotone in v, with every midpoint's key alone in its bucket k >> shift, so
  // index = (entry[(k >> shift) - first] + k) >> 24 (the entry's low 24 bits carry into the
  // count exactly when k is above the bucket's midpoint).
  static constexpr int kMaxBuckets = 4096;
  int32_t bucket_shift = -1;  // < 0: no table (not built, or the code does not fit)
  uint32_t floor_bits = 0;
  int32_t key_lo = 0, key_hi = 0, first_bucket = 0;
  alignas(64) uint32_t bucket[kMaxBuckets];
};

// Fill `t` from a sorted, finite 256-entry code (the caller validated it).
void code8_init(const float* code, Code8* t);
// Build t's bucket table after code8_init; false (bucket_shift < 0) when the code does not fit:
// an infinite or repeated midpoint, or more than kMaxBuckets buckets needed to separate them.
bool code8_buckets_init(Code8* t);
// The table takes ~1.6 us to build and saves ~0.2 us per 1K elements: blockwise 8-bit
// quantization builds it from this many elements on.
constexpr int64_t kCode8BucketMinElements = int64_t(1) << 14;

// One 4-bit data type: the 16 values and bitsandbytes' decision thresholds.
struct Code4 {
  alignas(64) float code[16];       // value of each 4-bit code
  alignas(64) float pivot[16];      // sorted thresholds: rank = #(pivot < v); unused tail = +inf
  alignas(64) int32_t rank_code[16];  // rank -> 4-bit code
  bool sign_magnitude;              // FP4: search |v| and set bit 3 when v < 0
};

const Code4& code4(nq_quant4_type type);

// ---- scalar element helpers (static inline: every ISA file gets its own copy) ---------------

static inline uint32_t abs_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u & 0x7fffffffu;
}

static inline float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// |x| bit patterns order like the values; anything >= this is Inf or NaN.
constexpr uint32_t kNonFiniteBits = 0x7f800000u;

// 1 / absmax as bitsandbytes normalises (x * (1 / absmax)); an all-zero block maps to 0.
static inline float inv_absmax(float absmax) { return absmax > 0.0f ? 1.0f / absmax : 0.0f; }

// Number of midpoints below v = index of the nearest code (binary search over 255 midpoints).
static inline int code8_index(const Code8& t, float v) {
  int c = 0;
  for (int s = 128; s >= 1; s >>= 1)
    if (v > t.mid[c + s - 1]) c += s;
  return c;
}

static inline int code4_index(const Code4& t, float v) {
  const float a = t.sign_magnitude ? std::fabs(v) : v;
  int c = 0;
  for (int s = 8; s >= 1; s >>= 1)
    if (a > t.pivot[c + s - 1]) c += s;
  return t.rank_code[c] | (t.sign_magnitude && v < 0.0f ? 8 : 0);
}

// fp32 -> bf16 bits, round to nearest even (inputs here are finite).
static inline uint16_t bf16_rne(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Round to nearest even, clamp to int8 (the clamp is in float so every path saturates alike).
static inline int8_t sat_round_i8(float v) {
  float r = std::nearbyint(v);
  r = r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r);
  return static_cast<int8_t>(r);
}

// Zero-point element: clamp(round(x / scale) + zero_point, -128, 127).
static inline int8_t zp_quant_elem(float x, float scale, float zp) {
  const float r = std::nearbyint(x / scale) + zp;
  return static_cast<int8_t>(r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r));
}

// ---- per-ISA kernels ------------------------------------------------------------------------

// Blockwise kernels work on blocks [b0, b1) of x (n elements, blocksize bs; the last block
// may be partial) and return the first block holding a NaN/Inf, or -1. `shift` is subtracted
// from x before anything else (double quantization's offset; 0 otherwise).
struct Kernels {
  int64_t (*blockwise8_quantize)(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                                 float shift, const Code8& t, uint8_t* q, float* absmax);
  // x[i] = code[q[i]] * absmax[i / bs]
  void (*blockwise8_dequantize)(const uint8_t* q, const float* absmax, int64_t n, int64_t bs,
                                int64_t b0, int64_t b1, const float* code, float* x);
  int64_t (*quant4_quantize)(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                             const Code4& t, uint8_t* packed, float* absmax);
  void (*quant4_dequantize)(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,
                            int64_t b0, int64_t b1, const Code4& t, float* x);
  void (*quant4_dequantize_bf16)(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,
                                 int64_t b0, int64_t b1, const Code4& t, uint16_t* x);

  // int8 primitives over a contiguous run of n elements.
  uint32_t (*absmax_bits)(const float* x, int64_t n);                 // max |x| as bits
  void (*colmax_bits)(const float* x, int64_t n, uint32_t* acc);       // acc[i] = max(acc[i], |x[i]|)
  void (*minmax)(const float* x, int64_t n, float* lo, float* hi);     // lo/hi updated in place
  // q[i] = sat_round_i8(x[i] * (sv ? sv[i] : s))
  void (*int8_scale)(const float* x, int64_t n, float s, const float* sv, int8_t* q);
  // x[i] = (q[i] * (av ? av[i] : a)) * b
  void (*int8_unscale)(const int8_t* q, int64_t n, float a, const float* av, float b, float* x);
  void (*zp_quantize)(const float* x, int64_t n, float scale, float zp, int8_t* q);
  // x[i] = (q[i] - zp) * scale
  void (*zp_dequantize)(const int8_t* q, int64_t n, float scale, float zp, float* x);
};

// Every ISA provides the same set of functions, named <kernel>_<isa>; signatures as in Kernels.
#define NQ_QUANT_DECLARE_ISA(isa)                                                                      \
  int64_t blockwise8_quantize_##isa(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,      \
                                    float shift, const Code8& t, uint8_t* q, float* absmax);           \
  void blockwise8_dequantize_##isa(const uint8_t* q, const float* absmax, int64_t n, int64_t bs,        \
                                   int64_t b0, int64_t b1, const float* code, float* x);               \
  int64_t quant4_quantize_##isa(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,          \
                                const Code4& t, uint8_t* packed, float* absmax);                        \
  void quant4_dequantize_##isa(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,       \
                               int64_t b0, int64_t b1, const Code4& t, float* x);                      \
  void quant4_dequantize_bf16_##isa(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,  \
                                    int64_t b0, int64_t b1, const Code4& t, uint16_t* x);              \
  uint32_t absmax_bits_##isa(const float* x, int64_t n);                                               \
  void colmax_bits_##isa(const float* x, int64_t n, uint32_t* acc);                                    \
  void minmax_##isa(const float* x, int64_t n, float* lo, float* hi);                                  \
  void int8_scale_##isa(const float* x, int64_t n, float s, const float* sv, int8_t* q);               \
  void int8_unscale_##isa(const int8_t* q, int64_t n, float a, const float* av, float b, float* x);    \
  void zp_quantize_##isa(const float* x, int64_t n, float scale, float zp, int8_t* q);                 \
  void zp_dequantize_##isa(const int8_t* q, int64_t n, float scale, float zp, float* x);

NQ_QUANT_DECLARE_ISA(ref)     // scalar references: the NQ_ISA_SCALAR path and the tests' oracle
NQ_QUANT_DECLARE_ISA(avx2)    // *_avx2.cpp (baseline flags)
NQ_QUANT_DECLARE_ISA(avx512)  // *_avx512.cpp (AVX-512 F/BW/VL/DQ)

const Kernels& kernels_ref();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
const Kernels& kernels();  // the table for the current dispatch level (nq::cpu::use)

}  // namespace nq::quant
