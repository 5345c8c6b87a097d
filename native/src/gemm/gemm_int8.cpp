// LLM.int8() (Dettmers et al. 2022): X W^T = int8 part (row-wise X, row-wise W, int32
// accumulation, dequantised by absmax_x[i] * scb[n] / 127^2) + 16-bit part over the
// outlier columns of X. On VNNI CPUs X is stored as u8 = q + 128 for vpdpbusd and the
// extra 128 * sum_k W[n][k] is subtracted in the epilogue; AVX2 widens to int16 pairs.
#include "gemm/gemm_int8.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "cpu/cpu.h"
#include "gemm/arena.h"
#include "gemm/convert.h"
#include "gemm/driver.h"
#include "gemm/gemv.h"
#include "gemm/pack.h"
#include "gemm/validate.h"

namespace nq::gemm {
namespace {

constexpr float kInvQ2 = 1.0f / (127.0f * 127.0f);

template <class T>
float load_x(const T* x, int64_t i) {
  if constexpr (std::is_same_v<T, float>) return x[i];
  else return bf16_to_f32(x[i]);
}

inline float deq_w(const int8_t* w, const float* scb, int64_t row, int64_t k, int64_t col) {
  return float(w[row * k + col]) * scb[row] / 127.0f;
}

// Outlier columns (ascending) of X (m,k) at `threshold` (0 = none); mask[j] = 1 for them.
// Parallel over column blocks (each thread scans every row of its columns).
template <class T>
int64_t find_outliers(const T* x, int64_t m, int64_t k, float threshold, uint8_t* mask, int32_t* cols, int nt) {
  std::fill(mask, mask + k, uint8_t(0));
  if (threshold <= 0.0f) return 0;
  constexpr int64_t kColBlock = 256;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t j0 = 0; j0 < k; j0 += kColBlock) {
    const int64_t j1 = std::min(k, j0 + kColBlock);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = j0; j < j1; ++j) mask[j] |= uint8_t(std::fabs(load_x(x, i * k + j)) >= threshold);
  }
  int64_t c = 0;
  for (int64_t j = 0; j < k; ++j)
    if (mask[j]) cols[c++] = int32_t(j);
  return c;
}

// Row absmax over non-outlier columns and the quantized row q[j] (0 in outlier columns).
template <class T>
float quantize_row(const T* xr, int64_t k, const uint8_t* mask, int8_t* q) {
  float amax = 0.0f;
  for (int64_t j = 0; j < k; ++j) amax = std::max(amax, mask[j] ? 0.0f : std::fabs(load_x(xr, j)));
  const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int64_t j = 0; j < k; ++j) q[j] = mask[j] ? int8_t(0) : int8_t(quantize_s8(load_x(xr, j), inv));
  return amax;
}

// A: rows of the quantized X as s8 quads (VNNI) or int16 pairs (AVX2).
struct PackAInt8 {
  const int8_t* q;
  int64_t k;
  Fmt fmt;
  void operator()(void* out, const PackGeom& g, int64_t i0, int rows, int64_t k0, int64_t kc) const {
    for (int r = 0; r < rows; ++r) {
      const int8_t* src = q + (i0 + r) * k + k0;
      if (fmt == Fmt::S8) {
        int8_t* o = static_cast<int8_t*>(out) + r * 4;
        const int64_t k4 = kc / 4 * 4;
        for (int64_t kk = 0; kk < k4; kk += 4) std::memcpy(o + (kk >> 2) * g.rows * 4, src + kk, 4);
        for (int64_t kk = k4; kk < kc; ++kk) o[(kk >> 2) * g.rows * 4 + (kk & 3)] = src[kk];
      } else {
        int16_t* o = static_cast<int16_t*>(out) + r * 2;
        for (int64_t kk = 0; kk < kc; ++kk) o[(kk >> 1) * g.rows * 2 + (kk & 1)] = src[kk];
      }
    }
  }
};

