// 4-bit GEMV (M <= 4): streams W once with one constant 16-entry code table in a register.
// Four rows of W are 2k bytes, a whole number of 64-byte chunks, so each group of 4 rows is
// a flat run of k/32 chunks with no row tails. A chunk is read by four loads at byte offsets
// 0..3: dword j of the load at offset o holds byte 4j+o in its low byte and vpermps reads
// index bits 0..3 only, so each load gives one lookup as is and one after a 4-bit shift (8
// lookups, 4 shifts, no masks or widening); x is reordered once per call to match
// (x_chunk_order). Each 128-bit lane of a chunk's products is one 32-element piece, inside
// one absmax block (k % 32 == 0, blocksize >= 32): the 8 products are summed unscaled and
// multiplied once by the pieces' absmax, so there is no per-block table. A chunk crossing a
// row end adds its lanes to both rows under masks; rows are reduced four at a time.
// Threads split the groups (gemv.h), or a caller runs a range of groups on its own thread.
#include <immintrin.h>

#include <algorithm>

#include "gemm/arena.h"
#include "gemm/gemm_quant4.h"
#include "gemm/gemv.h"
#include "gemm/quant4_weight.h"

namespace nq::gemm {
namespace {

constexpr int64_t kWindowBlocks = 1024;  // double-quantized absmax decoded per window
// Software prefetch distance: W streamed from L3/DRAM ran at ~6.5 GB/s a thread without it;
// 512 / 1024 / 2048 / 4096 bytes ahead measured 8.0 / 8.5 / 9.5-10.9 / 8.5-10.5 GB/s.
constexpr int kPrefetchBytes = 2048;

// Elements after which the chunk layout of a 4-row group repeats: lcm(k, 128).
int64_t x_period(int64_t k) { return k * (128 / std::min<int64_t>(128, k & -k)); }

// vpermt2ps indices swapping register-index bit b with lane bit b of a pair of registers
// (hi = 0: the register whose bit b is 0), and the lane fix-up of x_chunk_order.
struct alignas(64) Lanes {
  int32_t v[16];
};
constexpr Lanes swap_bit(int b, int hi) {
  Lanes t{};
  for (int l = 0; l < 16; ++l) t.v[l] = (((l >> b) & 1) << 4) | (hi ? l | (1 << b) : l & ~(1 << b));
  return t;
}
constexpr Lanes kSwap[3][2] = {{swap_bit(0, 0), swap_bit(0, 1)}, {swap_bit(1, 0), swap_bit(1, 1)},
                               {swap_bit(2, 0), swap_bit(2, 1)}};
constexpr Lanes kFix = {{0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15}};  // (j0 j3 j2 j1) -> j

// xs (x_period(k)) = x in the order a chunk's lookups come out: for chunk c of a group,
// xs[128c + 16u + j] = x[(128c + 8j + (u ^ 1)) % k], lookup u of dword j being nibble u / 2
// of byte 4j + u / 2 (the high nibble of a byte is the even element). Per chunk that is the
// 8x16 transpose of the 16x8 block of 128 elements: three passes that each swap one register-
// index bit with one lane bit (8 vpermt2ps), then a lane fix-up (8 vpermps).
void x_chunk_order(const float* x, int64_t k, float* xs) {
  const int64_t period = x_period(k);
  alignas(64) float wrapped[128];
  for (int64_t c = 0; c < period; c += 128) {
    const float* src = x + c % k;
    if (c % k + 128 > k) {  // the chunk runs past the end of x (k % 128 != 0): wrap around
      for (int64_t e = 0, j = c % k; e < 128; ++e, j = j + 1 == k ? 0 : j + 1) wrapped[e] = x[j];
      src = wrapped;
    }
    __m512 v[8];  // v[r][l] = element 16r + l: register bits (j3 j2 j1), lane bits (j0 t2 t1 t0)
    for (int r = 0; r < 8; ++r) v[r] = _mm512_loadu_ps(src + 16 * r);
    for (int b = 2; b >= 0; --b) {
      const __m512i i0 = _mm512_load_si512(kSwap[b][0].v), i1 = _mm512_load_si512(kSwap[b][1].v);
      for (int r = 0; r < 8; ++r)
        if (!(r & (1 << b))) {
          const __m512 lo = v[r], hi = v[r | (1 << b)];
          v[r] = _mm512_permutex2var_ps(lo, i0, hi);
          v[r | (1 << b)] = _mm512_permutex2var_ps(lo, i1, hi);
        }
    }
    // Register t now holds element t of row j at lane (j0 j3 j2 j1).
    const __m512i fix = _mm512_load_si512(kFix.v);
    for (int u = 0; u < 8; ++u) _mm512_storeu_ps(xs + c + 16 * u, _mm512_permutexvar_ps(fix, v[u ^ 1]));
  }
}

// Double-quantized absmax decoded a window of blocks at a time, from a multiple of 16 so
// that 16 blocks share one nested absmax (nested_blocksize >= 64).
class AbsmaxWindow {
 public:
  explicit AbsmaxWindow(const nq_quant4_weight& w) : w_(w) {}
  // p with p[0..count) = absmax of blocks b .. b + count.
  const float* at(int64_t b, int64_t count) {
    if (b < lo_ || b + count > hi_) decode(b);
    return buf_ + (b - lo_);
  }

