// LLM.int8() (Dettmers et al. 2022): X W^T = int8 part (row-wise X, row-wise W, int32
// accumulation, dequantised by absmax_x[i] * scb[n] / 127^2) + 16-bit part over the
// outlier columns of X. On VNNI CPUs W is packed as u8 = w + 128 for vpdpbusd and the
// extra 128 * sum_k q_x[i][k] is subtracted in the epilogue; AVX2 widens to int16 pairs.
// The backward dX = dY W runs either dequantising W into fp32/bf16 panels or, with
// NQ_COMPUTE_INT8, as the same int8 product with dY * scb / 127 quantized per row and W
// itself as B (only the B packer differs from the forward).
#include "gemm/gemm_int8.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "cpu/cpu.h"
#include "gemm/arena.h"
#include "gemm/convert.h"
#include "gemm/driver.h"
#include "gemm/gemv.h"
#include "gemm/int8_pack.h"
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

// x[0..7] as floats (AVX2, the library baseline).
template <class T>
__m256 load_x8(const T* x) {
  if constexpr (std::is_same_v<T, float>) {
    return _mm256_loadu_ps(x);
  } else {  // bf16 bits are the high half of the fp32 ones
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// Outlier mask of X (m,k) over columns [j0, j1): mask[j] = 1 if some |X[i][j]| >= threshold
// (mask starts at 0). The reference runs it over all columns.
template <class T>
void mark_outliers(const T* x, int64_t m, int64_t k, float threshold, int64_t j0, int64_t j1, uint8_t* mask) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = j0; j < j1; ++j) mask[j] |= uint8_t(std::fabs(load_x(x, i * k + j)) >= threshold);
}

// Same mask, threads over blocks of 64 columns whose 8 vector flags stay in registers while
// every row is scanned (the scalar loop above does a read-modify-write of mask per element).
template <class T>
void mark_outliers_avx2(const T* x, int64_t m, int64_t k, float threshold, uint8_t* mask, int nt) {
  constexpr int64_t kBlock = 64;
  const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), thr = _mm256_set1_ps(threshold);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t j0 = 0; j0 < k; j0 += kBlock) {
    if (j0 + kBlock > k) {
      mark_outliers(x, m, k, threshold, j0, k, mask);
      continue;
    }
    __m256 hit[8];
    for (auto& h : hit) h = _mm256_setzero_ps();
    for (int64_t i = 0; i < m; ++i) {
      const T* xr = x + i * k + j0;
      for (int v = 0; v < 8; ++v)  // NaN compares false (_CMP_GE_OQ), as in the scalar >=
        hit[v] = _mm256_or_ps(hit[v], _mm256_cmp_ps(_mm256_and_ps(load_x8(xr + 8 * v), abs), thr, _CMP_GE_OQ));
    }
    for (int v = 0; v < 8; ++v) {
      const int bits = _mm256_movemask_ps(hit[v]);
      for (int t = 0; t < 8; ++t) mask[j0 + 8 * v + t] = uint8_t((bits >> t) & 1);
    }
  }
}

// Outlier columns (ascending) of X (m,k) at `threshold` (0 = none) into cols; mask[j] = 1 for
// them. fast: the AVX2 scan on nt threads, else the scalar reference.
template <class T>
int64_t find_outliers(const T* x, int64_t m, int64_t k, float threshold, uint8_t* mask, int32_t* cols, bool fast,
                      int nt) {
  std::fill(mask, mask + k, uint8_t(0));
  if (threshold <= 0.0f) return 0;
  if (fast) mark_outliers_avx2(x, m, k, threshold, mask, nt);
  else mark_outliers(x, m, k, threshold, 0, k, mask);
  int64_t c = 0;
  for (int64_t j = 0; j < k; ++j)
    if (mask[j]) cols[c++] = int32_t(j);
  return c;
}