// B: rows of W (= columns of B) as u8 = w + 128 quads (VNNI) or int16 pairs (AVX2).
struct PackBInt8 {
  const int8_t* w;
  int64_t k;
  Fmt fmt;
  void operator()(void* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    if (fmt == Fmt::U8) return pack_u8(static_cast<uint8_t*>(out), g, k0, kc, n0, nc);
    const int esz = fmt_bytes(fmt);
    for (int64_t j = 0; j < nc; ++j) {
      const int8_t* src = w + (n0 + j) * k + k0;
      uint8_t* panel = static_cast<uint8_t*>(out) + (j / g.rows) * g.panel_elems * esz;
      const int r = int(j % g.rows);
      {
        int16_t* o = reinterpret_cast<int16_t*>(panel) + r * 2;
        for (int64_t kk = 0; kk < kc; ++kk) o[(kk >> 1) * g.rows * 2 + (kk & 1)] = src[kk];
      }
    }
  }

  // Quads of 8 W rows x 8 k-groups move as one 8x8 transpose of 32-bit lanes (bit moves
  // only); leftovers go one byte at a time; then one pass adds 128 to every byte (padding
  // becomes 128 = a zero weight, still multiplied by zero-padded A).
  void pack_u8(uint8_t* out, const PackGeom& g, int64_t k0, int64_t kc, int64_t n0, int64_t nc) const {
    const int R = g.rows;
    const int64_t g8 = k % 4 == 0 ? kc / 32 * 8 : 0;  // k-groups covered by transposes
    for (int64_t j = 0; j < nc; ++j) {
      uint8_t* panel = out + (j / R) * g.panel_elems;
      const int r = int(j % R);
      const int8_t* src = w + (n0 + j) * k + k0;
      if (j % 8 == 0 && j + 8 <= nc && g8 > 0) {
        for (int64_t q = 0; q < g8; q += 8)
          transpose8x8(reinterpret_cast<const float*>(src) + q, k / 4,
                       reinterpret_cast<float*>(panel) + q * R + r, R);
      }
      const int64_t from = (j / 8 * 8 + 8 <= nc) ? g8 * 4 : 0;  // rows in a transposed octet skip those
      for (int64_t kk = from; kk < kc; ++kk) panel[((kk >> 2) * R + r) * 4 + (kk & 3)] = uint8_t(src[kk]);
    }
    const int64_t bytes = (nc + R - 1) / R * g.panel_elems;
    for (int64_t i = 0; i < bytes; ++i) out[i] ^= 0x80u;
  }
};

// Outlier operands: X[:, cols] and W[:, cols] * scb / 127.
template <class T>
struct ViewXCols {
  const T* x;
  int64_t k;
  const int32_t* cols;
  float at(int64_t r, int64_t c) const { return load_x(x, r * k + cols[c]); }
};
struct ViewWCols {
  const int8_t* w;
  const float* scb;
  int64_t k;
  const int32_t* cols;
  float at(int64_t r, int64_t c) const { return deq_w(w, scb, r, k, cols[c]); }
};
// Backward B(kk, j) = W[kk][j] * scb[kk] / 127, seen as view(j, kk).
struct ViewWBwd {
  const int8_t* w;
  const float* scb;
  int64_t k;
  float at(int64_t r, int64_t c) const { return deq_w(w, scb, c, k, r); }
};

// Up to this many outlier columns are added in the epilogue from a gathered, dequantised copy
// of W's columns (no second pass over Y); more go through a GEMM of their own.
constexpr int64_t kEpilogueOutliers = 32;

