// Code tables: bitsandbytes' dynamic 8-bit map, the NF4 and FP4 4-bit types, and the
// search tables derived from a 256-entry code.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "quant/quant.h"

namespace nq::quant {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// torch.linspace(start, end, n) in fp32 exactly as torch 1.13's CPU kernel (AVX2 build, GCC,
// which contracts the scalar formula into an FMA) produces it: pairs of 8-wide vectors
// `base + k * step` (mul and add rounded separately), then the scalar formula for the tail;
// each part counts from `start` below halfway and back from `end` above it.
void torch_linspace(float start, float end, int n, float* out) {
  constexpr int kVec = 8;
  const float step = (end - start) / static_cast<float>(n - 1);
  const int halfway = n / 2;
  auto anchor = [&](int i) {
    return i < halfway ? std::fma(step, static_cast<float>(i), start)
                       : std::fma(-step, static_cast<float>(n - 1 - i), end);
  };
  int i = 0;
  for (; i + 2 * kVec <= n; i += 2 * kVec) {  // torch's vectorized loop takes two vectors at a time
    for (int v = i; v < i + 2 * kVec; v += kVec) {
      const float base = anchor(v);
      for (int k = 0; k < kVec; ++k) {
        const float prod = static_cast<float>(k) * step;
        out[v + k] = base + prod;
      }
    }
  }
  for (; i < n; ++i) out[i] = anchor(i);
}

// create_dynamic_map(signed, max_exponent_bits=7, total_bits=8) of bitsandbytes/functional.py:
// for each decade 10^(i-6), i = 0..6, the means of adjacent points of linspace(0.1, 1, k)
// (k = 2^i + 1 signed, 2^(i+1) + 1 unsigned), mirrored when signed; then 0 and 1; sorted.
void dynamic_map(bool is_signed, float* code) {
  // 10 ** (i - 6) as Python computes it, then cast to fp32 by the tensor multiply.
  static const float kDecade[7] = {1e-6f, 1e-5f, 1e-4f, 1e-3f, 1e-2f, 1e-1f, 1.0f};
  int count = 0;
  float bounds[129];
  for (int i = 0; i < 7; ++i) {
    const int items = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
    torch_linspace(0.1f, 1.0f, items, bounds);
    for (int k = 0; k + 1 < items; ++k) {
      const float mean = (bounds[k] + bounds[k + 1]) / 2.0f;
      code[count++] = kDecade[i] * mean;
      if (is_signed) code[count++] = -kDecade[i] * mean;
    }
  }
  code[count++] = 0.0f;
  code[count++] = 1.0f;
  std::sort(code, code + count);  // count == 256 for both signs with these parameters
}

Code4 make_nf4() {
  Code4 t{};
  // NormalFloat4 values of bitsandbytes (QLoRA appendix E), in fp32.
  static const float kValues[16] = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
      -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
      0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
      0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
  // Thresholds of bitsandbytes' dQuantizeNF4 decision tree (double midpoints rounded to
  // fp32): using them verbatim makes our codes byte-identical to bitsandbytes'.
  static const float kPivots[15] = {
      -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
      -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
      0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
      0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f};
  for (int i = 0; i < 16; ++i) {
    t.code[i] = kValues[i];
    t.pivot[i] = i < 15 ? kPivots[i] : kInf;
    t.rank_code[i] = i;
  }
  t.sign_magnitude = false;
  return t;
}

Code4 make_fp4() {
  Code4 t{};
  // bitsandbytes' FP4 (e2m1, bias 3): magnitudes {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 for
  // codes 0..7; bit 3 is the sign (code 8 is -0).
  static const float kMagnitude[8] = {0.0f,        0.0625f / 12.0f, 8.0f / 12.0f, 1.0f,
                                      4.0f / 12.0f, 6.0f / 12.0f,   2.0f / 12.0f, 3.0f / 12.0f};
  // Thresholds of bitsandbytes' dQuantizeFP4 tree on |x|, ascending, and the code of each
  // magnitude rank (0, 0.0052, 0.1667, 0.25, 0.3333, 0.5, 0.6667, 1).
  static const float kPivots[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f,
                                   0.4166667f,  0.583333f,  0.8333333f};
  static const int32_t kRankCode[8] = {0, 1, 6, 7, 4, 5, 2, 3};
  for (int i = 0; i < 16; ++i) {
    t.code[i] = i < 8 ? kMagnitude[i] : -kMagnitude[i - 8];
    t.pivot[i] = i < 7 ? kPivots[i] : kInf;
    t.rank_code[i] = i < 8 ? kRankCode[i] : 0;  // ranks above 7 are unreachable
  }
  t.sign_magnitude = true;
  return t;
}

}  // namespace

