// fp16 8 x 96 micro-kernel (AVX-512 FP16) for NQ_COMPUTE_F16 (layouts and numerics in
// f16_chunk.h). Per 64-k chunk: 24 zmm fp16 accumulators (8 rows x 96 columns) take one
// vfmadd231ph per row and B vector; per k step 3 B vectors and 8 A broadcasts (plain loads,
// no shuffle port), 29 of 32 registers. The flush converts each accumulator to two fp32 halves
// and adds them times (B's column scale * A's row inverse scale) into C in L1: 6 port-0/5
// uops per accumulator against its 64 FMAs (~10%). Single thread, panels in cache: 315 GFLOP/s
// vs 175 for the fp32 8x48 kernel (kernel-only microbenchmark, loaded box, best of 2000).
#include <immintrin.h>

#include "gemm/f16_chunk.h"
#include "gemm/ukernel.h"

namespace nq::gemm {
namespace {

static_assert(kF16Chunk == 64 && kF16Mr == 8 && kF16Nr == 96 && kF16ARowBytes == 272,
              "the asm below hard-codes the tile, chunk and A row stride");

// Adds fp32(chunk sums) of one row times scale[j] * inv into C (or stores them). Each accumulator
// goes through memory: vcvtph2ps from memory is a p0 + load uop pair, the register form plus
// the extract of the upper half cost three port-5 uops that compete with the FMAs.
__attribute__((always_inline)) inline void flush_row(__m512h h0, __m512h h1, __m512h h2, float inv, const float* scale,
                                                     float* o, bool add) {
  alignas(64) uint16_t spill[3][32];
  _mm512_store_si512(spill[0], _mm512_castph_si512(h0));
  _mm512_store_si512(spill[1], _mm512_castph_si512(h1));
  _mm512_store_si512(spill[2], _mm512_castph_si512(h2));
  __asm__("" : "+m"(spill));  // keep GCC from turning the reloads back into extracts
  const __m512 ri = _mm512_set1_ps(inv);
  for (int j = 0; j < 3; ++j)
    for (int half = 0; half < 2; ++half) {
      const __m512 v = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(&spill[j][16 * half])));
      float* p = o + 32 * j + 16 * half;
      const __m512 f = _mm512_mul_ps(_mm512_loadu_ps(scale + 32 * j + 16 * half), ri);
      _mm512_storeu_ps(p, add ? _mm512_fmadd_ps(v, f, _mm512_loadu_ps(p)) : _mm512_mul_ps(v, f));
    }
}

