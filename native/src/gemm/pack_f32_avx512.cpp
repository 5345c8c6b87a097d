// AVX-512 transposing packer for fp32 panels whose source rows are k-contiguous (W in
// Y = X W^T): 16x16 in-register transposes, 64 shuffles per 256 floats against 96 for four
// AVX2 8x8 transposes.
#include <immintrin.h>

#include "gemm/gemm_f32.h"

namespace nq::gemm {

void transpose_panel_f32_avx512(const float* src, int64_t ss, int rows, int64_t kc, float* out, int64_t ds) {
  const int64_t k16 = kc / 16 * 16;
  for (int r0 = 0; r0 < rows; r0 += 16) {
    const float* s = src + r0 * ss;
    float* o = out + r0;
    for (int64_t k = 0; k < k16; k += 16) {
      __m512 a[16], t[16];
      for (int i = 0; i < 16; ++i) a[i] = _mm512_loadu_ps(s + i * ss + k);
      for (int i = 0; i < 8; ++i) {  // row pairs interleaved per 128-bit lane
        t[2 * i] = _mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]);
      }
      for (int i = 0; i < 4; ++i) {  // a[4i + c], lane L: rows 4i..4i+3 of column 4L + c
        a[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        a[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        a[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        a[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
      }
      for (int c = 0; c < 4; ++c) {  // gather lane L of the four row quads: column 4L + c
        const __m512 x0 = _mm512_shuffle_f32x4(a[c], a[4 + c], 0x88), x1 = _mm512_shuffle_f32x4(a[c], a[4 + c], 0xdd);
        const __m512 y0 = _mm512_shuffle_f32x4(a[8 + c], a[12 + c], 0x88),
                     y1 = _mm512_shuffle_f32x4(a[8 + c], a[12 + c], 0xdd);
        _mm512_storeu_ps(o + (k + c) * ds, _mm512_shuffle_f32x4(x0, y0, 0x88));
        _mm512_storeu_ps(o + (k + 4 + c) * ds, _mm512_shuffle_f32x4(x1, y1, 0x88));
        _mm512_storeu_ps(o + (k + 8 + c) * ds, _mm512_shuffle_f32x4(x0, y0, 0xdd));
        _mm512_storeu_ps(o + (k + 12 + c) * ds, _mm512_shuffle_f32x4(x1, y1, 0xdd));
      }
    }
    for (int64_t k = k16; k < kc; ++k)
      for (int i = 0; i < 16; ++i) o[k * ds + i] = s[i * ss + k];
  }
}

}  // namespace nq::gemm
