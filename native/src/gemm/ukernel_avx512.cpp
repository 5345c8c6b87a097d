// fp32 6 x 64 micro-kernel (AVX-512F FMA).
#include "gemm/ukernel.h"
#include "gemm/ukernel_6x64.h"

#include <cstring>

namespace nq::gemm {
namespace {

struct OpF32 : StoreF32 {
  using Vec = __m512;
  static constexpr int kAGroupBytes = 4;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const uint8_t* p) { return _mm512_loadu_ps(p); }
  static Vec bcast(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_ps(v);
  }
  static Vec madd(Vec acc, Vec a, Vec b) { return _mm512_fmadd_ps(a, b, acc); }
};

void run_f32(int64_t groups, const void* a, const void* b, void* c, int64_t ldc, bool accumulate) {
  ukernel_6x64<OpF32>(groups, a, b, c, ldc, accumulate);
}

}  // namespace

const Ukernel kUkF32Avx512{6, 64, 1, Fmt::F32, Fmt::F32, false, run_f32};

}  // namespace nq::gemm
