// Blockwise 8-bit quantization with a 256-entry code (bitsandbytes' quantize_blockwise), and
// double quantization of 4-bit absmax built on it (bitsandbytes' compress_statistics).
#include <algorithm>
#include <cmath>

#include "cpu/cpu.h"
#include "quant/abi_util.h"
#include "quant/quant.h"

namespace nq::quant {

// x: (n) in blocks of bs; q: (n); absmax: (blocks)
int64_t blockwise8_quantize_ref(const float* x, int64_t n, int64_t bs, int64_t b0, int64_t b1,
                                float shift, const Code8& t, uint8_t* q, float* absmax) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, i1 = i0 + bs < n ? i0 + bs : n;
    uint32_t m = 0;
    for (int64_t i = i0; i < i1; ++i) {
      const uint32_t a = abs_bits(x[i] - shift);
      m = a > m ? a : m;
    }
    if (m >= kNonFiniteBits) return b;
    absmax[b] = from_bits(m);
    const float inv = inv_absmax(absmax[b]);
    for (int64_t i = i0; i < i1; ++i) q[i] = static_cast<uint8_t>(code8_index(t, (x[i] - shift) * inv));
  }
  return -1;
}

void blockwise8_dequantize_ref(const uint8_t* q, const float* absmax, int64_t n, int64_t bs,
                               int64_t b0, int64_t b1, const float* code, float* x) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t i0 = b * bs, i1 = i0 + bs < n ? i0 + bs : n;
    for (int64_t i = i0; i < i1; ++i) x[i] = code[q[i]] * absmax[b];
  }
}

}  // namespace nq::quant

namespace {

using namespace nq::quant;

// A usable code: 256 finite values in non-decreasing order (the nearest-code search relies on it).
nq_status check_code8(const char* fn, const float* code) {
  for (int i = 0; i < 256; ++i)
    NQ_CHECK(abs_bits(code[i]) < kNonFiniteBits, NQ_ERR_NON_FINITE,
             "%s: argument 'code' entry %d is NaN or Inf", fn, i);
  for (int i = 1; i < 256; ++i)
    NQ_CHECK(code[i - 1] <= code[i], NQ_ERR_INVALID_ARGUMENT,
             "%s: argument 'code' must be sorted ascending; entry %d (%g) < entry %d (%g)", fn, i,
             static_cast<double>(code[i]), i - 1, static_cast<double>(code[i - 1]));
  return NQ_OK;
}

nq_status check_finite_absmax(const char* fn, const char* name, const float* a, int64_t blocks) {
  for (int64_t b = 0; b < blocks; ++b)
    NQ_CHECK(abs_bits(a[b]) < kNonFiniteBits, NQ_ERR_NON_FINITE, "%s: argument '%s' is NaN or Inf at block %lld",
             fn, name, static_cast<long long>(b));
  return NQ_OK;
}

// Shared body of nq_blockwise8_quantize and nq_absmax_compress (which passes its offset as shift).
nq_status quantize8(const char* fn, const char* xname, const float* x, int64_t n, int32_t blocksize,
                    float shift, const float* code, uint8_t* q, float* absmax) {
  if (nq_status s = check_code8(fn, code)) return s;
  const int64_t blocks = ceil_div(n, blocksize);
  NQ_CHECK_NO_OVERLAP(fn, q, n, x, n * 4);
  NQ_CHECK_NO_OVERLAP(fn, absmax, blocks * 4, x, n * 4);
  NQ_CHECK_NO_OVERLAP(fn, q, n, absmax, blocks * 4);
  NQ_CHECK_NO_OVERLAP(fn, q, n, code, 256 * 4);
  NQ_CHECK_NO_OVERLAP(fn, absmax, blocks * 4, code, 256 * 4);
  Code8 t;
  code8_init(code, &t);
  if (n >= kCode8BucketMinElements && nq::cpu::use(NQ_ISA_AVX512)) code8_buckets_init(&t);  // read by AVX-512 only
  const Kernels& k = kernels();
  const int64_t bad = for_block_ranges(blocks, n, [&](int64_t b0, int64_t b1) {
    return k.blockwise8_quantize(x, n, blocksize, b0, b1, shift, t, q, absmax);
  });
  NQ_CHECK(bad < 0, NQ_ERR_NON_FINITE, "%s: argument '%s' has a NaN or Inf in block %lld (elements %lld..%lld)",
           fn, xname, static_cast<long long>(bad), static_cast<long long>(bad * blocksize),
           static_cast<long long>(std::min<int64_t>(n, (bad + 1) * blocksize) - 1));
  return NQ_OK;
}

nq_status dequantize8(const char* fn, const uint8_t* q, const float* absmax, int64_t n, int32_t blocksize,
                      const float* code, float* x) {
  const int64_t blocks = ceil_div(n, blocksize);
  NQ_CHECK_NO_OVERLAP(fn, x, n * 4, q, n);
  NQ_CHECK_NO_OVERLAP(fn, x, n * 4, absmax, blocks * 4);
  NQ_CHECK_NO_OVERLAP(fn, x, n * 4, code, 256 * 4);
  if (nq_status s = check_code8(fn, code)) return s;
  if (nq_status s = check_finite_absmax(fn, "absmax", absmax, blocks)) return s;
  const Kernels& k = kernels();
  for_block_ranges(blocks, n, [&](int64_t b0, int64_t b1) {
    k.blockwise8_dequantize(q, absmax, n, blocksize, b0, b1, code, x);
    return int64_t(-1);
  });
  return NQ_OK;
}

}  // namespace

