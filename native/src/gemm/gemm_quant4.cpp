// 4-bit (NF4/FP4) weight matmuls: Y = X W^T (+bias) and dX = beta*dX + dY W, with W
// dequantised block by block into the GEMM's packed B panels.
#include "gemm/gemm_quant4.h"

#include <algorithm>

#include "core/error.h"
#include "cpu/cpu.h"
#include "gemm/arena.h"
#include "gemm/convert.h"
#include "gemm/driver.h"
#include "gemm/pack.h"
#include "gemm/gemm_int8.h"
#include "gemm/quant4_f16.h"
#include "gemm/quant4_int8.h"
#include "gemm/quant4_weight.h"
#include "gemm/validate.h"

namespace nq::gemm {
namespace {

// The AVX-512 packers write plain fp32 panels.
bool fast_panels(const Ukernel& uk, bool round) {
  return uk.b_fmt == Fmt::F32 && !round && nq::cpu::use(NQ_ISA_AVX512);
}

float deq_scalar(const nq_quant4_weight& w, const float* code, int64_t e) {
  return code[quant4_nibble(w, e)] * quant4_absmax(w, e / w.blocksize);
}

// Writes kc values of one panel row `r` (a B column) into a micro-panel (rounded to bf16
// first when `round` emulates bf16 compute on the fp32 kernel).
inline void put_row(void* panel, const PackGeom& g, Fmt fmt, bool round, int r, const float* v, int64_t kc) {
  if (fmt == Fmt::F32) {
    float* o = static_cast<float*>(panel) + r;
    if (round) {
      for (int64_t k = 0; k < kc; ++k) o[k * g.rows] = round_bf16(v[k]);
      return;
    }
    for (int64_t k = 0; k < kc; ++k) o[k * g.rows] = v[k];
  } else {  // one uint32 (bf16 pair) per k-pair, converted in a vectorisable pass first
    alignas(64) uint32_t pairs[kBPanelBytes / 4];
    const int64_t npairs = (kc + 1) / 2;
    for (int64_t p = 0; p < npairs; ++p) {
      const uint16_t hi = 2 * p + 1 < kc ? f32_to_bf16(v[2 * p + 1]) : uint16_t(0);
      pairs[p] = uint32_t(f32_to_bf16(v[2 * p])) | uint32_t(hi) << 16;
    }
    uint32_t* o = static_cast<uint32_t*>(panel) + r;
    for (int64_t p = 0; p < npairs; ++p) o[p * g.rows] = pairs[p];
  }
}

// Forward: B(k, j) = W[j][k]; each B column is a run of one W row.
struct PackBQuant4Fwd {
  const nq_quant4_weight& w;
  Fmt fmt;
  bool round;
  bool avx512;  // plain fp32 panels on AVX-512 with w.k % 32 == 0: pack_b_quant4_fwd_avx512
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    alignas(64) float row[kBPanelBytes / 2];  // kc <= KC for 2-byte formats
    const int esz = fmt_bytes(fmt);
    int64_t j = 0;
    if (avx512 && g.rows % 16 == 0)
      j = pack_b_quant4_fwd_avx512(w, static_cast<float*>(out), g.rows, g.panel_elems, k0, kc, n0, nc);
    if (fmt == Fmt::F32 && !round) {
      // Octets of W rows: decode 8 runs, then 8x8 transposes write the panel rows whole.
      alignas(64) float oct[8][kBPanelBytes / 4];
      const int64_t k8 = kc / 8 * 8;
      for (; j + 8 <= nc; j += 8) {
        for (int i = 0; i < 8; ++i) quant4_decode(w, (n0 + j + i) * w.k + k0, kc, oct[i]);
        float* panel = static_cast<float*>(out) + (j / g.rows) * g.panel_elems + j % g.rows;
        for (int64_t k = 0; k < k8; k += 8) transpose8x8(&oct[0][k], kBPanelBytes / 4, panel + k * g.rows, g.rows);
        for (int64_t k = k8; k < kc; ++k)
          for (int i = 0; i < 8; ++i) panel[k * g.rows + i] = oct[i][k];
      }
    }
    for (; j < nc; ++j) {
      quant4_decode(w, (n0 + j) * w.k + k0, kc, row);
      void* panel = static_cast<uint8_t*>(out) + (j / g.rows) * g.panel_elems * esz;
      put_row(panel, g, fmt, round, int(j % g.rows), row, kc);
    }
  }
};

// Backward: B(k, j) = W[k][j]; each k is a run of one W row across the block's columns.
struct PackBQuant4Bwd {
  const nq_quant4_weight& w;
  Fmt fmt;
  bool round;
  bool avx512;  // plain fp32 panels on AVX-512 with w.k % 16 == 0: pack_b_quant4_bwd_avx512
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    if (avx512 && g.rows % 16 == 0)
      return pack_b_quant4_bwd_avx512(w, static_cast<float*>(out), g.rows, g.panel_elems, k0, kc, n0, nc);
    alignas(64) float run[kNC];
    const int esz = fmt_bytes(fmt);
    for (int64_t k = 0; k < kc; ++k) {
      quant4_decode(w, (k0 + k) * w.k + n0, nc, run);
      if (round)
        for (int64_t j = 0; j < nc; ++j) run[j] = round_bf16(run[j]);
      for (int64_t j0 = 0; j0 < nc; j0 += g.rows) {
        const int cols = int(std::min<int64_t>(g.rows, nc - j0));
        uint8_t* panel = static_cast<uint8_t*>(out) + (j0 / g.rows) * g.panel_elems * esz;
        if (fmt == Fmt::F32) {
          std::memcpy(reinterpret_cast<float*>(panel) + k * g.rows, run + j0, size_t(cols) * 4);
        } else {
          uint16_t* o = reinterpret_cast<uint16_t*>(panel) + (k >> 1) * g.rows * 2 + (k & 1);
          for (int c = 0; c < cols; ++c) o[c * 2] = f32_to_bf16(run[j0 + c]);
        }
      }
    }
  }
};

