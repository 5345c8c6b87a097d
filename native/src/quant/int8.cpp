// int8 quantization: symmetric absmax per tensor / row / column (bitsandbytes' LLM.int8()
// vector-wise statistics) and asymmetric zero-point per tensor / row.
#include <algorithm>
#include <cmath>

#include "quant/abi_util.h"
#include "quant/quant.h"

namespace nq::quant {

uint32_t absmax_bits_ref(const float* x, int64_t n) {
  uint32_t m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, abs_bits(x[i]));
  return m;
}

void colmax_bits_ref(const float* x, int64_t n, uint32_t* acc) {
  for (int64_t i = 0; i < n; ++i) acc[i] = std::max(acc[i], abs_bits(x[i]));
}

void minmax_ref(const float* x, int64_t n, float* lo, float* hi) {
  float l = *lo, h = *hi;
  for (int64_t i = 0; i < n; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  *lo = l;
  *hi = h;
}

void int8_scale_ref(const float* x, int64_t n, float s, const float* sv, int8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = sat_round_i8(x[i] * (sv ? sv[i] : s));
}

void int8_unscale_ref(const int8_t* q, int64_t n, float a, const float* av, float b, float* x) {
  for (int64_t i = 0; i < n; ++i) x[i] = (static_cast<float>(q[i]) * (av ? av[i] : a)) * b;
}

void zp_quantize_ref(const float* x, int64_t n, float scale, float zp, int8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = zp_quant_elem(x[i], scale, zp);
}

void zp_dequantize_ref(const int8_t* q, int64_t n, float scale, float zp, float* x) {
  for (int64_t i = 0; i < n; ++i) x[i] = (static_cast<float>(q[i]) - zp) * scale;
}

}  // namespace nq::quant

namespace {

using namespace nq::quant;

constexpr float kInv127 = 1.0f / 127.0f;  // bnb dequantizes with q * absmax * 7.874015718698502e-3
constexpr int64_t kColChunk = 512;         // columns whose scales live on the stack at once

// 127 / absmax, or 0 for an all-zero group (which then quantizes to 0).
float int8_scale_of(float absmax) { return absmax > 0.0f ? 127.0f / absmax : 0.0f; }

int64_t first_non_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (abs_bits(x[i]) >= kNonFiniteBits) return i;
  return -1;
}

// x: (rows, cols) -> q, row_absmax (rows); also the per-tensor kernel (rows = 1).
nq_status rowwise_quantize(const char* fn, const float* x, int64_t rows, int64_t cols, int8_t* q,
                           float* row_absmax) {
  NQ_CHECK_NO_OVERLAP(fn, q, rows * cols, x, rows * cols * 4);
  NQ_CHECK_NO_OVERLAP(fn, row_absmax, rows * 4, x, rows * cols * 4);
  NQ_CHECK_NO_OVERLAP(fn, row_absmax, rows * 4, q, rows * cols);
  const Kernels& k = kernels();
  int64_t bad;
  if (rows == 1) {  // one group: split the absmax reduction and the scaling across threads
    uint32_t m = 0;
#pragma omp parallel num_threads(nq::cpu::num_threads()) if (cols >= kParallelMinElements) reduction(max : m)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t i0 = cols * t / nt, i1 = cols * (t + 1) / nt;
      m = k.absmax_bits(x + i0, i1 - i0);
    }
    bad = m >= kNonFiniteBits ? 0 : -1;
    if (bad < 0) {
      row_absmax[0] = from_bits(m);
      const float s = int8_scale_of(row_absmax[0]);
      for_block_ranges(cols, cols, [&](int64_t i0, int64_t i1) {
        k.int8_scale(x + i0, i1 - i0, s, nullptr, q + i0);
        return int64_t(-1);
      });
    }
  } else {
    bad = for_block_ranges(rows, rows * cols, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const uint32_t m = k.absmax_bits(x + r * cols, cols);
        if (m >= kNonFiniteBits) return r;
        row_absmax[r] = from_bits(m);
        k.int8_scale(x + r * cols, cols, int8_scale_of(row_absmax[r]), nullptr, q + r * cols);
      }
      return int64_t(-1);
    });
  }
  if (bad >= 0) {
    const int64_t i = first_non_finite(x + bad * cols, cols);
    return nq::fail(NQ_ERR_NON_FINITE, "%s: argument 'x' has a NaN or Inf in row %lld (element %lld)", fn,
                    static_cast<long long>(bad), static_cast<long long>(bad * cols + i));
  }
  return NQ_OK;
}

