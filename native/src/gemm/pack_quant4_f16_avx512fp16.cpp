// AVX-512 B packers from 4-bit weights for NQ_COMPUTE_F16 (chunk layouts in f16_chunk.h). Each
// computes exactly what the scalar chunk rule (f16_weight_chunk) computes.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "gemm/quant4_f16.h"
#include "gemm/quant4_weight.h"
#include "gemm/transpose_u8.h"

namespace nq::gemm {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

inline int log2_of(int64_t pow2) { return __builtin_ctzll(static_cast<unsigned long long>(pow2)); }

}  // namespace

int64_t pack_b_quant4_f16_fwd_avx512fp16(const nq_quant4_weight& w, uint8_t* out, int64_t panel_bytes, int64_t k0,
                                         int64_t kc, int64_t n0, int64_t nc) {
  // 64-aligned runs of one W row lie in one block: B = fp16(code), scale = absmax.
  const __m256i code = _mm512_cvtps_ph(_mm512_loadu_ps(quant4_code(w)), kRound);
  const __m256i nib = _mm256_set1_epi16(15);
  const int bs_log2 = log2_of(w.blocksize);
  const int64_t nc16 = nc / 16 * 16;
  for (int64_t j = 0; j < nc16; j += 16) {
    uint8_t* panel = out + (j / kF16Nr) * panel_bytes;  // 16 columns inside one panel
    const int64_t col = j % kF16Nr;
    const uint8_t* src = w.packed + ((n0 + j) * w.k + k0) / 2;
    for (int64_t k = 0; k < kc; k += 32) {
      uint8_t* chunk = panel + (k / kF16Chunk) * kF16BChunkBytes;
      const int64_t kk = k % kF16Chunk;
      if (kk == 0) {
        float* sc = reinterpret_cast<float*>(chunk + kF16BScaleOffset) + col;
        for (int i = 0; i < 16; ++i) sc[i] = quant4_absmax(w, ((n0 + j + i) * w.k + k0 + k) >> bs_log2);
      }
      if (j + 32 <= nc16) {  // a slice of the next 16 W rows, whole (as the backward packer; ~5% faster from L3)
        const int64_t steps = (kc + 31) / 32, s = k / 32;
        for (int64_t i = s * 16 / steps; i < (s + 1) * 16 / steps; ++i) {
          const uint8_t* row = src + (16 + i) * (w.k / 2);
          for (int64_t b = 0; b < kc / 2; b += 64) _mm_prefetch(reinterpret_cast<const char*>(row + b), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(row + (kc + 1) / 2 - 1), _MM_HINT_T0);
        }
      }
      __m128i r[16];  // 32 k of 16 W rows
      for (int i = 0; i < 16; ++i)
        r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * (w.k / 2) + k / 2));
      transpose16x16_u8(r);
      auto* o = reinterpret_cast<__m256i*>(chunk + (kk * kF16Nr + col) * 2);
      for (int p = 0; p < 16; ++p) {  // byte p = k pair (2p: high nibble, 2p+1: low nibble)
        const __m256i q = _mm256_cvtepu8_epi16(r[p]);
        _mm256_storeu_si256(o + (2 * p) * (kF16Nr / 16), _mm256_permutexvar_epi16(_mm256_srli_epi16(q, 4), code));
        _mm256_storeu_si256(o + (2 * p + 1) * (kF16Nr / 16), _mm256_permutexvar_epi16(_mm256_and_si256(q, nib), code));
      }
    }
  }
  return nc16;
}

