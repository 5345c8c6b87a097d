// AVX-512 B packers for the 4-bit weight GEMMs: NF4/FP4 codes are decoded straight into the
// fp32 micro-panel layout [k][nr] with one vpermps lookup into the 16-entry code table and one
// multiply by the block's absmax, i.e. code[q] * absmax exactly as quant4_decode computes it.
#include <immintrin.h>

#include <algorithm>

#include "gemm/gemm_quant4.h"
#include "gemm/quant4_weight.h"
#include "gemm/transpose_u8.h"

namespace nq::gemm {
namespace {

inline int log2_of(int64_t pow2) { return __builtin_ctzll(static_cast<unsigned long long>(pow2)); }

}  // namespace

int64_t pack_b_quant4_fwd_avx512(const nq_quant4_weight& w, float* out, int nr, int64_t panel_elems, int64_t k0,
                                 int64_t kc, int64_t n0, int64_t nc) {
  const __m512 code = _mm512_loadu_ps(quant4_code(w));
  const __m512i nib = _mm512_set1_epi32(15);
  const int bs_log2 = log2_of(w.blocksize);
  const int64_t nc16 = nc / 16 * 16;
  for (int64_t j = 0; j < nc16; j += 16) {
    float* panel = out + (j / nr) * panel_elems + j % nr;  // 16 columns inside one panel (nr % 16 == 0)
    const uint8_t* src = w.packed + ((n0 + j) * w.k + k0) / 2;
    for (int64_t k = 0; k < kc; k += 32) {
      // 32 k of 16 W rows: 16 bytes each, all inside one absmax block (k0, k, w.k multiples of 32).
      __m128i r[16];
      alignas(64) float scale[16];
      for (int i = 0; i < 16; ++i) {
        r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * (w.k / 2) + k / 2));
        scale[i] = quant4_absmax(w, ((n0 + j + i) * w.k + k0 + k) >> bs_log2);
      }
      const __m512 s = _mm512_load_ps(scale);
      transpose16x16_u8(r);
      for (int p = 0; p < 16; ++p) {  // byte p = k pair (2p: high nibble, 2p+1: low nibble)
        const __m512i q = _mm512_cvtepu8_epi32(r[p]);
        float* o = panel + (k + 2 * p) * nr;
        _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), code), s));
        _mm512_storeu_ps(o + nr, _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(q, nib), code), s));
      }
    }
  }
  return nc16;
}

void pack_b_quant4_bwd_avx512(const nq_quant4_weight& w, float* out, int nr, int64_t panel_elems, int64_t k0,
                              int64_t kc, int64_t n0, int64_t nc) {
  const __m512 code = _mm512_loadu_ps(quant4_code(w));
  const __m512i nib = _mm512_set1_epi32(15);
  const __m512i shift = _mm512_set_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);  // even k: high nibble
  const int bs_log2 = log2_of(w.blocksize);
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t e0 = (k0 + k) * w.k + n0;  // B(k, j) = W[k0 + k][n0 + j]: one W row run
    float* ok = out + k * nr;
    for (int64_t j0 = 0; j0 < nc; j0 += nr, ok += panel_elems) {
      const int64_t cols = std::min<int64_t>(nr, nc - j0);
      for (int64_t c = 0; c < cols; c += 16) {
        // 16 elements = 8 bytes inside one absmax block (e0 + j0 + c is a multiple of 16).
        const int64_t e = e0 + j0 + c;
        const __m128i b8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w.packed + e / 2));
        const __m512i q = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(b8, b8));  // each byte twice
        const __m512i idx = _mm512_and_si512(_mm512_srlv_epi32(q, shift), nib);
        const __m512 s = _mm512_set1_ps(quant4_absmax(w, e >> bs_log2));
        _mm512_storeu_ps(ok + c, _mm512_mul_ps(_mm512_permutexvar_ps(idx, code), s));
      }
    }
  }
}

}  // namespace nq::gemm
