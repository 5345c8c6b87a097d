// Element access to a 4-bit weight (nq_quant4_weight): validation, absmax (plain or
// double-quantized) and dequantisation of contiguous runs of the flattened (n, k) tensor.
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::gemm {

// Validate `w` for function `fn`; returns NQ_OK or a failure with the field named.
nq_status quant4_weight_check(const char* fn, const nq_quant4_weight* w);

inline float quant4_absmax(const nq_quant4_weight& w, int64_t block) {
  if (w.absmax != nullptr) return w.absmax[block];
  // nested_blocksize is a validated power of two: a shift, not a division, per block.
  return w.nested_code[w.absmax_q[block]] * w.nested_absmax[block >> __builtin_ctz(unsigned(w.nested_blocksize))] +
         w.nested_offset;
}

// Code index (0..15) of element e of the flattened weight: the first of a byte's two in its high nibble.
inline int quant4_nibble(const nq_quant4_weight& w, int64_t e) {
  const uint8_t byte = w.packed[e >> 1];
  return (e & 1) ? (byte & 15) : (byte >> 4);
}

// 16 code values of the weight's data type.
const float* quant4_code(const nq_quant4_weight& w);

// out[0..count) = dequantised elements e0 .. e0+count of the flattened weight (bit-identical
// to nq_quant4_dequantize: code[q] * absmax).
void quant4_decode(const nq_quant4_weight& w, int64_t e0, int64_t count, float* out);

}  // namespace nq::gemm