void run_f16(int64_t groups, const void* a_, const void* b_, void* c_, int64_t ldc, bool accumulate) {
  const auto* a = static_cast<const uint8_t*>(a_);
  const auto* b = static_cast<const uint8_t*>(b_);
  auto* c = static_cast<float*>(c_);
  for (int64_t g = 0; g < groups; ++g, a += kF16AChunkBytes, b += kF16BChunkBytes) {
    __m512h c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32,
        c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
    const uint8_t* ak = a;
    const uint8_t* bk = b;
    int64_t k;
    // One chunk: c[i][j] = sum over 64 k of a[i][k] * b[k][j] in fp16, in asm: GCC turns
    // _mm512_set1_ph into vpbroadcastw (a port-5 uop per row, competing with the FMAs), and with
    // asm FMAs it shuffled and spilled accumulators. a[i][k] is broadcast by vbroadcastss of its
    // doubled 32-bit pair (one load per row; the FMA's own {1to32} broadcast is a load per FMA,
    // 30 loads per k step saturated the load ports: 278 vs 315 GFLOP/s). zmm27/28 take
    // alternate rows' A, zmm29..31 the k step's B vectors; B streams from L2, fetched 4 k ahead.
    __asm__(
      "vpxord %[c00], %[c00], %[c00]\n\t"
      "vpxord %[c01], %[c01], %[c01]\n\t"
      "vpxord %[c02], %[c02], %[c02]\n\t"
      "vpxord %[c10], %[c10], %[c10]\n\t"
      "vpxord %[c11], %[c11], %[c11]\n\t"
      "vpxord %[c12], %[c12], %[c12]\n\t"
      "vpxord %[c20], %[c20], %[c20]\n\t"
      "vpxord %[c21], %[c21], %[c21]\n\t"
      "vpxord %[c22], %[c22], %[c22]\n\t"
      "vpxord %[c30], %[c30], %[c30]\n\t"
      "vpxord %[c31], %[c31], %[c31]\n\t"
      "vpxord %[c32], %[c32], %[c32]\n\t"
      "vpxord %[c40], %[c40], %[c40]\n\t"
      "vpxord %[c41], %[c41], %[c41]\n\t"
      "vpxord %[c42], %[c42], %[c42]\n\t"
      "vpxord %[c50], %[c50], %[c50]\n\t"
      "vpxord %[c51], %[c51], %[c51]\n\t"
      "vpxord %[c52], %[c52], %[c52]\n\t"
      "vpxord %[c60], %[c60], %[c60]\n\t"
      "vpxord %[c61], %[c61], %[c61]\n\t"
      "vpxord %[c62], %[c62], %[c62]\n\t"
      "vpxord %[c70], %[c70], %[c70]\n\t"
      "vpxord %[c71], %[c71], %[c71]\n\t"
      "vpxord %[c72], %[c72], %[c72]\n\t"
      "mov $64, %[k]\n\t"
      "1:\n\t"
      "vmovdqu16 (%[b]), %%zmm29\n\t"
      "vmovdqu16 64(%[b]), %%zmm30\n\t"
      "vmovdqu16 128(%[b]), %%zmm31\n\t"
      "prefetcht0 768(%[b])\n\t"
      "prefetcht0 832(%[b])\n\t"
      "prefetcht0 896(%[b])\n\t"
      "vbroadcastss 0(%[a]), %%zmm27\n\t"
      "vfmadd231ph %%zmm27, %%zmm29, %[c00]\n\t"
      "vfmadd231ph %%zmm27, %%zmm30, %[c01]\n\t"
      "vfmadd231ph %%zmm27, %%zmm31, %[c02]\n\t"
      "vbroadcastss 272(%[a]), %%zmm28\n\t"
      "vfmadd231ph %%zmm28, %%zmm29, %[c10]\n\t"
      "vfmadd231ph %%zmm28, %%zmm30, %[c11]\n\t"
      "vfmadd231ph %%zmm28, %%zmm31, %[c12]\n\t"
      "vbroadcastss 544(%[a]), %%zmm27\n\t"
      "vfmadd231ph %%zmm27, %%zmm29, %[c20]\n\t"
      "vfmadd231ph %%zmm27, %%zmm30, %[c21]\n\t"
      "vfmadd231ph %%zmm27, %%zmm31, %[c22]\n\t"
      "vbroadcastss 816(%[a]), %%zmm28\n\t"
      "vfmadd231ph %%zmm28, %%zmm29, %[c30]\n\t"
      "vfmadd231ph %%zmm28, %%zmm30, %[c31]\n\t"
      "vfmadd231ph %%zmm28, %%zmm31, %[c32]\n\t"
      "vbroadcastss 1088(%[a]), %%zmm27\n\t"
      "vfmadd231ph %%zmm27, %%zmm29, %[c40]\n\t"
      "vfmadd231ph %%zmm27, %%zmm30, %[c41]\n\t"
      "vfmadd231ph %%zmm27, %%zmm31, %[c42]\n\t"
      "vbroadcastss 1360(%[a]), %%zmm28\n\t"
      "vfmadd231ph %%zmm28, %%zmm29, %[c50]\n\t"
      "vfmadd231ph %%zmm28, %%zmm30, %[c51]\n\t"
      "vfmadd231ph %%zmm28, %%zmm31, %[c52]\n\t"
      "vbroadcastss 1632(%[a]), %%zmm27\n\t"
      "vfmadd231ph %%zmm27, %%zmm29, %[c60]\n\t"
      "vfmadd231ph %%zmm27, %%zmm30, %[c61]\n\t"
      "vfmadd231ph %%zmm27, %%zmm31, %[c62]\n\t"
      "vbroadcastss 1904(%[a]), %%zmm28\n\t"
      "vfmadd231ph %%zmm28, %%zmm29, %[c70]\n\t"
      "vfmadd231ph %%zmm28, %%zmm30, %[c71]\n\t"
      "vfmadd231ph %%zmm28, %%zmm31, %[c72]\n\t"
      "add $192, %[b]\n\t"
      "add $4, %[a]\n\t"
      "dec %[k]\n\t"
      "jnz 1b\n\t"
      : [c00] "=&v"(c00), [c01] "=&v"(c01), [c02] "=&v"(c02),
        [c10] "=&v"(c10), [c11] "=&v"(c11), [c12] "=&v"(c12),
        [c20] "=&v"(c20), [c21] "=&v"(c21), [c22] "=&v"(c22),
        [c30] "=&v"(c30), [c31] "=&v"(c31), [c32] "=&v"(c32),
        [c40] "=&v"(c40), [c41] "=&v"(c41), [c42] "=&v"(c42),
        [c50] "=&v"(c50), [c51] "=&v"(c51), [c52] "=&v"(c52),
        [c60] "=&v"(c60), [c61] "=&v"(c61), [c62] "=&v"(c62),
        [c70] "=&v"(c70), [c71] "=&v"(c71), [c72] "=&v"(c72),
        [a] "+r"(ak), [b] "+r"(bk), [k] "=&r"(k)
      :
      : "zmm27", "zmm28", "zmm29", "zmm30", "zmm31", "cc", "memory");
    // Flush: C += fp32(chunk sum) * scale_j * inv_i.
    const auto* inv = reinterpret_cast<const float*>(a + kF16Mr * kF16ARowBytes);
    const auto* scale = reinterpret_cast<const float*>(b + kF16BScaleOffset);
    const bool add = accumulate || g > 0;
    flush_row(c00, c01, c02, inv[0], scale, c + 0 * ldc, add);
    flush_row(c10, c11, c12, inv[1], scale, c + 1 * ldc, add);
    flush_row(c20, c21, c22, inv[2], scale, c + 2 * ldc, add);
    flush_row(c30, c31, c32, inv[3], scale, c + 3 * ldc, add);
    flush_row(c40, c41, c42, inv[4], scale, c + 4 * ldc, add);
    flush_row(c50, c51, c52, inv[5], scale, c + 5 * ldc, add);
    flush_row(c60, c61, c62, inv[6], scale, c + 6 * ldc, add);
    flush_row(c70, c71, c72, inv[7], scale, c + 7 * ldc, add);
  }
}

}  // namespace

// kgroup = one chunk: the driver rounds K blocks up to whole chunks (zero-filled) and passes
// the chunk count as `groups`.
const Ukernel kUkF16Avx512{kF16Mr, kF16Nr, kF16Chunk, Fmt::F16CA, Fmt::F16C, false, run_f16, nullptr};

}  // namespace nq::gemm
