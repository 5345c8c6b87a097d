// Blockwise 4-bit quantization (bitsandbytes' quantize_4bit / dequantize_4bit, NF4 and FP4):
// two codes per byte, the first element in the high nibble.
#include <algorithm>

#include "quant/abi_util.h"
#include "quant/quant.h"

namespace nq::quant {

// x: (n) in blocks of bs (n, bs even); packed: (n / 2); absmax: (blocks)
int64_t quant4_quantize_ref(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                            const Code4& t, uint8_t* packed, float* absmax) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, i1 = std::min(i0 + bs, n);
    uint32_t m = 0;
    for (int64_t i = i0; i < i1; ++i) m = std::max(m, abs_bits(x[i]));
    if (m >= kNonFiniteBits) return b;
    absmax[b] = from_bits(m);
    const float inv = inv_absmax(absmax[b]);
    for (int64_t i = i0; i < i1; i += 2)
      packed[i / 2] = static_cast<uint8_t>(code4_index(t, x[i] * inv) << 4 | code4_index(t, x[i + 1] * inv));
  }
  return -1;
}

void quant4_dequantize_ref(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,
                           int64_t b0, int64_t b1, const Code4& t, float* x) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, i1 = std::min(i0 + bs, n);
    for (int64_t i = i0; i < i1; i += 2) {
      x[i] = t.code[packed[i / 2] >> 4] * absmax[b];
      x[i + 1] = t.code[packed[i / 2] & 15] * absmax[b];
    }
  }
}

void quant4_dequantize_bf16_ref(const uint8_t* packed, const float* absmax, int64_t n, int64_t bs,
                                int64_t b0, int64_t b1, const Code4& t, uint16_t* x) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, i1 = std::min(i0 + bs, n);
    for (int64_t i = i0; i < i1; i += 2) {
      x[i] = bf16_rne(t.code[packed[i / 2] >> 4] * absmax[b]);
      x[i + 1] = bf16_rne(t.code[packed[i / 2] & 15] * absmax[b]);
    }
  }
}

}  // namespace nq::quant

namespace {

using namespace nq::quant;

// Checks common to the three 4-bit entry points (pointers were checked by the caller).
nq_status check_quant4_args(const char* fn, nq_quant4_type type, int64_t n, int32_t blocksize) {
  NQ_CHECK(type == NQ_QUANT4_NF4 || type == NQ_QUANT4_FP4, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'type' must be NQ_QUANT4_NF4 (0) or NQ_QUANT4_FP4 (1), got %d", fn,
           static_cast<int>(type));
  NQ_CHECK_POSITIVE(fn, n);
  NQ_CHECK(n % 2 == 0, NQ_ERR_SHAPE, "%s: argument 'n' must be even (two codes per byte), got %lld", fn,
           static_cast<long long>(n));
  NQ_CHECK_BLOCKSIZE(fn, blocksize, 32, 4096);
  return NQ_OK;
}

template <class T, class K>
nq_status dequantize4(const char* fn, nq_quant4_type type, const uint8_t* packed, const float* absmax,
                      int64_t n, int32_t blocksize, T* x, K kernel) {
  if (nq_status s = check_quant4_args(fn, type, n, blocksize)) return s;
  const int64_t blocks = ceil_div(n, blocksize);
  NQ_CHECK_NO_OVERLAP(fn, x, n * sizeof(T), packed, n / 2);
  NQ_CHECK_NO_OVERLAP(fn, x, n * sizeof(T), absmax, blocks * 4);
  for (int64_t b = 0; b < blocks; ++b)
    NQ_CHECK(abs_bits(absmax[b]) < kNonFiniteBits, NQ_ERR_NON_FINITE,
             "%s: argument 'absmax' is NaN or Inf at block %lld", fn, static_cast<long long>(b));
  const Code4& t = code4(type);
  for_block_ranges(blocks, n, [&](int64_t b0, int64_t b1) {
    kernel(packed, absmax, n, blocksize, b0, b1, t, x);
    return int64_t(-1);
  });
  return NQ_OK;
}

}  // namespace

extern "C" {

NQ_API nq_status nq_quant4_quantize(nq_quant4_type type, const float* x, int64_t n, int32_t blocksize,
                                    uint8_t* packed, float* absmax) {
  constexpr const char* fn = "nq_quant4_quantize";
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, packed);
  NQ_CHECK_NOT_NULL(fn, absmax);
  if (nq_status s = check_quant4_args(fn, type, n, blocksize)) return s;
  const int64_t blocks = ceil_div(n, blocksize);
  NQ_CHECK_NO_OVERLAP(fn, packed, n / 2, x, n * 4);
  NQ_CHECK_NO_OVERLAP(fn, absmax, blocks * 4, x, n * 4);
  NQ_CHECK_NO_OVERLAP(fn, packed, n / 2, absmax, blocks * 4);
  const Code4& t = code4(type);
  const Kernels& k = kernels();
  const int64_t bad = for_block_ranges(blocks, n, [&](int64_t b0, int64_t b1) {
    return k.quant4_quantize(x, n, blocksize, b0, b1, t, packed, absmax);
  });
  NQ_CHECK(bad < 0, NQ_ERR_NON_FINITE, "%s: argument 'x' has a NaN or Inf in block %lld (elements %lld..%lld)", fn,
           static_cast<long long>(bad), static_cast<long long>(bad * blocksize),
           static_cast<long long>(std::min<int64_t>(n, (bad + 1) * blocksize) - 1));
  return NQ_OK;
}

NQ_API nq_status nq_quant4_dequantize(nq_quant4_type type, const uint8_t* packed, const float* absmax,
                                      int64_t n, int32_t blocksize, float* x) {
  constexpr const char* fn = "nq_quant4_dequantize";
  NQ_CHECK_NOT_NULL(fn, packed);
  NQ_CHECK_NOT_NULL(fn, absmax);
  NQ_CHECK_NOT_NULL(fn, x);
  return dequantize4(fn, type, packed, absmax, n, blocksize, x, kernels().quant4_dequantize);
}

NQ_API nq_status nq_quant4_dequantize_bf16(nq_quant4_type type, const uint8_t* packed, const float* absmax,
                                           int64_t n, int32_t blocksize, uint16_t* x) {
  constexpr const char* fn = "nq_quant4_dequantize_bf16";
  NQ_CHECK_NOT_NULL(fn, packed);
  NQ_CHECK_NOT_NULL(fn, absmax);
  NQ_CHECK_NOT_NULL(fn, x);
  return dequantize4(fn, type, packed, absmax, n, blocksize, x, kernels().quant4_dequantize_bf16);
}

}  // extern "C"
