// int8 GEMV (M <= 4) for LLM.int8(): streams W rows once, no packing. Each 64-byte run of a
// W row is made unsigned (w ^ 0x80 = w + 128, the blocked kernel's convention, so the same
// 128 * rowsum(q_x) correction and epilogue apply) and vpdpbusd'ed against the L1-resident
// quantized X rows; the K tail is a masked load of both operands (zero X lanes add nothing).
#include <immintrin.h>

#include "gemm/gemm_int8.h"

namespace nq::gemm {
namespace {

template <int M>
void gemv_rows(int64_t j0, int64_t j1, int64_t k, const int8_t* q, const int8_t* w, int32_t* out, int64_t ld) {
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  for (int64_t j = j0; j < j1; ++j) {
    const int8_t* wr = w + j * k;
    __m512i acc[M][2];
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    int64_t p = 0;
    for (; p + 128 <= k; p += 128)
      for (int u = 0; u < 2; ++u) {
        const __m512i wv = _mm512_xor_si512(_mm512_loadu_si512(wr + p + 64 * u), flip);
        for (int i = 0; i < M; ++i)
          acc[i][u] = _mm512_dpbusd_epi32(acc[i][u], wv, _mm512_loadu_si512(q + i * k + p + 64 * u));
      }
    for (; p < k; p += 64) {
      const __mmask64 mask = k - p >= 64 ? ~__mmask64(0) : (__mmask64(1) << (k - p)) - 1;
      const __m512i wv = _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, wr + p), flip);
      for (int i = 0; i < M; ++i)
        acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], wv, _mm512_maskz_loadu_epi8(mask, q + i * k + p));
    }
    for (int i = 0; i < M; ++i)
      out[i * ld + (j - j0)] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc[i][0], acc[i][1]));
  }
}

}  // namespace

void int8_gemv_avx512vnni(int64_t m, int64_t k, const int8_t* q, const int8_t* w, int64_t j0, int64_t j1,
                          int32_t* out, int64_t ld) {
  switch (m) {
    case 1: gemv_rows<1>(j0, j1, k, q, w, out, ld); break;
    case 2: gemv_rows<2>(j0, j1, k, q, w, out, ld); break;
    case 3: gemv_rows<3>(j0, j1, k, q, w, out, ld); break;
    default: gemv_rows<4>(j0, j1, k, q, w, out, ld); break;
  }
}

}  // namespace nq::gemm
