// fp32 8 x 48 micro-kernel (AVX-512F FMA). 8 rows let the A packer use 8x8 transposes and
// tile M = 256/512 exactly; the B micro-panel streams from L2 at 8 bytes per FMA (10.7 for
// 6 x 64) while the A one stays in L1.
#include "gemm/ukernel.h"
#include "gemm/ukernel_tile.h"

namespace nq::gemm {
namespace {

struct OpF32 : LanesF32 {
  static constexpr int kAGroupBytes = 4;
  static Vec madd(Vec acc, Vec a, Vec b) { return _mm512_fmadd_ps(a, b, acc); }
};

void run_f32(int64_t groups, const void* a, const void* b, void* c, int64_t ldc, bool accumulate) {
  ukernel_tile<OpF32, 8, 3>(groups, a, b, c, ldc, accumulate);
}

void run_f32_strided(int64_t k, const float* a, int64_t lda, const void* b, void* c, int64_t ldc, bool accumulate) {
  ukernel_tile<OpF32, 8, 3, true>(k, a, b, c, ldc, accumulate, lda * 4);
}

}  // namespace

const Ukernel kUkF32Avx512{8, 48, 1, Fmt::F32, Fmt::F32, false, run_f32, run_f32_strided};

}  // namespace nq::gemm
