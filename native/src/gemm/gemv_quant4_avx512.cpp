// 4-bit GEMV (M <= 4): streams W once. Each 16-byte load holds 32 codes; the high nibbles
// (even elements) and low nibbles (odd elements) index a 16-entry table already scaled by
// the block's absmax (vpermps uses only the low 4 index bits, so the low nibble needs no
// mask), against x pre-split into even/odd halves per 32-chunk. Threads split N (gemv.h).
#include <immintrin.h>

#include "gemm/gemm_quant4.h"
#include "gemm/gemv.h"
#include "gemm/quant4_weight.h"

namespace nq::gemm {
namespace {

template <int M>
void gemv_rows(int64_t n0, int64_t n1, const float* xs, const nq_quant4_weight& w, const float* bias, float* y) {
  const int64_t K = w.k, chunks = K / 32;
  const int shift = __builtin_ctz(unsigned(w.blocksize));  // blocksize is a power of two
  const __m512 code = _mm512_loadu_ps(quant4_code(w));
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* row = w.packed + n * K / 2;
    // Four accumulators per row (even/odd elements x alternate chunks) keep four FMA chains
    // in flight instead of one.
    __m512 acc[M][4];
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm512_setzero_ps();
    int64_t cur = -1;
    __m512 tab = code;
    const auto chunk = [&](int64_t c, int slot) {
      const int64_t b = (n * K + c * 32) >> shift;
      if (b != cur) {
        cur = b;
        tab = _mm512_mul_ps(code, _mm512_set1_ps(quant4_absmax(w, b)));
      }
      const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c * 16)));
      const __m512 we = _mm512_permutexvar_ps(_mm512_srli_epi32(bytes, 4), tab);
      const __m512 wo = _mm512_permutexvar_ps(bytes, tab);
      for (int i = 0; i < M; ++i) {
        const float* xc = xs + i * K + c * 32;
        acc[i][slot] = _mm512_fmadd_ps(we, _mm512_loadu_ps(xc), acc[i][slot]);
        acc[i][slot + 1] = _mm512_fmadd_ps(wo, _mm512_loadu_ps(xc + 16), acc[i][slot + 1]);
      }
    };
    int64_t c = 0;
    for (; c + 1 < chunks; c += 2) {
      chunk(c, 0);
      chunk(c + 1, 2);
    }
    if (c < chunks) chunk(c, 0);
    for (int i = 0; i < M; ++i) acc[i][0] = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][2]), acc[i][3]);
    for (int i = 0; i < M; ++i)
      y[i * w.n + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1])) + (bias ? bias[n] : 0.0f);
  }
}

}  // namespace

void quant4_gemv_avx512(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias, float* y,
                        float* x_shuffled) {
  // x_shuffled[i][32c + t] = x[i][32c + 2t] and [32c + 16 + t] = x[i][32c + 2t + 1].
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < w.k; c += 32) {
      const __m512 a = _mm512_loadu_ps(x + i * w.k + c), b = _mm512_loadu_ps(x + i * w.k + c + 16);
      _mm512_storeu_ps(x_shuffled + i * w.k + c, _mm512_permutex2var_ps(a, even, b));
      _mm512_storeu_ps(x_shuffled + i * w.k + c + 16, _mm512_permutex2var_ps(a, odd, b));
    }
  for_row_ranges(w.n, w.n * w.k / 2 * m, [&](int64_t n0, int64_t n1) {
    switch (m) {
      case 1: gemv_rows<1>(n0, n1, x_shuffled, w, bias, y); break;
      case 2: gemv_rows<2>(n0, n1, x_shuffled, w, bias, y); break;
      case 3: gemv_rows<3>(n0, n1, x_shuffled, w, bias, y); break;
      default: gemv_rows<4>(n0, n1, x_shuffled, w, bias, y); break;
    }
  });
}

}  // namespace nq::gemm
