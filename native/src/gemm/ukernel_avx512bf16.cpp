// bf16 6 x 64 micro-kernel: vdpbf16ps folds a k-pair per instruction, fp32 accumulation.
#include "gemm/ukernel.h"
#include "gemm/ukernel_tile.h"

namespace nq::gemm {
namespace {

struct OpBf16 : LanesF32 {
  static constexpr int kAGroupBytes = 4;  // one (k, k+1) bf16 pair
  static Vec madd(Vec acc, Vec a, Vec b) {
    return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(b));
  }
};

void run_bf16(int64_t groups, const void* a, const void* b, void* c, int64_t ldc, bool accumulate) {
  ukernel_tile<OpBf16, 6, 4>(groups, a, b, c, ldc, accumulate);
}

}  // namespace

const Ukernel kUkBf16Avx512{6, 64, 2, Fmt::BF16, Fmt::BF16, false, run_bf16, nullptr};

}  // namespace nq::gemm