void code8_init(const float* code, Code8* t) {
  for (int i = 0; i < 256; ++i) t->code[i] = code[i];
  for (int i = 0; i < 255; ++i) t->mid[i] = (code[i] + code[i + 1]) * 0.5f;  // as bnb's dQuantize
  t->mid[255] = kInf;
  for (int g = 0; g < 48; ++g) t->coarse[g] = g < 31 ? t->mid[8 * g + 7] : kInf;
  for (int g = 0; g < 32; ++g)
    for (int j = 0; j < 7; ++j) t->fine[j][g] = t->mid[8 * g + j];
  for (int k = 0; k < 8; ++k) t->coarse8[k] = k < 7 ? t->mid[32 * k + 31] : kInf;
  t->bucket_shift = -1;
}

namespace {

// Search key of a finite float (see Code8) for a given floor; -0 keys as +0, as `v > mid` sees it.
int32_t bucket_key(float f, uint32_t floor_bits) {
  const uint32_t a = abs_bits(f);
  const int32_t k = static_cast<int32_t>(std::max(a, floor_bits) - floor_bits);
  return std::signbit(f) && a != 0 ? ~k : k;
}

}  // namespace

bool code8_buckets_init(Code8* t) {
  t->bucket_shift = -1;
  constexpr int n = 255;
  // Infinite midpoints (codes near +-FLT_MAX) would need their own keys: leave such codes to
  // the midpoint search.
  uint32_t min_abs = kNonFiniteBits;
  for (int i = 0; i < n; ++i) {
    if (abs_bits(t->mid[i]) >= kNonFiniteBits) return false;
    min_abs = std::min(min_abs, abs_bits(t->mid[i]));
  }
  // Every |v| up to just under the smallest |midpoint| counts alike: clamping |v| up to there
  // removes the empty key range around zero from the table.
  const uint32_t floor_bits = min_abs == 0 ? 0 : min_abs - 1;
  int32_t key[n];
  for (int i = 0; i < n; ++i) key[i] = bucket_key(t->mid[i], floor_bits);
  // Largest shift that keeps consecutive keys (sorted, as the midpoints are) in different buckets.
  int shift = 24;  // the entry's low 24 bits hold the in-bucket threshold
  for (int i = 0; i + 1 < n; ++i) {
    if (key[i] == key[i + 1]) return false;
    shift = std::min(shift, 31 - __builtin_clz(static_cast<uint32_t>(key[i] ^ key[i + 1])));
  }
  // Keys beyond the outermost midpoints all count alike; the clamp range keeps 0 and -1 (the floor).
  const int32_t key_lo = std::min(key[0] - 1, -1), key_hi = std::max(key[n - 1] + 1, 0);
  const int32_t first = key_lo >> shift, last = key_hi >> shift;
  if (last - first + 1 > Code8::kMaxBuckets) return false;
  // Bucket b holds (j << 24) + x - (b << shift), j = midpoints below it: adding a key k of the
  // bucket gives (j << 24) + x + (k - (b << shift)), which carries into j exactly when k is above
  // the bucket's midpoint: x = 2^24 - 1 - (its key - (b << shift)), or 2^24 - 2^shift if none.
  // (All modulo 2^32.)
  const int64_t width = int64_t(1) << shift;
  uint32_t* entry = t->bucket - first;
  for (int32_t j = 0, b = first; j <= n; ++j) {
    for (const int32_t stop = j < n ? key[j] >> shift : last + 1; b < stop; ++b)
      entry[b] = ((j + 1u) << 24) - static_cast<uint32_t>((b + 1) * width);
    if (j < n) entry[b++] = ((j + 1u) << 24) - 1u - static_cast<uint32_t>(key[j]);
  }
  t->floor_bits = floor_bits;
  t->key_lo = key_lo;
  t->key_hi = key_hi;
  t->first_bucket = first;
  t->bucket_shift = shift;
  return true;
}

const Code4& code4(nq_quant4_type type) {
  static const Code4 nf4 = make_nf4();
  static const Code4 fp4 = make_fp4();
  return type == NQ_QUANT4_FP4 ? fp4 : nf4;
}

}  // namespace nq::quant

extern "C" {

NQ_API nq_status nq_dynamic_map_create(int32_t is_signed, float* code) {
  NQ_CHECK_NOT_NULL("nq_dynamic_map_create", code);
  NQ_CHECK(is_signed == 0 || is_signed == 1, NQ_ERR_INVALID_ARGUMENT,
           "nq_dynamic_map_create: argument 'is_signed' must be 0 or 1, got %d", is_signed);
  nq::quant::dynamic_map(is_signed != 0, code);
  return NQ_OK;
}

NQ_API nq_status nq_quant4_code_get(nq_quant4_type type, float* code) {
  NQ_CHECK(type == NQ_QUANT4_NF4 || type == NQ_QUANT4_FP4, NQ_ERR_INVALID_ARGUMENT,
           "nq_quant4_code_get: argument 'type' must be NQ_QUANT4_NF4 (0) or NQ_QUANT4_FP4 (1), got %d",
           static_cast<int>(type));
  NQ_CHECK_NOT_NULL("nq_quant4_code_get", code);
  const nq::quant::Code4& t = nq::quant::code4(type);
  for (int i = 0; i < 16; ++i) code[i] = t.code[i];
  return NQ_OK;
}

}  // extern "C"
