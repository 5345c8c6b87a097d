// nq_quant4_gemv_rows: a row range of a decode-shaped 4-bit product on the calling thread.
// A host that keeps its own threads hot between products (the managed decode loop) splits one
// product's rows between them with no OpenMP region: the weight descriptor stays whole, so
// every block's absmax (plain or double-quantized) is found at its global index and a range
// need not align to absmax or nested-absmax blocks.
#include <algorithm>

#include "core/error.h"
#include "cpu/cpu.h"
#include "gemm/gemm_quant4.h"
#include "gemm/validate.h"

extern "C" {

NQ_API nq_status nq_quant4_gemv_rows(const float* x, int64_t m, const nq_quant4_weight* w, const float* bias,
                                     int64_t row0, int64_t row1, float* y) {
  using namespace nq::gemm;
  const char* fn = "nq_quant4_gemv_rows";
  if (nq_status s = quant4_forward_check(fn, x, m, w, bias, y); s != NQ_OK) return s;
  NQ_CHECK(row0 >= 0 && row0 < row1 && row1 <= w->n, NQ_ERR_INVALID_ARGUMENT,
           "%s: need 0 <= row0 < row1 <= w->n (%lld), got row0 = %lld, row1 = %lld", fn,
           static_cast<long long>(w->n), static_cast<long long>(row0), static_cast<long long>(row1));
  NQ_CHECK(row0 % 4 == 0 && (row1 % 4 == 0 || row1 == w->n), NQ_ERR_INVALID_ARGUMENT,
           "%s: row0 must be a multiple of 4 and row1 a multiple of 4 or w->n, got row0 = %lld, row1 = %lld", fn,
           static_cast<long long>(row0), static_cast<long long>(row1));
  return nq::guard(fn, [&] {
    if (w->k % 32 != 0 || !nq::cpu::use(NQ_ISA_AVX512)) {
      quant4_gemm_rows_ref(x, m, *w, bias, NQ_COMPUTE_F32, row0, row1, y);
      return NQ_OK;
    }
    for (int64_t i = 0; i < m; i += kQuant4GemvMaxM)
      quant4_gemv_rows_avx512(x + i * w->k, std::min(kQuant4GemvMaxM, m - i), *w, bias, row0, row1, y + i * w->n);
    return NQ_OK;
  });
}

}  // extern "C"