 private:
  void decode(int64_t b) {
    const int64_t blocks = (w_.n * w_.k + w_.blocksize - 1) / w_.blocksize;
    lo_ = b & ~int64_t(15);
    hi_ = std::min(blocks, lo_ + kWindowBlocks);
    const int ns = __builtin_ctz(unsigned(w_.nested_blocksize));
    const __m512 off = _mm512_set1_ps(w_.nested_offset);
    for (int64_t i = lo_; i < hi_; i += 16) {
      const __mmask16 m = __mmask16(hi_ - i >= 16 ? 0xffff : (1u << (hi_ - i)) - 1);
      const __m512i q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, w_.absmax_q + i));
      const __m512 c = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, q, w_.nested_code, 4);
      // code * nested + offset rounded twice, as quant4_absmax (bit-identical absmax).
      const __m512 a = _mm512_add_ps(_mm512_mul_ps(c, _mm512_set1_ps(w_.nested_absmax[i >> ns])), off);
      _mm512_mask_storeu_ps(buf_ + (i - lo_), m, a);
    }
  }

  const nq_quant4_weight& w_;
  int64_t lo_ = 0, hi_ = 0;
  alignas(64) float buf_[kWindowBlocks];
};

// s[i] = (64-byte chunk at p) . xs[i] (128 elements in chunk order; xs[i] = xs + i * ld),
// unscaled. Reads p[0, 67).
template <int M>
inline void chunk_dot(const uint8_t* p, const float* xs, int64_t ld, __m512 code, __m512 (&s)[M]) {
  __m512 wv[8];
  for (int o = 0; o < 4; ++o) {
    __m512i v = _mm512_loadu_si512(p + o);
    asm("" : "+v"(v));  // one load per offset: GCC would otherwise fold a second one into the shift
    wv[2 * o] = _mm512_permutexvar_ps(v, code);
    wv[2 * o + 1] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), code);
  }
  for (int i = 0; i < M; ++i) {
    const float* xc = xs + i * ld;
    if constexpr (M == 1) {  // two chains of 4: one of 8 exposes its latency on short rows
      __m512 a = _mm512_mul_ps(wv[0], _mm512_loadu_ps(xc)), b = _mm512_mul_ps(wv[1], _mm512_loadu_ps(xc + 16));
      for (int u = 2; u < 8; u += 2) {
        a = _mm512_fmadd_ps(wv[u], _mm512_loadu_ps(xc + 16 * u), a);
        b = _mm512_fmadd_ps(wv[u + 1], _mm512_loadu_ps(xc + 16 * u + 16), b);
      }
      s[i] = _mm512_add_ps(a, b);
    } else {  // M chains already overlap; the extra add would cost M uops per chunk
      __m512 a = _mm512_mul_ps(wv[0], _mm512_loadu_ps(xc));
      for (int u = 1; u < 8; ++u) a = _mm512_fmadd_ps(wv[u], _mm512_loadu_ps(xc + 16 * u), a);
      s[i] = a;
    }
  }
}