int64_t pack_b_quant4_f16_bwd_avx512fp16(const nq_quant4_weight& w, uint8_t* out, int64_t panel_bytes, int64_t k0,
                                         int64_t kc, int64_t n0, int64_t nc) {
  // A row of a chunk's 32 columns (16 bytes of W, broadcast to the 4 lanes by the load) in 3 ALU uops: vpshufb
  // puts byte i in both words 2i, 2i + 1, vpsrlvw moves the high nibble down in the even word (even column),
  // vpermw looks the low 4 bits up in the row's table fp16(code * mult[r]), one vmulps rounded once as the scalar
  // rule (a vpermps, vmulps, vcvtps2ph per 16 weights took ~8 uops: BM_PackBQuant4F16 bwd 20-40% slower).
  const __m512 code = _mm512_loadu_ps(quant4_code(w));
  const __m512i twice = _mm512_set_epi8(15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12, 11, 11, 11, 11,
                                        10, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 8, 7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4,
                                        4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  const __m512i shift = _mm512_set1_epi32(4);  // words: 4 (even), 0 (odd)
  const int bs_log2 = log2_of(w.blocksize);
  const int64_t nc16 = nc / 16 * 16;
  // Groups of 32 columns when each row's 32 lie in one block (blocks hold >= 32 elements), else of 16; a last
  // group of 16 is masked.
  const int64_t group = w.k % 32 == 0 && n0 % 32 == 0 ? 32 : 16, groups = (nc16 + group - 1) / group;
  // When blocks tile W's rows evenly (w.k % blocksize == 0), row r's block is the first row's plus
  // r * w.k / blocksize, so column groups whose first row shares a block share all of them.
  const bool rows_aligned = w.k % w.blocksize == 0;
  alignas(64) float mult[kF16Chunk];
  alignas(64) uint16_t table[kF16Chunk][32];  // row r's 16 values twice: vpermw reads 5 index bits
  for (int64_t k = 0; k < kc; k += kF16Chunk) {
    const int len = int(std::min<int64_t>(kF16Chunk, kc - k));
    float scale = 0.0f;
    int64_t prev_block = -1;
    for (int64_t j = 0; j < nc16; j += group) {
      const int cols = int(std::min(group, nc16 - j));
      // Row r of the chunk: cols elements = cols / 2 bytes of W row k0 + k + r, all in one block.
      const int64_t e0 = (k0 + k) * w.k + n0 + j;
      const int64_t block0 = e0 >> bs_log2;
      if (!(rows_aligned && block0 == prev_block)) {
        prev_block = block0;
        if (block0 == ((e0 + (len - 1) * w.k) >> bs_log2)) {
          scale = quant4_absmax(w, block0);
          std::fill(mult, mult + len, 1.0f);
        } else {
          float m[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // four chains: max's latency, not its count, bound this loop
          for (int r = 0; r < len; ++r) {
            mult[r] = quant4_absmax(w, (e0 + r * w.k) >> bs_log2);
            if (std::fabs(mult[r]) > m[r & 3]) m[r & 3] = std::fabs(mult[r]);
          }
          const int s = f16_weight_shift(std::max(std::max(m[0], m[1]), std::max(m[2], m[3])));
          const float up = pow2f(s);
          for (int r = 0; r < len; ++r) mult[r] *= up;
          scale = pow2f(-s);
        }
        for (int r = 0; r < len; ++r) {
          const __m256i t = _mm512_cvtps_ph(_mm512_mul_ps(code, _mm512_set1_ps(mult[r])), kRound);
          _mm256_store_si256(reinterpret_cast<__m256i*>(table[r]), t);
          _mm256_store_si256(reinterpret_cast<__m256i*>(table[r] + 16), t);
        }
      }
      // A slice of the next chunk's rows of W, whole, per column group: its 64 short runs, rows of W apart, are
      // more streams than the hardware prefetchers follow (W from L3: 10-15% faster; one line ahead per group
      // in the same rows: ~5%).
      if (k + kF16Chunk < kc) {
        const int64_t g = j / group, next = std::min<int64_t>(kF16Chunk, kc - k - kF16Chunk);
        for (int64_t r = g * next / groups; r < (g + 1) * next / groups; ++r) {
          const uint8_t* row = w.packed + ((k0 + k + kF16Chunk + r) * w.k + n0) / 2;
          for (int64_t b = 0; b < nc16 / 2; b += 64) _mm_prefetch(reinterpret_cast<const char*>(row + b), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(row + nc16 / 2 - 1), _MM_HINT_T0);
        }
      }
      uint8_t* chunk = out + (j / kF16Nr) * panel_bytes + (k / kF16Chunk) * kF16BChunkBytes;
      const int64_t col = j % kF16Nr;  // groups never straddle a 96-column panel
      float* sc = reinterpret_cast<float*>(chunk + kF16BScaleOffset) + col;
      _mm512_storeu_ps(sc, _mm512_set1_ps(scale));
      if (cols == 32) _mm512_storeu_ps(sc + 16, _mm512_set1_ps(scale));
      const __mmask32 words = cols == 32 ? 0xffffffffu : 0xffffu;
      const uint8_t* row0 = w.packed + e0 / 2;  // locals: the stores may alias w, whose fields were reloaded per row
      const int64_t row_bytes = w.k / 2;
      for (int r = 0; r < len; ++r) {
        const auto* src = reinterpret_cast<const __m128i*>(row0 + r * row_bytes);
        const __m512i b = _mm512_broadcast_i32x4(cols == 32 ? _mm_loadu_si128(src) : _mm_loadl_epi64(src));
        const __m512i idx = _mm512_srlv_epi16(_mm512_shuffle_epi8(b, twice), shift);
        const __m512i v = _mm512_permutexvar_epi16(idx, _mm512_load_si512(table[r]));
        _mm512_mask_storeu_epi16(chunk + (r * kF16Nr + col) * 2, words, v);
      }
    }
  }
  return nc16;
}

}  // namespace nq::gemm