// Bias added to each finished C tile while it is in cache (not a serial pass over Y first).
struct AddBias {
  const float* bias;
  void operator()(float* c, int64_t ldc, int64_t, int64_t j0, int rows, int cols) const {
    if (bias == nullptr) return;
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < cols; ++j) c[r * ldc + j] += bias[j0 + j];
  }
};

}  // namespace

void quant4_gemm_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias,
                     nq_compute_type compute, float* y) {
  quant4_gemm_rows_ref(x, m, w, bias, compute, 0, w.n, y);
}

void quant4_gemm_rows_ref(const float* x, int64_t m, const nq_quant4_weight& w, const float* bias,
                          nq_compute_type compute, int64_t row0, int64_t row1, float* y) {
  const float* code = quant4_code(w);
  const auto rnd = [&](float v) { return compute == NQ_COMPUTE_BF16 ? round_bf16(v) : v; };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t n = row0; n < row1; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < w.k; ++k) acc += rnd(x[i * w.k + k]) * rnd(deq_scalar(w, code, n * w.k + k));
      y[i * w.n + n] = acc + (bias ? bias[n] : 0.0f);
    }
}

void quant4_gemm_backward_ref(const float* dy, int64_t m, const nq_quant4_weight& w, nq_compute_type compute,
                              float beta, float* dx) {
  const float* code = quant4_code(w);
  const auto rnd = [&](float v) { return compute == NQ_COMPUTE_BF16 ? round_bf16(v) : v; };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t k = 0; k < w.k; ++k) {
      float acc = 0.0f;
      for (int64_t n = 0; n < w.n; ++n) acc += rnd(dy[i * w.n + n]) * rnd(deq_scalar(w, code, n * w.k + k));
      dx[i * w.k + k] = (beta == 0.0f ? 0.0f : beta * dx[i * w.k + k]) + acc;
    }
}

nq_status quant4_forward_check(const char* fn, const float* x, int64_t m, const nq_quant4_weight* w,
                               const float* bias, const float* y) {
  if (nq_status s = quant4_weight_check(fn, w); s != NQ_OK) return s;
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, y);
  NQ_CHECK_DIM(fn, m);
  const int64_t yb = m * w->n * 4;
  NQ_CHECK_NO_OVERLAP(fn, y, yb, x, m * w->k * 4);
  NQ_CHECK_NO_OVERLAP(fn, y, yb, w->packed, w->n * w->k / 2);
  NQ_CHECK_NO_OVERLAP(fn, y, yb, bias, w->n * 4);
  return NQ_OK;
}

}  // namespace nq::gemm