// [sum(a), sum(b), sum(c), sum(d)].
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  // a0+a2 b0+b2 a1+a3 b1+b3
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));  // per 128-bit lane
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// Rows [4 g0, min(4 g1, n)) of y.
template <int M, bool kDoubleQuant>
void gemv_groups(int64_t g0, int64_t g1, const float* xs, const nq_quant4_weight& w, const float* bias, float* y) {
  const int64_t k = w.k, pieces = k / 32, period = x_period(k), bytes = w.n * k / 2;
  const int64_t blocks = (w.n * k + w.blocksize - 1) / w.blocksize;
  const int s5 = __builtin_ctz(unsigned(w.blocksize)) - 5;  // log2(pieces per block)
  // A chunk starts at a multiple of 4 pieces, so it spans 1, 2 or 4 whole blocks.
  const int64_t chunk_blocks = s5 >= 2 ? 1 : 4 >> s5;
  const __mmask16 amask = __mmask16((1u << chunk_blocks) - 1);
  const __m512i sidx = _mm512_srli_epi32(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                                         std::min(s5, 2));  // lane -> block within the chunk
  const __m512 code = _mm512_loadu_ps(quant4_code(w));
  AbsmaxWindow window(w);
  // The weight's last chunk, zero-padded: the offset loads and the absmax load would read past it.
  alignas(64) uint8_t last_bytes[128] = {};
  alignas(16) float last_absmax[4] = {};
  const int64_t last_chunk = (bytes - 1) / 64;
  // The chunk that crosses the end of row r (the same in every group): lanes of row r + d.
  __mmask16 split[4][4] = {};
  for (int r = 0; r < 4; ++r)
    for (int d = 0; r + d < 4; ++d) {
      const int64_t c0 = (r + 1) * pieces / 4, lo = std::max<int64_t>(4 * c0, (r + d) * pieces);
      const int64_t hi = std::min<int64_t>(4 * c0 + 4, (r + d + 1) * pieces);
      if (hi > lo) split[r][d] = __mmask16(((1u << (4 * (hi - 4 * c0))) - 1) & ~((1u << (4 * (lo - 4 * c0))) - 1));
    }
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t n0 = 4 * g, rows = std::min<int64_t>(4, w.n - n0);
    const int64_t chunks = (rows * pieces + 3) / 4, first = n0 * pieces;  // first piece of the group
    const uint8_t* base = w.packed + n0 * (k / 2);
    const int64_t final_c = n0 + 4 >= w.n ? last_chunk - n0 * (k / 2) / 64 : -1;
    __m512 acc[4][M];
    for (int r = 0; r < 4; ++r)
      for (int i = 0; i < M; ++i) acc[r][i] = _mm512_setzero_ps();
    int64_t c = 0, xo = 0;  // chunk, its offset in the x period
    const auto next = [&](__m512 (&s)[M]) {  // s = products of chunk c, returns its scale; advances
      const int64_t b = (first + 4 * c) >> s5;
      const uint8_t* p = base + 64 * c;
      const float* am = kDoubleQuant ? nullptr : w.absmax + b;
      if (c == final_c) {
        std::copy(p, w.packed + bytes, last_bytes);
        const int64_t nb = std::min(chunk_blocks, blocks - b);
        for (int64_t i = 0; i < nb; ++i) last_absmax[i] = quant4_absmax(w, b + i);
        p = last_bytes;
        am = last_absmax;
      } else if (kDoubleQuant) {
        am = window.at(b, chunk_blocks);
      }
      _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
      chunk_dot<M>(p, xs + xo, period, code, s);
      ++c;
      xo = xo + 128 == period ? 0 : xo + 128;
      return _mm512_permutexvar_ps(sidx, _mm512_maskz_loadu_ps(amask, am));
    };
    // Row r's chunks: those inside it add to acc[r]; one crossing its end is split by lane.
    // Unrolled so that acc stays in registers.
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const int64_t end = std::min(rows, int64_t(r) + 1) * pieces;  // piece after row r (capped)
      __m512 s[M];
      while (c < chunks && 4 * c + 4 <= end) {
        const __m512 sc = next(s);
        for (int i = 0; i < M; ++i) acc[r][i] = _mm512_fmadd_ps(s[i], sc, acc[r][i]);
      }
      if (c < chunks && 4 * c < end) {  // reaches rows r .. (k < 128: up to 4 rows)
        const __m512 sc = next(s);
        for (int i = 0; i < M; ++i) s[i] = _mm512_mul_ps(s[i], sc);
#pragma GCC unroll 4
        for (int rr = r; rr < 4; ++rr)
          if (split[r][rr - r])
            for (int i = 0; i < M; ++i) acc[rr][i] = _mm512_mask_add_ps(acc[rr][i], split[r][rr - r], acc[rr][i], s[i]);
      }
    }
    const __m128 bv = bias ? _mm_maskz_loadu_ps(__mmask8((1u << rows) - 1), bias + n0) : _mm_setzero_ps();
    for (int i = 0; i < M; ++i)
      _mm_mask_storeu_ps(y + i * w.n + n0, __mmask8((1u << rows) - 1),
                         _mm_add_ps(reduce4(acc[0][i], acc[1][i], acc[2][i], acc[3][i]), bv));
  }
}

