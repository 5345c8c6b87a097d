// NQ_COMPUTE_F16 chunk rules, scalar emulation and the A packer functor (f16_chunk.h).
#include "gemm/f16_chunk.h"

namespace nq::gemm {
namespace {

// Chunks are counted from k = 0 in every K block, so a block must hold whole chunks.
static_assert(kBPanelBytes / 4 % kF16Chunk == 0, "KC for Fmt::F16C must be a multiple of the fp16 chunk");
// The driver sizes panels as fmt_bytes per element: 8 for Fmt::F16CA (A), 4 for Fmt::F16C (B).
static_assert(kF16AChunkBytes <= kF16Chunk * kF16Mr * 8 && kF16BChunkBytes <= kF16Chunk * kF16Nr * 4,
              "a chunk must fit its share of the driver's panel");

inline _Float16 f16_of(uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, 2);
  return h;
}

// vfmadd231ph: one rounding of a*b + c. In double a*b is exact (22 bits) and so is the sum
// unless one term is < 2^-42 of the other, where the larger is returned either way.
inline _Float16 fma16(_Float16 a, _Float16 b, _Float16 c) {
  return static_cast<_Float16>(double(a) * double(b) + double(c));
}

// vals[t * vstride] = fp16(x[t * xstride] * 2^s) with s = shift(max |x|) (NaN ignored); returns 2^-s.
template <class Shift>
float scaled_chunk(const float* x, int64_t xstride, int len, uint16_t* vals, int64_t vstride, Shift shift) {
  float m = 0.0f;
  for (int t = 0; t < len; ++t) {
    const float a = std::fabs(x[t * xstride]);
    if (a > m) m = a;
  }
  const int s = shift(m);
  const float up = pow2f(s);
  for (int t = 0; t < len; ++t) vals[t * vstride] = f16_bits(x[t * xstride] * up);
  return pow2f(-s);
}

}  // namespace

float f16_act_chunk(const float* x, int len, uint16_t* vals, int64_t vstride) {
  return scaled_chunk(x, 1, len, vals, vstride, f16_act_shift);
}

float f16_b_chunk(const float* x, int64_t xstride, int len, uint16_t* vals, int64_t vstride) {
  return scaled_chunk(x, xstride, len, vals, vstride, f16_weight_shift);
}

void act_chunks(const float* x, int64_t m, int64_t len, std::vector<uint16_t>& v, std::vector<float>& inv) {
  const int64_t nch = chunks_of(len);
  v.assign(size_t(m * len), 0);
  inv.assign(size_t(m * nch), 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < nch; ++c)
      inv[size_t(i * nch + c)] =
          f16_act_chunk(x + i * len + c * kF16Chunk, chunk_len(len, c), &v[size_t(i * len + c * kF16Chunk)], 1);
}

float dot_f16(const uint16_t* a, const float* ainv, const uint16_t* b, const float* bscale, int64_t len, float c) {
  for (int64_t ch = 0; ch < chunks_of(len); ++ch) {
    _Float16 acc = 0;
    for (int64_t t = ch * kF16Chunk; t < ch * kF16Chunk + chunk_len(len, ch); ++t)
      acc = fma16(f16_of(a[t]), f16_of(b[t]), acc);
    c = std::fma(float(acc), bscale[ch] * ainv[ch], c);
  }
  return c;
}

void PackAF16::operator()(void* out, const PackGeom&, int64_t i0, int rows, int64_t k0, int64_t kc) const {
  // The driver packs row panels in order: the next one, when it is a whole one.
  const float* next = i0 + 2 * kF16Mr <= m ? x + (i0 + kF16Mr) * ld + k0 : nullptr;
  pack_a_f16_avx512fp16(x + i0 * ld + k0, ld, rows, kc, static_cast<uint8_t*>(out), next);
}

}  // namespace nq::gemm