// Rows the quantizers read: at(j) one value, at8(j) values j..j+7 (AVX2, the library baseline).
// Forward: a row of X with the outlier columns (mask[j] = 1) read as 0.
template <class T>
struct XRow {
  const T* x;
  const uint8_t* mask;
  float at(int64_t j) const { return mask[j] ? 0.0f : load_x(x, j); }
  __m256 at8(int64_t j) const {
    const __m256 v = load_x8(x + j);
    const __m256i mk = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mask + j)));
    return _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(mk, _mm256_setzero_si256())), v);
  }
};

// Backward: row i of G = dY * scb / 127 (sg[j] = scb[j] / 127).
struct GradRow {
  const float* dy;
  const float* sg;
  float at(int64_t j) const { return dy[j] * sg[j]; }
  __m256 at8(int64_t j) const { return _mm256_mul_ps(_mm256_loadu_ps(dy + j), _mm256_loadu_ps(sg + j)); }
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
  const int64_t nout = find_outliers(x, m, k, threshold, mask, list, true, nt);
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
      int32_t qsum = 0;
      sx[i] = quantize_row_avx2(k, XRow<T>{x + i * k, mask}, qr, &qsum);
      corr[i] = offset_correction(qsum, uk.b_fmt);  // the weight's + 128 offset, per row of X
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

// Int8 backward (SwitchBack): G = dY * scb / 127 per element (sg[j] = scb[j] / 127), each row
// quantized like X; dX[i][c] = beta * dX[i][c] + (absmax_i / 127) * sum_j q[i][j] W[j][c].
void grad_scales(const float* scb, int64_t n, float* sg) {
  for (int64_t j = 0; j < n; ++j) sg[j] = scb[j] / 127.0f;
}

// One dX element from its exact int32 sum (old is read only when beta != 0).
inline float backward_out(float beta, const float* old, int32_t acc, float scale) {
  return (beta == 0.0f ? 0.0f : beta * *old) + float(acc) * scale;
}

// dr[c] = backward_out(beta, dr + c, ar[c] - corr, scale) for c < cols, 8 at a time with the
// same roundings (so equal to the reference); dr may be ar itself when beta = 0.
inline void backward_out_row(float beta, float* dr, const int32_t* ar, int cols, int32_t corr, float scale) {
  const __m256i vc = _mm256_set1_epi32(corr);
  const __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(beta);
  int c = 0;
  for (; c + 8 <= cols; c += 8) {
    const __m256i a = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ar + c)), vc);
    const __m256 old = beta == 0.0f ? _mm256_setzero_ps() : _mm256_mul_ps(vb, _mm256_loadu_ps(dr + c));
    _mm256_storeu_ps(dr + c, _mm256_add_ps(old, _mm256_mul_ps(_mm256_cvtepi32_ps(a), vs)));
  }
  for (; c < cols; ++c) {
    int32_t a;
    std::memcpy(&a, ar + c, 4);
    dr[c] = backward_out(beta, dr + c, a - corr, scale);
  }
}

void int8_backward_int8_fast(const Ukernel& uk, const float* dy, int64_t m, int64_t n, const int8_t* w,
                             const float* scb, int64_t k, float beta, float* dx) {
  auto* stats = static_cast<uint8_t*>(arena_get(kSlotStats1, size_t(4 * (2 * m + n))));
  auto* scale = reinterpret_cast<float*>(stats);          // (m) absmax_i / 127
  auto* corr = reinterpret_cast<int32_t*>(stats + 4 * m);  // (m)
  auto* sg = reinterpret_cast<float*>(stats + 8 * m);      // (n)
  auto* qg = static_cast<int8_t*>(arena_get(kSlotStats0, size_t(m * n)));  // (m, n)
  grad_scales(scb, n, sg);
  const int nt = threads_for(m * n * 4);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t i = 0; i < m; ++i) {
    int8_t* qr = qg + i * n;
    int32_t qsum = 0;
    scale[i] = quantize_row_avx2(n, GradRow{dy + i * n, sg}, qr, &qsum) / 127.0f;
    corr[i] = offset_correction(qsum, uk.b_fmt);
  }
  // int32 sums (m, k) accumulate in dx itself when its old value is not needed (each finished
  // tile is turned into floats in place, as in the forward), else in scratch.
  auto* acc = beta == 0.0f ? reinterpret_cast<int32_t*>(dx)
                           : static_cast<int32_t*>(arena_get(kSlotStats2, size_t(m * k) * 4));
  const auto epilogue = [&](int32_t* tile, int64_t ld, int64_t i0, int64_t j0, int rows, int cols) {
    for (int r = 0; r < rows; ++r)
      backward_out_row(beta, dx + (i0 + r) * k + j0, tile + r * ld, cols, corr[i0 + r], scale[i0 + r]);
  };
  run_gemm<int32_t>(uk, m, k, n, PackAInt8{qg, n, uk.a_fmt}, PackBInt8Bwd{w, k, uk.b_fmt}, acc, k, false, epilogue);
}