template <int M>
void gemv_groups(int64_t g0, int64_t g1, const float* xs, const nq_quant4_weight& w, const float* bias, float* y) {
  if (w.absmax != nullptr)
    gemv_groups<M, false>(g0, g1, xs, w, bias, y);
  else
    gemv_groups<M, true>(g0, g1, xs, w, bias, y);
}

// xs = the m rows of x in chunk order (x_chunk_order), in the calling thread's arena.
const float* reorder_x(const float* x, int64_t m, int64_t k) {
  const int64_t period = x_period(k);
  auto* xs = static_cast<float*>(arena_get(kSlotStats0, size_t(m * period) * 4));
  for (int64_t i = 0; i < m; ++i) x_chunk_order(x + i * k, k, xs + i * period);
  return xs;
}

void run_groups(int64_t m, int64_t g0, int64_t g1, const float* xs, const nq_quant4_weight& w, const float* bias,
                float* y) {
  switch (m) {
    case 1: gemv_groups<1>(g0, g1, xs, w, bias, y); break;
    case 2: gemv_groups<2>(g0, g1, xs, w, bias, y); break;
    case 3: gemv_groups<3>(g0, g1, xs, w, bias, y); break;
    default: gemv_groups<4>(g0, g1, xs, w, bias, y); break;
  }
}

}  // namespace

void quant4_gemv_avx512(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y) {
  const float* xs = reorder_x(x, m, w.k);
  for_row_ranges((w.n + 3) / 4, w.n * w.k / 2 * m,
                 [&](int64_t g0, int64_t g1) { run_groups(m, g0, g1, xs, w, bias, y); });
}

void quant4_gemv_rows_avx512(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, int64_t row0,
                             int64_t row1, float* y) {
  run_groups(m, row0 / 4, (row1 + 3) / 4, reorder_x(x, m, w.k), w, bias, y);
}

}  // namespace nq::gemm