extern "C" {

NQ_API nq_status nq_blockwise8_quantize(const float* x, int64_t n, int32_t blocksize, const float* code,
                                        uint8_t* q, float* absmax) {
  constexpr const char* fn = "nq_blockwise8_quantize";
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, code);
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, absmax);
  NQ_CHECK_POSITIVE(fn, n);
  NQ_CHECK_BLOCKSIZE(fn, blocksize, 64, 4096);
  return quantize8(fn, "x", x, n, blocksize, 0.0f, code, q, absmax);
}

NQ_API nq_status nq_blockwise8_dequantize(const uint8_t* q, const float* absmax, int64_t n, int32_t blocksize,
                                          const float* code, float* x) {
  constexpr const char* fn = "nq_blockwise8_dequantize";
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, absmax);
  NQ_CHECK_NOT_NULL(fn, code);
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_POSITIVE(fn, n);
  NQ_CHECK_BLOCKSIZE(fn, blocksize, 64, 4096);
  return dequantize8(fn, q, absmax, n, blocksize, code, x);
}

NQ_API nq_status nq_absmax_compress(const float* absmax, int64_t blocks, int32_t nested_blocksize,
                                    const float* code, uint8_t* q, float* nested_absmax, float* out_offset) {
  constexpr const char* fn = "nq_absmax_compress";
  NQ_CHECK_NOT_NULL(fn, absmax);
  NQ_CHECK_NOT_NULL(fn, code);
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, nested_absmax);
  NQ_CHECK_NOT_NULL(fn, out_offset);
  NQ_CHECK_POSITIVE(fn, blocks);
  NQ_CHECK_BLOCKSIZE(fn, nested_blocksize, 64, 4096);
  NQ_CHECK_NO_OVERLAP(fn, out_offset, 4, absmax, blocks * 4);
  NQ_CHECK_NO_OVERLAP(fn, out_offset, 4, nested_absmax, ceil_div(blocks, nested_blocksize) * 4);
  NQ_CHECK_NO_OVERLAP(fn, out_offset, 4, q, blocks);
  if (nq_status s = check_finite_absmax(fn, "absmax", absmax, blocks)) return s;
  // bnb: offset = absmax.mean() (an fp32 torch reduction); we sum in double, then round once.
  double sum = 0.0;
  for (int64_t b = 0; b < blocks; ++b) sum += absmax[b];
  const float offset = static_cast<float>(sum / static_cast<double>(blocks));
  if (nq_status s = quantize8(fn, "absmax", absmax, blocks, nested_blocksize, offset, code, q, nested_absmax))
    return s;
  *out_offset = offset;
  return NQ_OK;
}

NQ_API nq_status nq_absmax_decompress(const uint8_t* q, const float* nested_absmax, float offset,
                                      int64_t blocks, int32_t nested_blocksize, const float* code,
                                      float* absmax) {
  constexpr const char* fn = "nq_absmax_decompress";
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, nested_absmax);
  NQ_CHECK_NOT_NULL(fn, code);
  NQ_CHECK_NOT_NULL(fn, absmax);
  NQ_CHECK_POSITIVE(fn, blocks);
  NQ_CHECK_BLOCKSIZE(fn, nested_blocksize, 64, 4096);
  NQ_CHECK(abs_bits(offset) < kNonFiniteBits, NQ_ERR_NON_FINITE, "%s: argument 'offset' is NaN or Inf", fn);
  if (nq_status s = dequantize8(fn, q, nested_absmax, blocks, nested_blocksize, code, absmax)) return s;
  for (int64_t b = 0; b < blocks; ++b) absmax[b] += offset;  // bnb: absmax += offset (fp32)
  return NQ_OK;
}

}  // extern "C"