template <class T>
void int8_matmul_fast(const Ukernel& uk, const T* x, int64_t m, int64_t k, const int8_t* w, const float* scb,
                      int64_t n, float threshold, const float* bias, nq_compute_type oc, float* y, int32_t* cols,
                      int64_t* count) {
  const int nt = threads_for(m * k * 4);  // the X passes below; the GEMM picks its own
  auto* stats = static_cast<uint8_t*>(arena_get(kSlotStats1, size_t(4 * (2 * m + k) + k + 64)));
  auto* sx = reinterpret_cast<float*>(stats);
  auto* corr = reinterpret_cast<int32_t*>(stats + 4 * m);
  auto* list = reinterpret_cast<int32_t*>(stats + 8 * m);
  uint8_t* mask = stats + 4 * (2 * m + k);
  const int64_t nout = find_outliers(x, m, k, threshold, mask, list, nt);
  const bool epilogue_outliers = nout <= kEpilogueOutliers;
  const bool rnd = oc == NQ_COMPUTE_BF16;
  // qx: (m, k) quantized X; xo: (m, nout) and wo: (nout, n) the 16-bit outlier operands.
  const size_t eo = epilogue_outliers ? size_t(nout * (m + n)) : 0;
  auto* qx = static_cast<int8_t*>(arena_get(kSlotStats0, size_t(m * k) + 64 + 4 * eo));
  float* xo = reinterpret_cast<float*>(qx + (m * k + 63) / 64 * 64);
  float* wo = xo + m * nout;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
#pragma omp for schedule(static) nowait
    for (int64_t i = 0; i < m; ++i) {
      int8_t* qr = qx + i * k;
      sx[i] = quantize_row(x + i * k, k, mask, qr);
      int32_t s = 0;
      for (int64_t j = 0; j < k; ++j) s += qr[j];
      corr[i] = uk.b_fmt == Fmt::U8 ? 128 * s : 0;  // the weight's + 128 offset, per row of X
      if (epilogue_outliers)
        for (int64_t c = 0; c < nout; ++c) {
          const float v = load_x(x, i * k + list[c]);
          xo[i * nout + c] = rnd ? round_bf16(v) : v;
        }
    }
    if (epilogue_outliers) {
#pragma omp for schedule(static)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < nout; ++c) {
          const float v = deq_w(w, scb, j, k, list[c]);
          wo[c * n + j] = rnd ? round_bf16(v) : v;
        }
    }
  }
  // The int32 accumulators live in y; each finished tile is turned into floats in place:
  // dequantise, add bias, add the (few) outlier columns' 16-bit products.
  const auto epilogue = [&](int32_t* tile, int64_t ld, int64_t i0, int64_t j0, int rows, int cols) {
    for (int r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      float* yr = y + i * n + j0;
      const int32_t* ar = tile + r * ld;
      const float si = sx[i] * kInvQ2;
      for (int c = 0; c < cols; ++c) {
        int32_t a;
        std::memcpy(&a, ar + c, 4);
        yr[c] = float(a - corr[i]) * (si * scb[j0 + c]) + (bias ? bias[j0 + c] : 0.0f);
      }
      if (epilogue_outliers)
        for (int64_t o = 0; o < nout; ++o) {
          const float xv = xo[i * nout + o];
          const float* wr = wo + o * n + j0;
          for (int c = 0; c < cols; ++c) yr[c] += xv * wr[c];
        }
    }
  };
  if (m <= kInt8GemvMaxM && uk.b_fmt == Fmt::U8) {
    // Decode-shaped: stream W rows once; the epilogue runs per 64 columns from a local tile.
    for_row_ranges(n, n * k * m, [&](int64_t j0, int64_t j1) {
      alignas(64) int32_t tile[kInt8GemvMaxM * 64];
      for (int64_t j = j0; j < j1; j += 64) {
        const int cols = int(std::min<int64_t>(64, j1 - j));
        int8_gemv_avx512vnni(m, k, qx, w, j, j + cols, tile, 64);
        epilogue(tile, 64, 0, j, int(m), cols);
      }
    });
  } else {
    run_gemm<int32_t>(uk, m, n, k, PackAInt8{qx, k, uk.a_fmt}, PackBInt8{w, k, uk.b_fmt},
                      reinterpret_cast<int32_t*>(y), n, false, epilogue);
  }
  if (!epilogue_outliers) {
    const Ukernel& u16 = *ukernel_for(oc);
    const bool emu = rnd && bf16_emulated(&u16);
    run_gemm<float>(u16, m, n, nout, PackA<ViewXCols<T>>{ViewXCols<T>{x, k, list}, u16.a_fmt, emu},
                    PackB<ViewWCols>{ViewWCols{w, scb, k, list}, u16.b_fmt, emu}, y, n, true);
  }
  std::copy(list, list + nout, cols);
  *count = nout;
}