extern "C" {

NQ_API nq_status nq_quant4_gemm(const float* x, int64_t m, const nq_quant4_weight* w, const float* bias,
                                nq_compute_type compute, float* y) {
  using namespace nq::gemm;
  const char* fn = "nq_quant4_gemm";
  if (nq_status s = quant4_forward_check(fn, x, m, w, bias, y); s != NQ_OK) return s;
  NQ_CHECK_COMPUTE_ANY(fn, compute);
  const bool i8 = compute == NQ_COMPUTE_INT8;
  NQ_CHECK(!i8 || w->k <= kInt8MaxK, NQ_ERR_INVALID_ARGUMENT,
           "%s: w.k must be <= %lld with NQ_COMPUTE_INT8 (int32 accumulation), got %lld", fn,
           static_cast<long long>(kInt8MaxK), static_cast<long long>(w->k));
  return nq::guard(fn, [&] {
    const bool f16 = compute == NQ_COMPUTE_F16;
    const Ukernel* uk = i8 ? ukernel_int8() : ukernel_for(f16 ? NQ_COMPUTE_F32 : compute);  // F16 without FP16: fp32
    if (uk == nullptr) {
      if (f16)
        quant4_gemm_f16_ref(x, m, *w, bias, y);
      else if (i8)
        quant4_gemm_int8_ref(x, m, *w, bias, y);
      else
        quant4_gemm_ref(x, m, *w, bias, compute, y);
    } else if (m <= kQuant4GemvMaxM && w->k % 32 == 0 && nq::cpu::use(NQ_ISA_AVX512)) {
      quant4_gemv_avx512(x, m, *w, bias, y);
    } else if (i8) {
      quant4_gemm_int8(*uk, x, m, *w, bias, y);
    } else if (f16 && nq::cpu::use_avx512fp16()) {
      run_gemm<float>(kUkF16Avx512, m, w->n, w->k, PackAF16{x, w->k, m}, PackBQuant4F16{*w, false}, y, w->n, false,
                      AddBias{bias});
    } else {
      const bool rnd = compute == NQ_COMPUTE_BF16 && bf16_emulated(uk);
      const bool fast = fast_panels(*uk, rnd) && w->k % 32 == 0;
      run_gemm<float>(*uk, m, w->n, w->k, PackA<ViewF32>{ViewF32{x, w->k, 1}, uk->a_fmt, rnd},
                      PackBQuant4Fwd{*w, uk->b_fmt, rnd, fast}, y, w->n, false, AddBias{bias});
    }
    return NQ_OK;
  });
}

NQ_API nq_status nq_quant4_gemm_backward(const float* dy, int64_t m, const nq_quant4_weight* w,
                                         nq_compute_type compute, float beta, float* dx) {
  using namespace nq::gemm;
  const char* fn = "nq_quant4_gemm_backward";
  if (nq_status s = quant4_weight_check(fn, w); s != NQ_OK) return s;
  NQ_CHECK_NOT_NULL(fn, dy);
  NQ_CHECK_NOT_NULL(fn, dx);
  NQ_CHECK_DIM(fn, m);
  NQ_CHECK_BETA(fn, beta);
  NQ_CHECK_COMPUTE_ANY(fn, compute);
  const bool i8 = compute == NQ_COMPUTE_INT8;
  NQ_CHECK(!i8 || w->n <= kInt8MaxK, NQ_ERR_INVALID_ARGUMENT,
           "%s: w.n must be <= %lld with NQ_COMPUTE_INT8 (int32 accumulation), got %lld", fn,
           static_cast<long long>(kInt8MaxK), static_cast<long long>(w->n));
  const int64_t xb = m * w->k * 4;
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, dy, m * w->n * 4);
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, w->packed, w->n * w->k / 2);
  return nq::guard(fn, [&] {
    const bool f16 = compute == NQ_COMPUTE_F16;
    const Ukernel* uk = i8 ? ukernel_int8() : ukernel_for(f16 ? NQ_COMPUTE_F32 : compute);
    const bool acc = beta != 0.0f;
    if (uk == nullptr) {
      if (f16)
        quant4_gemm_backward_f16_ref(dy, m, *w, beta, dx);
      else if (i8)
        quant4_gemm_backward_int8_ref(dy, m, *w, beta, dx);
      else
        quant4_gemm_backward_ref(dy, m, *w, compute, beta, dx);
      return NQ_OK;
    }
    if (i8) {
      quant4_gemm_backward_int8(*uk, dy, m, *w, beta, dx);
      return NQ_OK;
    }
    if (acc && beta != 1.0f) prepare_output(dx, m, w->k, beta, nullptr);
    if (f16 && nq::cpu::use_avx512fp16()) {
      run_gemm<float>(kUkF16Avx512, m, w->k, w->n, PackAF16{dy, w->n, m}, PackBQuant4F16{*w, true}, dx, w->k, acc);
    } else {
      const bool rnd = compute == NQ_COMPUTE_BF16 && bf16_emulated(uk);
      const bool fast = fast_panels(*uk, rnd) && w->k % 16 == 0;
      run_gemm<float>(*uk, m, w->k, w->n, PackA<ViewF32>{ViewF32{dy, w->n, 1}, uk->a_fmt, rnd},
                      PackBQuant4Bwd{*w, uk->b_fmt, rnd, fast}, dx, w->k, acc);
    }
    return NQ_OK;
  });
}

}  // extern "C"