void int8_backward_int8_ref(const float* dy, int64_t m, int64_t n, const int8_t* w, const float* scb, int64_t k,
                            float beta, float* dx) {
  std::vector<float> sg(static_cast<size_t>(n));
  std::vector<int8_t> q(static_cast<size_t>(n));
  grad_scales(scb, n, sg.data());
  for (int64_t i = 0; i < m; ++i) {
    const float scale = quantize_row(n, GradRow{dy + i * n, sg.data()}, q.data()) / 127.0f;
    for (int64_t c = 0; c < k; ++c) {
      int32_t acc = 0;
      for (int64_t j = 0; j < n; ++j) acc += int32_t(q[j]) * w[j * k + c];
      dx[i * k + c] = backward_out(beta, dx + i * k + c, acc, scale);
    }
  }
}

template <class T>
void int8_matmul_ref_impl(const T* x, int64_t m, int64_t k, const int8_t* w, const float* scb, int64_t n,
                          float threshold, const float* bias, nq_compute_type oc, float* y, int32_t* cols,
                          int64_t* count) {
  std::vector<uint8_t> mask(static_cast<size_t>(k));
  std::vector<int32_t> list(static_cast<size_t>(k));
  std::vector<int8_t> q(static_cast<size_t>(k));
  const int64_t nout = find_outliers(x, m, k, threshold, mask.data(), list.data(), false, 1);
  const auto rnd = [&](float v) { return oc == NQ_COMPUTE_BF16 ? round_bf16(v) : v; };
  for (int64_t i = 0; i < m; ++i) {
    const float sx = quantize_row(k, XRow<T>{x + i * k, mask.data()}, q.data());
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
  if (compute == NQ_COMPUTE_INT8) return int8_backward_int8_ref(dy, m, n, w, scb, k, beta, dx);
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
  const int cb = enum_bits(compute);
  NQ_CHECK(cb == NQ_COMPUTE_F32 || cb == NQ_COMPUTE_BF16 || cb == NQ_COMPUTE_INT8, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'compute' must be NQ_COMPUTE_F32 (0), NQ_COMPUTE_BF16 (1) or NQ_COMPUTE_INT8 (2), got %d",
           fn, cb);
  NQ_CHECK(cb != NQ_COMPUTE_INT8 || n <= kInt8MaxK, NQ_ERR_INVALID_ARGUMENT,
           "%s: argument 'n' must be <= %lld with NQ_COMPUTE_INT8 (int32 accumulation), got %lld", fn,
           static_cast<long long>(kInt8MaxK), static_cast<long long>(n));
  const int64_t xb = m * k * 4;
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, dy, m * n * 4);
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, w, n * k);
  NQ_CHECK_NO_OVERLAP(fn, dx, xb, scb, n * 4);
  return nq::guard(fn, [&] {
    const bool int8 = compute == NQ_COMPUTE_INT8;
    const Ukernel* uk = int8 ? ukernel_int8() : ukernel_for(compute);
    if (uk == nullptr) {
      int8_matmul_backward_ref(dy, m, n, w, scb, k, compute, beta, dx);
    } else if (int8) {
      int8_backward_int8_fast(*uk, dy, m, n, w, scb, k, beta, dx);
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
