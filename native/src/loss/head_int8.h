// NQ_COMPUTE_INT8 for nq_linear_cross_entropy: the two products of a vocabulary block as exact int32 sums on
// the int8 GEMM kernel (VNNI, or AVX2 int16 pairs; plain loops where neither runs).
//
// Logits L = x W_blk^T: rows of x quantized by their absmax (sx = absmax / 127), rows of W likewise (sw);
//   L[i][v] = float(Σ_k qx qw) * (sx_i * sw_v).
// U += E' W_blk, where E' = e^(L - m) in [0, 1] with the target zeroed: the row's scale is the block's own
// (se = max_v E' / 254), not the whole row's, so the small probabilities of a block far from the largest
// survive (a row-wide int8 scale rounds every p < 1/254 of the top one to 0, and the softmax gradient of a
// 50k vocabulary is made of those). E' >= 0 uses the 255 levels 0..254 as qe = round(E' / se) - 127 in
// int8 plus 127 Σ_v qb per column. W_blk's columns are quantized per block (sb_j = max_v |W[v][j]| / 127):
//   U[i][j] += float(Σ_v qe qb + 127 Σ_v qb) * (se_i * sb_j).
// Every path forms the same integers and the same epilogue (int8_out_row), so the kernels and the loops give
// equal bits for equal E'.
#pragma once

#include <cstdint>

#include "gemm/driver.h"

namespace nq::loss {

constexpr int64_t kInt8Block = 384;  // vocabulary entries per block (kBlock of linear_cross_entropy.cpp)

// W_blk (vb, c) quantized for both products: qw/sw as the logits' B (rows), qb/sb/colterm (127 Σ_v qb) as U's.
struct Int8BlockOps {
  const int8_t* qw;
  const float* sw;
  const int8_t* qb;
  const float* sb;
  const int32_t* colterm;
  // Kernel operands packed once (nq_linear_cross_entropy_pack), else not set: the driver packs qw and qb.
  const uint8_t* fwd = nullptr;  // prepacked B (c, vb)
  const uint8_t* bwd = nullptr;  // prepacked B (vb, c)
};

// x (n, c) quantized once per call: rows qx with sx = absmax / 127 and the kernel's offset correction; packed
// as the kernel's A when there is a kernel.
struct Int8X {
  const int8_t* qx;
  const float* sx;
  const int32_t* corr;
  gemm::PrepackedA a;
};

// Bytes of the plain operands of one block (int8_block_quantize's out) and of x's (int8_x_quantize's out).
int64_t int8_block_plain_bytes(int64_t c);
int64_t int8_x_bytes(const gemm::Ukernel* uk, int64_t n, int64_t c);

// Quantizes W_blk (vb, c) into `out` (int8_block_plain_bytes) and returns the views.
Int8BlockOps int8_block_quantize(const float* wb, int64_t vb, int64_t c, uint8_t* out);
Int8X int8_x_quantize(const gemm::Ukernel* uk, const float* x, int64_t n, int64_t c, uint8_t* out);

// Packed blocks (uk's layouts plus the scales), at a fixed stride of int8_block_packed_bytes.
int64_t int8_block_packed_bytes(const gemm::Ukernel& uk, int64_t c);
void int8_block_pack(const gemm::Ukernel& uk, const float* wb, int64_t vb, int64_t c, uint8_t* plain, uint8_t* out);
Int8BlockOps int8_block_packed_at(const gemm::Ukernel& uk, int64_t vb, int64_t c, const uint8_t* at);

// l (n, vb) = the block's logits.
void int8_logits(const gemm::Ukernel* uk, const Int8X& x, int64_t n, int64_t c, const Int8BlockOps& b, int64_t vb,
                 float* l);

// One row of E' (vb values in [0, 1], or NaN) -> qe and its scale se; returns the kernel's offset correction.
int32_t int8_e_row(const gemm::Ukernel* uk, const float* e, int64_t vb, int8_t* qe, float* se);

// u (n, c) = (first ? 0 : u) + the block's E' W_blk from qe (n, vb), se and corr (int8_e_row's); acc: n c int32
// of scratch.
void int8_u_accumulate(const gemm::Ukernel* uk, const int8_t* qe, const float* se, const int32_t* corr, int64_t n,
                       int64_t vb, int64_t c, const Int8BlockOps& b, bool first, int32_t* acc, float* u);

}  // namespace nq::loss