template <class T>
void int8_matmul_ref_impl(const T* x, int64_t m, int64_t k, const int8_t* w, const float* scb, int64_t n,
                          float threshold, const float* bias, nq_compute_type oc, float* y, int32_t* cols,
                          int64_t* count) {
  std::vector<uint8_t> mask(static_cast<size_t>(k));
  std::vector<int32_t> list(static_cast<size_t>(k));
  std::vector<int8_t> q(static_cast<size_t>(k));
  const int64_t nout = find_outliers(x, m, k, threshold, mask.data(), list.data(), 1);
  const auto rnd = [&](float v) { return oc == NQ_COMPUTE_BF16 ? round_bf16(v) : v; };
  for (int64_t i = 0; i < m; ++i) {
    const float sx = quantize_row(x + i * k, k, mask.data(), q.data());
    for (int64_t j = 0; j < n; ++j) {
      int32_t acc = 0;
      for (int64_t kk = 0; kk < k; ++kk) acc += int32_t(q[kk]) * w[j * k + kk];
      float out = 0.0f;
      for (int64_t c = 0; c < nout; ++c) out += rnd(load_x(x, i * k + list[c])) * rnd(deq_w(w, scb, j, k, list[c]));
      y[i * n + j] = float(acc) * (sx * kInvQ2 * scb[j]) + (bias ? bias[j] : 0.0f) + out;
    }
  }
  std::copy(list.begin(), list.begin() + nout, cols);
  *count = nout;
}

template <class T>
nq_status int8_matmul_entry(const char* fn, const T* x, int64_t m, int64_t k, const int8_t* w, const float* scb,
                            int64_t n, float threshold, const float* bias, nq_compute_type outlier_compute, float* y,
                            int32_t* outlier_cols, int64_t capacity, int64_t* out_count) {
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, w);
  NQ_CHECK_NOT_NULL(fn, scb);
  NQ_CHECK_NOT_NULL(fn, y);
  NQ_CHECK_NOT_NULL(fn, out_count);
  NQ_CHECK_DIM(fn, m);
  NQ_CHECK_DIM(fn, n);
  NQ_CHECK(k >= 1 && k <= kInt8MaxK, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'k' must be in 1..%lld (int32 accumulation), got %lld", fn,
           static_cast<long long>(kInt8MaxK), static_cast<long long>(k));
  NQ_CHECK(threshold >= 0.0f && threshold - threshold == 0.0f, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'threshold' must be finite and >= 0 (0 disables outliers), got %g", fn, double(threshold));
  NQ_CHECK_COMPUTE(fn, outlier_compute);
  NQ_CHECK(capacity >= 0, NQ_ERR_INVALID_ARGUMENT, "%s: argument 'outlier_capacity' must be >= 0", fn);
  NQ_CHECK(capacity == 0 || outlier_cols != nullptr, NQ_ERR_NULL_POINTER,
           "%s: argument 'outlier_cols' must not be NULL when outlier_capacity > 0", fn);
  const int64_t yb = m * n * 4;
  NQ_CHECK_NO_OVERLAP(fn, y, yb, x, m * k * int64_t(sizeof(T)));
  NQ_CHECK_NO_OVERLAP(fn, y, yb, w, n * k);
  NQ_CHECK_NO_OVERLAP(fn, y, yb, scb, n * 4);
  NQ_CHECK_NO_OVERLAP(fn, y, yb, bias, n * 4);
  NQ_CHECK_NO_OVERLAP(fn, y, yb, outlier_cols, capacity * 4);
  return guard(fn, [&] {
    auto* cols = static_cast<int32_t*>(arena_get(kSlotStats2, size_t(k) * 4));
    int64_t count = 0;
    const Ukernel* uk = ukernel_int8();
    if (uk == nullptr) int8_matmul_ref_impl(x, m, k, w, scb, n, threshold, bias, outlier_compute, y, cols, &count);
    else int8_matmul_fast(*uk, x, m, k, w, scb, n, threshold, bias, outlier_compute, y, cols, &count);
    *out_count = count;
    NQ_CHECK(count <= capacity, NQ_ERR_INVALID_ARGUMENT,
             "%s: argument 'outlier_capacity' (%lld) is smaller than the %lld outlier columns found", fn,
             static_cast<long long>(capacity), static_cast<long long>(count));
    std::copy(cols, cols + count, outlier_cols);
    return NQ_OK;
  });
}

}  // namespace

