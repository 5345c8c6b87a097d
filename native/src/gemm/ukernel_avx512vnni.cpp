// s8 x u8 6 x 64 micro-kernel: vpdpbusd folds a k-quad per instruction into int32
// (non-saturating; the caller bounds K so the sums fit). The B panel (the weight, + 128)
// is vpdpbusd's unsigned operand and the broadcast A quad (quantized X) the signed one, so
// the offset correction 128 * sum_k A[i][k] is per row of A and cheap to get.
#include "gemm/ukernel.h"
#include "gemm/ukernel_tile.h"

#include <cstring>

namespace nq::gemm {
namespace {

struct OpU8S8 : StoreI32 {
  using Vec = __m512i;
  static constexpr int kAGroupBytes = 4;  // u8 quad of one row
  static Vec zero() { return _mm512_setzero_si512(); }
  static Vec load(const uint8_t* p) { return _mm512_loadu_si512(p); }
  static Vec bcast(const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
  static Vec madd(Vec acc, Vec a, Vec b) { return _mm512_dpbusd_epi32(acc, b, a); }
};

void run_u8s8(int64_t groups, const void* a, const void* b, void* c, int64_t ldc, bool accumulate) {
  ukernel_tile<OpU8S8, 6, 4>(groups, a, b, c, ldc, accumulate);
}

}  // namespace

const Ukernel kUkU8S8Vnni{6, 64, 4, Fmt::S8, Fmt::U8, true, run_u8s8, nullptr};

}  // namespace nq::gemm