// q: (rows, cols), scale a[r] (or av[c] per column) -> x = (q * a) / 127
nq_status int8_dequantize(const char* fn, const int8_t* q, const float* absmax, int64_t groups,
                          bool per_column, int64_t rows, int64_t cols, float* x) {
  NQ_CHECK_NO_OVERLAP(fn, x, rows * cols * 4, q, rows * cols);
  NQ_CHECK_NO_OVERLAP(fn, x, rows * cols * 4, absmax, groups * 4);
  const int64_t g = first_non_finite(absmax, groups);
  NQ_CHECK(g < 0, NQ_ERR_NON_FINITE, "%s: the absmax argument is NaN or Inf at index %lld", fn,
           static_cast<long long>(g));
  const Kernels& k = kernels();
  if (rows == 1 && !per_column) {
    for_block_ranges(cols, cols, [&](int64_t i0, int64_t i1) {
      k.int8_unscale(q + i0, i1 - i0, absmax[0], nullptr, kInv127, x + i0);
      return int64_t(-1);
    });
    return NQ_OK;
  }
  for_block_ranges(rows, rows * cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      k.int8_unscale(q + r * cols, cols, per_column ? 0.0f : absmax[r], per_column ? absmax : nullptr, kInv127,
                     x + r * cols);
    return int64_t(-1);
  });
  return NQ_OK;
}

nq_status check_matrix(const char* fn, int64_t rows, int64_t cols) {
  NQ_CHECK_POSITIVE(fn, rows);
  NQ_CHECK_POSITIVE(fn, cols);
  NQ_CHECK(rows <= INT64_MAX / 4 / cols, NQ_ERR_SHAPE, "%s: rows * cols (%lld * %lld) is too large", fn,
           static_cast<long long>(rows), static_cast<long long>(cols));
  return NQ_OK;
}

}  // namespace

extern "C" {

NQ_API nq_status nq_int8_absmax_quantize(const float* x, int64_t n, int8_t* q, float* out_absmax) {
  constexpr const char* fn = "nq_int8_absmax_quantize";
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, out_absmax);
  if (nq_status s = check_matrix(fn, 1, n)) return s;
  return rowwise_quantize(fn, x, 1, n, q, out_absmax);
}

NQ_API nq_status nq_int8_absmax_dequantize(const int8_t* q, int64_t n, float absmax, float* x) {
  constexpr const char* fn = "nq_int8_absmax_dequantize";
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, x);
  if (nq_status s = check_matrix(fn, 1, n)) return s;
  return int8_dequantize(fn, q, &absmax, 1, false, 1, n, x);
}

NQ_API nq_status nq_int8_rowwise_quantize(const float* x, int64_t rows, int64_t cols, int8_t* q,
                                          float* row_absmax) {
  constexpr const char* fn = "nq_int8_rowwise_quantize";
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, row_absmax);
  if (nq_status s = check_matrix(fn, rows, cols)) return s;
  return rowwise_quantize(fn, x, rows, cols, q, row_absmax);
}

NQ_API nq_status nq_int8_rowwise_dequantize(const int8_t* q, const float* row_absmax, int64_t rows,
                                            int64_t cols, float* x) {
  constexpr const char* fn = "nq_int8_rowwise_dequantize";
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, row_absmax);
  NQ_CHECK_NOT_NULL(fn, x);
  if (nq_status s = check_matrix(fn, rows, cols)) return s;
  return int8_dequantize(fn, q, row_absmax, rows, false, rows, cols, x);
}

NQ_API nq_status nq_int8_colwise_quantize(const float* x, int64_t rows, int64_t cols, int8_t* q,
                                          float* col_absmax) {
  constexpr const char* fn = "nq_int8_colwise_quantize";
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, col_absmax);
  if (nq_status s = check_matrix(fn, rows, cols)) return s;
  NQ_CHECK_NO_OVERLAP(fn, q, rows * cols, x, rows * cols * 4);
  NQ_CHECK_NO_OVERLAP(fn, col_absmax, cols * 4, x, rows * cols * 4);
  NQ_CHECK_NO_OVERLAP(fn, col_absmax, cols * 4, q, rows * cols);
  const Kernels& k = kernels();
  // Each thread owns a range of column chunks: absmax down the rows (as bits, kept in
  // col_absmax itself), then the scaled rows of its chunk.
  const int64_t chunks = ceil_div(cols, kColChunk);
  const int64_t bad = for_block_ranges(chunks, rows * cols, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t j0 = c * kColChunk, w = std::min(kColChunk, cols - j0);
      uint32_t acc[kColChunk] = {};
      for (int64_t r = 0; r < rows; ++r) k.colmax_bits(x + r * cols + j0, w, acc);
      float scales[kColChunk];
      for (int64_t j = 0; j < w; ++j) {
        if (acc[j] >= kNonFiniteBits) return j0 + j;
        col_absmax[j0 + j] = from_bits(acc[j]);
        scales[j] = int8_scale_of(col_absmax[j0 + j]);
      }
      for (int64_t r = 0; r < rows; ++r) k.int8_scale(x + r * cols + j0, w, 0.0f, scales, q + r * cols + j0);
    }
    return int64_t(-1);
  });
  NQ_CHECK(bad < 0, NQ_ERR_NON_FINITE, "%s: argument 'x' has a NaN or Inf in column %lld", fn,
           static_cast<long long>(bad));
  return NQ_OK;
}