void int8_matmul_ref(const float* x, const uint16_t* x_bf16, int64_t m, int64_t k, const int8_t* w,
                     const float* scb, int64_t n, float threshold, const float* bias, nq_compute_type oc, float* y,
                     int32_t* outlier_cols, int64_t* outlier_count) {
  if (x != nullptr) int8_matmul_ref_impl(x, m, k, w, scb, n, threshold, bias, oc, y, outlier_cols, outlier_count);
  else int8_matmul_ref_impl(x_bf16, m, k, w, scb, n, threshold, bias, oc, y, outlier_cols, outlier_count);
}

void int8_matmul_backward_ref(const float* dy, int64_t m, int64_t n, const int8_t* w, const float* scb, int64_t k,
                              nq_compute_type compute, float beta, float* dx) {
  const auto rnd = [&](float v) { return compute == NQ_COMPUTE_BF16 ? round_bf16(v) : v; };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t kk = 0; kk < k; ++kk) {
      float acc = 0.0f;
      for (int64_t j = 0; j < n; ++j) acc += rnd(dy[i * n + j]) * rnd(deq_w(w, scb, j, k, kk));
      dx[i * k + kk] = (beta == 0.0f ? 0.0f : beta * dx[i * k + kk]) + acc;
    }
}

}  // namespace nq::gemm

extern "C" {

NQ_API nq_status nq_int8_matmul(const float* x, int64_t m, int64_t k, const int8_t* w, const float* scb, int64_t n,
                                float threshold, const float* bias, nq_compute_type outlier_compute, float* y,
                                int32_t* outlier_cols, int64_t outlier_capacity, int64_t* out_outlier_count) {
  return nq::gemm::int8_matmul_entry("nq_int8_matmul", x, m, k, w, scb, n, threshold, bias, outlier_compute, y,
                                     outlier_cols, outlier_capacity, out_outlier_count);
}

NQ_API nq_status nq_int8_matmul_bf16(const uint16_t* x, int64_t m, int64_t k, const int8_t* w, const float* scb,
                                     int64_t n, float threshold, const float* bias, nq_compute_type outlier_compute,
                                     float* y, int32_t* outlier_cols, int64_t outlier_capacity,
                                     int64_t* out_outlier_count) {
  return nq::gemm::int8_matmul_entry("nq_int8_matmul_bf16", x, m, k, w, scb, n, threshold, bias, outlier_compute,
                                     y, outlier_cols, outlier_capacity, out_outlier_count);
}

NQ_API nq_status nq_int8_matmul_backward(const float* dy, int64_t m, int64_t n, const int8_t* w, const float* scb,
                                         int64_t k, nq_compute_type compute, float beta, float* dx) {
  using namespace nq::gemm;
  const char* fn = "nq_int8_matmul_backward";
  NQ_CHECK_NOT_NULL(fn, dy);
  NQ_CHECK_NOT_NULL(fn, w);
  NQ_CHECK_NOT_NULL(fn, scb);
  NQ_CHECK_NOT_NULL(fn, dx);
  NQ_CHECK_DIM(fn, m);
  NQ_CHECK_DIM(fn, n);
  NQ_CHECK_DIM(fn, k);
  NQ_CHECK_BETA(fn, beta);
  NQ_CHECK_COMPUTE(fn, compute);
  const int64_t xb = m * k * 4;
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, dy, m * n * 4);
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, w, n * k);
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, scb, n * 4);
  return nq::guard(fn, [&] {
    const Ukernel* uk = ukernel_for(compute);
    if (uk == nullptr) {
      int8_matmul_backward_ref(dy, m, n, w, scb, k, compute, beta, dx);
    } else {
      const bool acc = beta != 0.0f;
      if (acc && beta != 1.0f) prepare_output(dx, m, k, beta, nullptr);
      const bool rnd = compute == NQ_COMPUTE_BF16 && bf16_emulated(uk);
      run_gemm<float>(*uk, m, k, n, PackA<ViewF32>{ViewF32{dy, n, 1}, uk->a_fmt, rnd},
                      PackB<ViewWBwd>{ViewWBwd{w, scb, k}, uk->b_fmt, rnd}, dx, k, acc);
    }
    return NQ_OK;
  });
}

}  // extern "C"
