// fp16 8 x 96 micro-kernel (AVX-512 FP16) for NQ_COMPUTE_F16 (layouts and numerics in
// f16_chunk.h). Per 64-k chunk: 24 zmm fp16 accumulators (8 rows x 96 columns) take one
// vfmadd231ph per row and B vector; per k step 3 B vectors and 8 A broadcasts (plain loads,
// no shuffle port). At the end of a chunk the accumulators are stored as fp16 (1.5 KiB) and
// flushed into C during the next chunk's FMA loop, one row per 8 k steps: per 16 columns a
// vcvtph2ps from memory (no port-5 uop), scale * inv and the fp32 FMA into C, 3 port-0/5 uops
// against 64 FMAs. Flushed after the loop instead, the same uops ran ~13% of the kernel's time
// (the out-of-order core hid little of them behind the next chunk's FMAs); interleaved, ~6%. Only a
// tile's last chunk is flushed on its own. Kernel only (bench_gemm BM_F16Ukernel's loop nest, GPT-2
// training shapes, single thread, best of interleaved runs): 295-313 -> 313-335 GFLOP/s, no flush
// at all 340-360.
#include <immintrin.h>

#include "gemm/f16_chunk.h"
#include "gemm/ukernel.h"

namespace nq::gemm {
namespace {

static_assert(kF16Chunk == 64 && kF16Mr == 8 && kF16Nr == 96 && kF16ARowBytes == 272,
              "the asm below hard-codes the tile, chunk and A row stride");

// What the flush adds to when C is overwritten: fma(v, f, -0) rounds v * f once and adds -0,
// which leaves every value (also -0, subnormals, Inf and NaN) as v * f has it, so the first chunk
// of a tile gives the bits of C = v * f with the same code as C = fma(v, f, C).
alignas(64) const float kNegZeroRow[kF16Nr] = {
    -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
    -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
    -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
    -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
    -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f,
    -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f};

// The asm blocks below. Accumulator (row r, B vector j) is zmm(3r + j); zmm27/28 take alternate
// rows' A (a[r][k] broadcast by vbroadcastss of its doubled 32-bit pair: one load per row, the FMA's
// own {1to32} broadcast would be a load per FMA, 30 loads per k step saturated the load ports),
// zmm29..31 the k step's B vectors (B streams from L2, fetched 4 k ahead), zmm25/26 the flush.
// The loop body is 8 k steps (a row's flush per iteration); %[a] and %[b] advance by 8 k.
#define NQ_F16_ZERO(z) "vpxord %%zmm" #z ", %%zmm" #z ", %%zmm" #z "\n\t"
#define NQ_F16_ZERO_ALL                                                                                        \
  NQ_F16_ZERO(0) NQ_F16_ZERO(1) NQ_F16_ZERO(2) NQ_F16_ZERO(3) NQ_F16_ZERO(4) NQ_F16_ZERO(5) NQ_F16_ZERO(6)     \
  NQ_F16_ZERO(7) NQ_F16_ZERO(8) NQ_F16_ZERO(9) NQ_F16_ZERO(10) NQ_F16_ZERO(11) NQ_F16_ZERO(12) NQ_F16_ZERO(13) \
  NQ_F16_ZERO(14) NQ_F16_ZERO(15) NQ_F16_ZERO(16) NQ_F16_ZERO(17) NQ_F16_ZERO(18) NQ_F16_ZERO(19)              \
  NQ_F16_ZERO(20) NQ_F16_ZERO(21) NQ_F16_ZERO(22) NQ_F16_ZERO(23)
// Row r at k step o: a[r][k] into zmmR, then its 3 FMAs into zmm z0..z2.
#define NQ_F16_ROW(R, r, o, z0, z1, z2)                       \
  "vbroadcastss 4*" #o "+272*" #r "(%[a]), %%zmm" #R "\n\t" \
  "vfmadd231ph %%zmm" #R ", %%zmm29, %%zmm" #z0 "\n\t"       \
  "vfmadd231ph %%zmm" #R ", %%zmm30, %%zmm" #z1 "\n\t"       \
  "vfmadd231ph %%zmm" #R ", %%zmm31, %%zmm" #z2 "\n\t"
#define NQ_F16_KSTEP(o)                                                                                  \
  "vmovdqu16 192*" #o "(%[b]), %%zmm29\n\t"                                                              \
  "vmovdqu16 192*" #o "+64(%[b]), %%zmm30\n\t"                                                           \
  "vmovdqu16 192*" #o "+128(%[b]), %%zmm31\n\t"                                                          \
  "prefetcht0 192*" #o "+768(%[b])\n\t"                                                                  \
  "prefetcht0 192*" #o "+832(%[b])\n\t"                                                                  \
  "prefetcht0 192*" #o "+896(%[b])\n\t"                                                                  \
  NQ_F16_ROW(27, 0, o, 0, 1, 2) NQ_F16_ROW(28, 1, o, 3, 4, 5) NQ_F16_ROW(27, 2, o, 6, 7, 8)              \
  NQ_F16_ROW(28, 3, o, 9, 10, 11) NQ_F16_ROW(27, 4, o, 12, 13, 14) NQ_F16_ROW(28, 5, o, 15, 16, 17)      \
  NQ_F16_ROW(27, 6, o, 18, 19, 20) NQ_F16_ROW(28, 7, o, 21, 22, 23)
// Flush of columns 16u..16u+15 of one row of the previous chunk (fp16 sums at %[s], inverse row
// scale at %[inv], column scales at %[sc]): dst = fma(fp32(sum), scale * inv, src).
#define NQ_F16_FLUSH(u)                                  \
  "vcvtph2ps 32*" #u "(%[s]), %%zmm25\n\t"                \
  "vmovups 64*" #u "(%[sc]), %%zmm26\n\t"                 \
  "vmulps (%[inv])%{1to16%}, %%zmm26, %%zmm26\n\t"        \
  "vfmadd213ps 64*" #u "(%[src]), %%zmm26, %%zmm25\n\t"   \
  "vmovups %%zmm25, 64*" #u "(%[dst])\n\t"
// Next row of the flush.
#define NQ_F16_FLUSH_NEXT                                                                        \
  "add $192, %[s]\n\t" "add $4, %[inv]\n\t" "add %[ldsrc], %[src]\n\t" "add %[ldc], %[dst]\n\t"
#define NQ_F16_SPILL(z) "vmovdqa64 %%zmm" #z ", 64*" #z "(%[spill])\n\t"
#define NQ_F16_SPILL_ALL                                                                                   \
  NQ_F16_SPILL(0) NQ_F16_SPILL(1) NQ_F16_SPILL(2) NQ_F16_SPILL(3) NQ_F16_SPILL(4) NQ_F16_SPILL(5)          \
  NQ_F16_SPILL(6) NQ_F16_SPILL(7) NQ_F16_SPILL(8) NQ_F16_SPILL(9) NQ_F16_SPILL(10) NQ_F16_SPILL(11)        \
  NQ_F16_SPILL(12) NQ_F16_SPILL(13) NQ_F16_SPILL(14) NQ_F16_SPILL(15) NQ_F16_SPILL(16) NQ_F16_SPILL(17)    \
  NQ_F16_SPILL(18) NQ_F16_SPILL(19) NQ_F16_SPILL(20) NQ_F16_SPILL(21) NQ_F16_SPILL(22) NQ_F16_SPILL(23)
#define NQ_F16_CLOBBERS                                                                                     \
  "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", \
      "zmm13", "zmm14", "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23",      \
      "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "zmm30", "zmm31", "cc", "memory"

// A chunk's flush: its fp16 sums, scales and the C rows it adds to; s, inv, src and dst step one row
// per loop iteration.
struct Flush {
  const uint16_t* s;    // fp16 sums [8][96]
  const float* inv;     // A's inverse row scales [8]
  const float* sc;      // B's column scales [96]
  const float* src;     // C, or kNegZeroRow (stride 0) when C is overwritten
  float* dst;           // C
  int64_t ldsrc, ldc;   // bytes
};

void run_f16(int64_t groups, const void* a_, const void* b_, void* c_, int64_t ldc, bool accumulate) {
  if (groups <= 0) return;
  const auto* a = static_cast<const uint8_t*>(a_);
  const auto* b = static_cast<const uint8_t*>(b_);
  auto* c = static_cast<float*>(c_);
  alignas(64) uint16_t sums[kF16Mr * kF16Nr];  // the previous chunk's fp16 sums, row-major
  const int64_t ldc_bytes = ldc * 4;
  // Flush of the chunk whose A and B chunks start at a and b (its sums are in `sums`).
  const auto flush_of = [&](const uint8_t* ac, const uint8_t* bc, bool add) {
    return Flush{sums, reinterpret_cast<const float*>(ac + kF16Mr * kF16ARowBytes),
                 reinterpret_cast<const float*>(bc + kF16BScaleOffset), add ? c : kNegZeroRow, c,
                 add ? ldc_bytes : 0, ldc_bytes};
  };
  for (int64_t g = 0; g < groups; ++g, a += kF16AChunkBytes, b += kF16BChunkBytes) {
    const uint8_t* ak = a;
    const uint8_t* bk = b;
    int64_t it;
    if (g == 0) {
      // The tile's first chunk: nothing to flush yet; the C rows are fetched for the next one's flush.
      float* crow = c;
      __asm__ volatile(
          NQ_F16_ZERO_ALL
          "mov $8, %[it]\n\t"
          "1:\n\t"
          NQ_F16_KSTEP(0) "prefetchw (%[crow])\n\t" NQ_F16_KSTEP(1) "prefetchw 64(%[crow])\n\t"
          NQ_F16_KSTEP(2) "prefetchw 128(%[crow])\n\t" NQ_F16_KSTEP(3) "prefetchw 192(%[crow])\n\t"
          NQ_F16_KSTEP(4) "prefetchw 256(%[crow])\n\t" NQ_F16_KSTEP(5) "prefetchw 320(%[crow])\n\t"
          NQ_F16_KSTEP(6) NQ_F16_KSTEP(7)
          "add $1536, %[b]\n\t"
          "add $32, %[a]\n\t"
          "add %[ldc], %[crow]\n\t"
          "dec %[it]\n\t"
          "jnz 1b\n\t"
          NQ_F16_SPILL_ALL
          : [a] "+r"(ak), [b] "+r"(bk), [it] "=&r"(it), [crow] "+r"(crow)
          : [spill] "r"(sums), [ldc] "r"(ldc_bytes)
          : NQ_F16_CLOBBERS);
    } else {
      // Chunk g's FMAs with chunk g - 1's flush, one row per iteration. [s] is early-clobber: it starts
      // equal to [spill], and sharing one register would spill the sums 1.5 KiB past the buffer.
      Flush f = flush_of(a - kF16AChunkBytes, b - kF16BChunkBytes, accumulate || g > 1);
      __asm__ volatile(
          NQ_F16_ZERO_ALL
          "mov $8, %[it]\n\t"
          "1:\n\t"
          NQ_F16_KSTEP(0) NQ_F16_FLUSH(0) NQ_F16_KSTEP(1) NQ_F16_FLUSH(1) NQ_F16_KSTEP(2) NQ_F16_FLUSH(2)
          NQ_F16_KSTEP(3) NQ_F16_FLUSH(3) NQ_F16_KSTEP(4) NQ_F16_FLUSH(4) NQ_F16_KSTEP(5) NQ_F16_FLUSH(5)
          NQ_F16_KSTEP(6) NQ_F16_KSTEP(7)
          NQ_F16_FLUSH_NEXT
          "add $1536, %[b]\n\t"
          "add $32, %[a]\n\t"
          "dec %[it]\n\t"
          "jnz 1b\n\t"
          NQ_F16_SPILL_ALL
          : [a] "+r"(ak), [b] "+r"(bk), [it] "=&r"(it), [s] "+&r"(f.s), [inv] "+r"(f.inv), [src] "+r"(f.src),
            [dst] "+r"(f.dst)
          : [sc] "r"(f.sc), [ldsrc] "r"(f.ldsrc), [ldc] "r"(f.ldc), [spill] "r"(sums)
          : NQ_F16_CLOBBERS);
    }
  }
  // The last chunk's flush, on its own.
  Flush f = flush_of(a - kF16AChunkBytes, b - kF16BChunkBytes, accumulate || groups > 1);
  int64_t it;
  __asm__ volatile(
      "mov $8, %[it]\n\t"
      "1:\n\t"
      NQ_F16_FLUSH(0) NQ_F16_FLUSH(1) NQ_F16_FLUSH(2) NQ_F16_FLUSH(3) NQ_F16_FLUSH(4) NQ_F16_FLUSH(5)
      NQ_F16_FLUSH_NEXT
      "dec %[it]\n\t"
      "jnz 1b\n\t"
      : [it] "=&r"(it), [s] "+r"(f.s), [inv] "+r"(f.inv), [src] "+r"(f.src), [dst] "+r"(f.dst)
      : [sc] "r"(f.sc), [ldsrc] "r"(f.ldsrc), [ldc] "r"(f.ldc)
      : "zmm25", "zmm26", "cc", "memory");
}

}  // namespace

// kgroup = one chunk: the driver rounds K blocks up to whole chunks (zero-filled) and passes
// the chunk count as `groups`.
const Ukernel kUkF16Avx512{kF16Mr, kF16Nr, kF16Chunk, Fmt::F16CA, Fmt::F16C, false, run_f16, nullptr};

}  // namespace nq::gemm