NQ_API nq_status nq_int8_colwise_dequantize(const int8_t* q, const float* col_absmax, int64_t rows,
                                            int64_t cols, float* x) {
  constexpr const char* fn = "nq_int8_colwise_dequantize";
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, col_absmax);
  NQ_CHECK_NOT_NULL(fn, x);
  if (nq_status s = check_matrix(fn, rows, cols)) return s;
  return int8_dequantize(fn, q, col_absmax, cols, true, rows, cols, x);
}

NQ_API nq_status nq_int8_zeropoint_quantize(const float* x, int64_t rows, int64_t cols, int32_t per_row,
                                            int8_t* q, float* scale, float* zero_point) {
  constexpr const char* fn = "nq_int8_zeropoint_quantize";
  NQ_CHECK_NOT_NULL(fn, x);
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, scale);
  NQ_CHECK_NOT_NULL(fn, zero_point);
  if (nq_status s = check_matrix(fn, rows, cols)) return s;
  NQ_CHECK(per_row == 0 || per_row == 1, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'per_row' must be 0 or 1, got %d", fn, per_row);
  // Groups: the whole tensor as one row, or each row.
  const int64_t groups = per_row ? rows : 1, len = per_row ? cols : rows * cols;
  NQ_CHECK_NO_OVERLAP(fn, q, rows * cols, x, rows * cols * 4);
  NQ_CHECK_NO_OVERLAP(fn, scale, groups * 4, x, rows * cols * 4);
  NQ_CHECK_NO_OVERLAP(fn, zero_point, groups * 4, x, rows * cols * 4);
  NQ_CHECK_NO_OVERLAP(fn, scale, groups * 4, zero_point, groups * 4);
  NQ_CHECK_NO_OVERLAP(fn, q, rows * cols, scale, groups * 4);
  NQ_CHECK_NO_OVERLAP(fn, q, rows * cols, zero_point, groups * 4);
  const Kernels& k = kernels();
  const int64_t bad = for_block_ranges(groups, rows * cols, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const float* xg = x + g * len;
      if (k.absmax_bits(xg, len) >= kNonFiniteBits) return g;
      float lo = 0.0f, hi = 0.0f;  // the range always includes 0, so 0 is exact
      k.minmax(xg, len, &lo, &hi);
      const float s = (hi - lo) / 255.0f;
      const float zp = s > 0.0f ? std::nearbyint(-128.0f - lo / s) : 0.0f;
      scale[g] = s;
      zero_point[g] = zp;
      if (s > 0.0f)
        k.zp_quantize(xg, len, s, zp, q + g * len);
      else
        std::fill(q + g * len, q + (g + 1) * len, int8_t(0));
    }
    return int64_t(-1);
  });
  if (bad >= 0) {
    const int64_t i = first_non_finite(x + bad * len, len);
    return nq::fail(NQ_ERR_NON_FINITE, "%s: argument 'x' has a NaN or Inf in %s %lld (element %lld)", fn,
                    per_row ? "row" : "tensor group", static_cast<long long>(bad),
                    static_cast<long long>(bad * len + i));
  }
  return NQ_OK;
}

NQ_API nq_status nq_int8_zeropoint_dequantize(const int8_t* q, const float* scale, const float* zero_point,
                                              int64_t rows, int64_t cols, int32_t per_row, float* x) {
  constexpr const char* fn = "nq_int8_zeropoint_dequantize";
  NQ_CHECK_NOT_NULL(fn, q);
  NQ_CHECK_NOT_NULL(fn, scale);
  NQ_CHECK_NOT_NULL(fn, zero_point);
  NQ_CHECK_NOT_NULL(fn, x);
  if (nq_status s = check_matrix(fn, rows, cols)) return s;
  NQ_CHECK(per_row == 0 || per_row == 1, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'per_row' must be 0 or 1, got %d", fn, per_row);
  const int64_t groups = per_row ? rows : 1, len = per_row ? cols : rows * cols;
  NQ_CHECK_NO_OVERLAP(fn, x, rows * cols * 4, q, rows * cols);
  NQ_CHECK_NO_OVERLAP(fn, x, rows * cols * 4, scale, groups * 4);
  NQ_CHECK_NO_OVERLAP(fn, x, rows * cols * 4, zero_point, groups * 4);
  for (int64_t g = 0; g < groups; ++g)
    NQ_CHECK(abs_bits(scale[g]) < kNonFiniteBits && abs_bits(zero_point[g]) < kNonFiniteBits, NQ_ERR_NON_FINITE,
             "%s: argument 'scale' or 'zero_point' is NaN or Inf at group %lld", fn, static_cast<long long>(g));
  const Kernels& k = kernels();
  if (groups == 1) {
    for_block_ranges(len, len, [&](int64_t i0, int64_t i1) {
      k.zp_dequantize(q + i0, i1 - i0, scale[0], zero_point[0], x + i0);
      return int64_t(-1);
    });
  } else {
    for_block_ranges(groups, rows * cols, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) k.zp_dequantize(q + g * len, len, scale[g], zero_point[g], x + g * len);
      return int64_t(-1);
    });
  }
  return NQ_OK;
}

}  // extern "C"
