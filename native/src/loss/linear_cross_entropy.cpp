// nq_linear_cross_entropy: an output head and its cross-entropy fused over blocks of the vocabulary, so
// the (n, V) logits never exist (GPT-2 small at 256 positions: 49 MiB, written, re-read by the loss,
// re-read by the dX product) and W is read from memory once instead of twice.
//
// The vocabulary is cut into blocks of kBlock entries and the blocks into at most kSegments contiguous
// segments. Per segment, block by block, an online softmax as in flash attention:
//   L = x W_blk^T (n, vb);  m = running row max (earlier sums and U rescaled by e^(m_old - m));
//   E = e^(L - m);  s += Σ E,  s' += Σ E without the target;  U += E' W_blk  (E' = E, target zeroed)
// and at the end the segments are merged in order (results do not depend on which thread ran which):
//   Z = Σ_seg s e^(m_seg - M),  dx = scale * (Σ_seg U e^(m_seg - M) - Z' W_t) / Z,  nll = M + log Z - L_t
// where Z' is Z without the target: the target's row of W enters only through Z' / Z = 1 - p_t, so a
// confident prediction (p_t -> 1) does not subtract two nearly equal vectors.
// NQ_COMPUTE_INT8 runs both products of a block on the int8 kernel (head_int8.h); the softmax is unchanged.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/overlap.h"
#include "cpu/cpu.h"
#include "gemm/gemm_f32.h"
#include "gemm/gemm_f32_f16.h"
#include "gemm/gemm_int8.h"
#include "gemm/validate.h"
#include "loss/cross_entropy.h"
#include "loss/head_int8.h"

namespace nq::loss {
namespace {

// 384 = the GEMM driver's K block for fp32 and fp16 compute: U's product is one K block, and the logits
// product 4 fp16 (8 fp32) column panels; a block's L (n x 384 floats) stays in L2 beside U.
constexpr int64_t kBlock = 384;
static_assert(kBlock == kInt8Block, "NQ_COMPUTE_INT8's blocks are these blocks");
// Segments give both threads work (dynamically, so a slow core takes fewer) and bound the scratch (one U
// each, 0.75 MiB for GPT-2); the merge cost grows with them. Their sizes fall linearly (segment_start):
// the last to finish is short, so a thread waits for the other for about a block at the end. Equal
// segments of 8 left one core idle ~10 ms of every GPT-2 step (half a segment on average).
constexpr int64_t kSegments = 16;

// One segment's running state for n rows.
struct Segment {
  float* u;        // (n, c): Σ e^(L - m) W over the segment's vocabulary, target excluded
  float* m;        // (n): running max of the logits
  double* s;       // (n): Σ e^(L - m)
  double* s_nt;    // (n): the same without the target
};

// The tracked native allocator, so the scratch shows in nq_memory_stats_get.
struct Scratch {
  void* p = nullptr;
  explicit Scratch(uint64_t bytes) {
    if (nq_buffer_alloc(bytes, &p) != NQ_OK) throw std::bad_alloc();
  }
  ~Scratch() { nq_buffer_free(p); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

struct Problem {
  const float* x;
  int64_t n, c;
  const float* w;
  int64_t v;
  const int32_t* targets;
  int32_t ignore;
  nq_compute_type compute;
  bool want_dx;
  const RowPasses* rows;
  float* target_logit;          // (n): written by the segment holding each row's target
  const gemm::PrepackedA* x16;  // x packed once for the fp16 kernel (fp16 compute on AVX-512 FP16), else null
  const uint8_t* w16;           // W's blocks packed for the fp16 kernel (head_pack), else null
  // NQ_COMPUTE_INT8 (head_int8.h): the kernel (null: plain loops), x quantized once, W's packed blocks or null.
  const gemm::Ukernel* uk8;
  const Int8X* x8;
  const uint8_t* w8;
};

// One thread's scratch: a logits block and, for NQ_COMPUTE_INT8, E' quantized, the int32 sums of U's product
// and (W not packed) a block's plain int8 operands.
struct ThreadScratch {
  float* l;
  int8_t* qe;        // (n, kBlock)
  float* se;         // (n)
  int32_t* ce;       // (n)
  int32_t* acc;      // (n, c)
  uint8_t* plain;    // int8_block_plain_bytes(c)
  static uint64_t bytes(int64_t n, int64_t c, bool int8, bool plain) {
    const uint64_t a = uint64_t(n * kBlock) * 4;
    if (!int8) return a;
    const uint64_t b = a + uint64_t((n * kBlock + 63) / 64 * 64) + uint64_t(n) * 8 + uint64_t(n * c) * 4 +
                       (plain ? uint64_t(int8_block_plain_bytes(c)) : 0);
    return (b + 63) / 64 * 64;
  }
  ThreadScratch(uint8_t* at, int64_t n, int64_t c, bool int8) : l(reinterpret_cast<float*>(at)) {
    if (!int8) return;
    qe = reinterpret_cast<int8_t*>(at + n * kBlock * 4);
    uint8_t* next = reinterpret_cast<uint8_t*>(qe) + (n * kBlock + 63) / 64 * 64;
    acc = reinterpret_cast<int32_t*>(next);  // 64-aligned: n c int32 first
    se = reinterpret_cast<float*>(acc + n * c);
    ce = reinterpret_cast<int32_t*>(se + n);
    plain = reinterpret_cast<uint8_t*>(ce + n);
  }
};

// W packed for the fp16 kernel (nq_linear_cross_entropy_pack): a header, then per vocabulary block (at a
// fixed stride) W_blk^T as the logits product's B and W_blk as U's. W is frozen in the heads this is for,
// so both conversions (~0.4 ns per weight each, 5% of a GPT-2 step on one thread) happen once.
struct PackHeader {
  uint32_t magic, version;
  int64_t v, c;
  int32_t compute;
  int32_t kernel;  // the B format it was packed for (gemm::Fmt): another ISA's kernel cannot read it
};
constexpr uint32_t kPackMagic = 0x50484e51;  // "QNHP"
constexpr int64_t kPackHeaderBytes = 64;
static_assert(sizeof(PackHeader) <= kPackHeaderBytes, "the header fits its 64 bytes");

// The int8 kernel the head's NQ_COMPUTE_INT8 products run on (null: plain loops).
const gemm::Ukernel* int8_kernel() { return gemm::ukernel_int8(); }

// The kernel format a pack is laid out for, -1 where packing does not apply.
int32_t pack_kernel(nq_compute_type compute) {
  if (compute == NQ_COMPUTE_F16 && nq::cpu::use_avx512fp16()) return int32_t(gemm::Fmt::F16C);
  if (compute == NQ_COMPUTE_INT8 && int8_kernel()) return int32_t(int8_kernel()->b_fmt);
  return -1;
}
bool pack_applies(nq_compute_type compute) { return pack_kernel(compute) >= 0; }
int64_t pack_fwd_bytes(int64_t c) { return gemm::f16_prepack_b_bytes(c, kBlock); }
int64_t pack_block_bytes(int64_t c, nq_compute_type compute) {
  if (compute == NQ_COMPUTE_INT8) return int8_block_packed_bytes(*int8_kernel(), c);
  return pack_fwd_bytes(c) + gemm::f16_prepack_b_bytes(kBlock, c);
}
uint64_t pack_bytes(int64_t v, int64_t c, nq_compute_type compute) {
  return uint64_t(kPackHeaderBytes) + uint64_t((v + kBlock - 1) / kBlock) * uint64_t(pack_block_bytes(c, compute));
}

void head_pack(const float* w, int64_t v, int64_t c, nq_compute_type compute, uint8_t* out) {
  const PackHeader h{kPackMagic, 2, v, c, int32_t(compute), pack_kernel(compute)};
  std::memset(out, 0, size_t(kPackHeaderBytes));
  std::memcpy(out, &h, sizeof h);
  const int64_t blocks = (v + kBlock - 1) / kBlock, stride = pack_block_bytes(c, compute);
  const bool int8 = compute == NQ_COMPUTE_INT8;
  const int nt = int(std::min<int64_t>(nq::cpu::num_threads(), blocks));
  const uint64_t plain_bytes = int8 ? uint64_t(int8_block_plain_bytes(c)) : 0;
  Scratch plain(std::max<uint64_t>(uint64_t(nt) * plain_bytes, 64));  // int8: each thread's block before packing
#pragma omp parallel for schedule(dynamic) num_threads(nt) if (nt > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t vb = std::min(kBlock, v - b * kBlock);
    uint8_t* at = out + kPackHeaderBytes + b * stride;
    if (int8) {
      int8_block_pack(*int8_kernel(), w + b * kBlock * c, vb, c,
                      static_cast<uint8_t*>(plain.p) + omp_get_thread_num() * plain_bytes, at);
    } else {
      gemm::f16_prepack_b(w + b * kBlock * c, c, vb, true, at);
      gemm::f16_prepack_b(w + b * kBlock * c, vb, c, false, at + pack_fwd_bytes(c));
    }
  }
}

void run_segment(const Problem& p, const Segment& seg, int64_t b0, int64_t b1, const ThreadScratch& t) {
  const int64_t n = p.n, c = p.c;
  float* l = t.l;
  const bool int8 = p.x8 != nullptr;
  std::fill(seg.m, seg.m + n, -std::numeric_limits<float>::infinity());
  std::fill(seg.s, seg.s + n, 0.0);
  std::fill(seg.s_nt, seg.s_nt + n, 0.0);
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t v0 = b * kBlock, vb = std::min(kBlock, p.v - v0);
    const float* wb = p.w + v0 * c;
    const uint8_t* wpack = p.w16 ? p.w16 + b * pack_block_bytes(c, p.compute) : nullptr;
    Int8BlockOps ops{};
    if (int8) {
      ops = p.w8 ? int8_block_packed_at(*p.uk8, vb, c, p.w8 + b * pack_block_bytes(c, p.compute))
                 : int8_block_quantize(wb, vb, c, t.plain);
      int8_logits(p.uk8, *p.x8, n, c, ops, vb, l);
    } else if (wpack) {
      gemm::gemm_f16_prepacked(*p.x16, n, c, gemm::f16_prepacked_b_at(c, vb, wpack), vb, l);
    } else if (p.x16) {  // l (n, vb) = x W_blk^T; the same bits either way
      gemm::gemm_f16_prepacked_a(*p.x16, n, c, wb, vb, true, l);
    } else {
      gemm::gemm_f32_compute(0, 1, n, vb, c, p.x, wb, 0.0f, nullptr, p.compute, l);
    }
    for (int64_t i = 0; i < n; ++i) {
      float* row = l + i * vb;
      const int64_t tg = p.targets[i];
      if (tg == p.ignore) {  // contributes nothing; U's row stays 0
        std::memset(row, 0, size_t(vb) * sizeof(float));
      } else {
        const float bm = p.rows->max(row, vb);
        if (!(bm <= seg.m[i])) {  // a new max (or NaN, which then reaches every output of the row)
          if (b > b0) {  // (the first block starts the sums and writes U)
            const double r = std::exp(double(seg.m[i]) - double(bm));
            seg.s[i] *= r;
            seg.s_nt[i] *= r;
            if (p.want_dx)
              for (int64_t j = 0; j < c; ++j) seg.u[i * c + j] *= float(r);
          }
          seg.m[i] = bm;
        }
        const bool has_t = tg >= v0 && tg < v0 + vb;
        if (has_t) p.target_logit[i] = row[tg - v0];
        const double sum = p.rows->exp_sum(row, vb, seg.m[i]);
        seg.s[i] += sum;
        if (has_t) {
          seg.s_nt[i] += sum - double(row[tg - v0]);  // in double: no cancellation worth the name
          row[tg - v0] = 0.0f;
        } else {
          seg.s_nt[i] += sum;
        }
      }
      if (int8 && p.want_dx) t.ce[i] = int8_e_row(p.uk8, row, vb, t.qe + i * vb, t.se + i);
    }
    if (!p.want_dx) continue;
    // U (+)= E' W_blk: the first block writes U, so it needs no zeroing
    if (int8)
      int8_u_accumulate(p.uk8, t.qe, t.se, t.ce, n, vb, c, ops, b == b0, t.acc, seg.u);
    else if (wpack)
      gemm::gemm_f16_prepacked_b(l, n, vb, gemm::f16_prepacked_b_at(vb, c, wpack + pack_fwd_bytes(c)), c, b > b0, seg.u);
    else
      gemm::gemm_f32_compute(0, 0, n, c, vb, l, wb, b > b0 ? 1.0f : 0.0f, nullptr, p.compute, seg.u);
  }
}

// First block of segment k of nseg (k = nseg: blocks). Each gets one block and the remaining blocks - nseg
// are shared in proportion nseg - k: sizes fall from ~2 blocks / nseg to 1. A function of the block
// count only, so the bits do not depend on the threads.
int64_t segment_start(int64_t blocks, int64_t nseg, int64_t k) {
  const int64_t weight_before = k * nseg - k * (k - 1) / 2, weight_total = nseg * (nseg + 1) / 2;
  return k + (blocks - nseg) * weight_before / weight_total;
}

// Row i's outputs from the segments' states.
void merge_row(const Problem& p, const Segment* segs, int64_t nseg, float scale, int64_t i, double* nll, float* dx) {
  const int64_t c = p.c, t = p.targets[i];
  float* out = dx ? dx + i * c : nullptr;
  if (t == p.ignore) {
    nll[i] = 0.0;
    if (out) std::memset(out, 0, size_t(c) * sizeof(float));
    return;
  }
  float mx = segs[0].m[i];
  for (int64_t k = 1; k < nseg; ++k) mx = std::isnan(segs[k].m[i]) ? segs[k].m[i] : std::max(mx, segs[k].m[i]);
  double z = 0.0, z_nt = 0.0;
  for (int64_t k = 0; k < nseg; ++k) {
    const double e = std::exp(double(segs[k].m[i]) - double(mx));
    z += segs[k].s[i] * e;
    z_nt += segs[k].s_nt[i] * e;
  }
  nll[i] = double(mx) + std::log(z) - double(p.target_logit[i]);
  if (!out) return;
  const float* wt = p.w + t * c;
  const float ft = float(double(scale) * z_nt / z);
  for (int64_t j = 0; j < c; ++j) out[j] = -ft * wt[j];
  for (int64_t k = 0; k < nseg; ++k) {
    const float f = float(double(scale) * std::exp(double(segs[k].m[i]) - double(mx)) / z);
    const float* u = segs[k].u + i * c;
    for (int64_t j = 0; j < c; ++j) out[j] += f * u[j];
  }
}

void linear_cross_entropy(Problem p, float scale, double* nll, float* dx) {
  const int64_t n = p.n, c = p.c, blocks = (p.v + kBlock - 1) / kBlock, nseg = std::min(blocks, kSegments);
  const int nt = int(std::min<int64_t>(nq::cpu::num_threads(), nseg));
  // Scratch: per segment U (n c floats, when dx is wanted), m (n floats), s and s' (n doubles each); per
  // thread one logits block; the target logits.
  const int64_t u_floats = p.want_dx ? n * c : 0;
  const uint64_t seg_bytes = (uint64_t(u_floats + n) * 4 + uint64_t(2 * n) * 8 + 63) / 64 * 64;
  const bool int8 = p.compute == NQ_COMPUTE_INT8;
  p.uk8 = int8 ? int8_kernel() : nullptr;
  const uint64_t block_bytes = ThreadScratch::bytes(n, c, int8, int8 && !p.w8);
  // x packed once instead of once per block (131 times for GPT-2: ~5% of the head's time); int8: quantized once.
  const bool prepack = p.compute == NQ_COMPUTE_F16 && nq::cpu::use_avx512fp16();
  const uint64_t x16_bytes = prepack ? uint64_t(gemm::f16_prepack_bytes(n, c))
                             : int8  ? uint64_t(int8_x_bytes(p.uk8, n, c) + 63) / 64 * 64
                                     : 0;
  Scratch scratch(uint64_t(nseg) * seg_bytes + uint64_t(nt) * block_bytes + x16_bytes + (uint64_t(n) * 4 + 63) / 64 * 64);
  auto* base = static_cast<uint8_t*>(scratch.p);
  Segment segs[kSegments];
  for (int64_t k = 0; k < nseg; ++k) {
    uint8_t* s = base + k * seg_bytes;
    auto* d = reinterpret_cast<double*>(s);  // doubles first: 8-byte alignment
    segs[k] = {reinterpret_cast<float*>(s + 16 * n), reinterpret_cast<float*>(s + 16 * n) + u_floats, d, d + n};
  }
  uint8_t* blocks_at = base + nseg * seg_bytes;
  uint8_t* x16_at = blocks_at + nt * block_bytes;
  p.target_logit = reinterpret_cast<float*>(x16_at + x16_bytes);
  gemm::PrepackedA x16{};
  Int8X x8{};
  if (prepack) {
    x16 = gemm::f16_prepack_a(p.x, n, c, x16_at);
    p.x16 = &x16;
  } else if (int8) {
    x8 = int8_x_quantize(p.uk8, p.x, n, c, x16_at);
    p.x8 = &x8;
  }

  std::atomic<int64_t> next{0};
  bool failed = false;
#pragma omp parallel num_threads(nt) if (nt > 1)
  try {
    const ThreadScratch t(blocks_at + omp_get_thread_num() * block_bytes, n, c, int8);
    for (int64_t k; (k = next.fetch_add(1)) < nseg;)
      run_segment(p, segs[k], segment_start(blocks, nseg, k), segment_start(blocks, nseg, k + 1), t);
  } catch (...) {
#pragma omp atomic write
    failed = true;
  }
  if (failed) throw std::bad_alloc();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n * c * nseg >= (int64_t(1) << 17))
  for (int64_t i = 0; i < n; ++i) merge_row(p, segs, nseg, scale, i, nll, dx);
}

}  // namespace
}  // namespace nq::loss

extern "C" {

NQ_API nq_status nq_linear_cross_entropy(const float* x, int64_t n, int64_t c, const float* w, const void* w_packed,
                                         int64_t v, const int32_t* targets, int32_t ignore_index, float scale,
                                         nq_compute_type compute, double* nll, float* dx) {
  static constexpr const char* fn = "nq_linear_cross_entropy";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK(n >= 0 && n <= nq::gemm::kMaxDim, NQ_ERR_SHAPE, "%s: n must be in 0..2^31, got %lld", fn,
             static_cast<long long>(n));
    NQ_CHECK_DIM(fn, c);
    NQ_CHECK_DIM(fn, v);
    NQ_CHECK_COMPUTE_ANY(fn, compute);
    NQ_CHECK(compute != NQ_COMPUTE_INT8 || c <= nq::gemm::kInt8MaxK, NQ_ERR_INVALID_ARGUMENT,
             "%s: argument 'c' must be <= %lld with NQ_COMPUTE_INT8 (int32 accumulation), got %lld", fn,
             static_cast<long long>(nq::gemm::kInt8MaxK), static_cast<long long>(c));
    if (w_packed) {
      nq::loss::PackHeader h;
      std::memcpy(&h, w_packed, sizeof h);
      NQ_CHECK(h.magic == nq::loss::kPackMagic && h.version == 2, NQ_ERR_INVALID_ARGUMENT,
               "%s: w_packed is not a buffer nq_linear_cross_entropy_pack wrote", fn);
      NQ_CHECK(h.v == v && h.c == c && h.compute == int32_t(compute), NQ_ERR_INVALID_ARGUMENT,
               "%s: w_packed holds a (%lld, %lld) head packed for compute %d, not (%lld, %lld) for %d", fn,
               static_cast<long long>(h.v), static_cast<long long>(h.c), h.compute, static_cast<long long>(v),
               static_cast<long long>(c), nq::gemm::enum_bits(compute));
      NQ_CHECK(h.kernel == nq::loss::pack_kernel(compute), NQ_ERR_UNSUPPORTED,
               "%s: w_packed was packed for another kernel than this CPU runs now (is the ISA forced lower since it "
               "was packed?)",
               fn);
    }
    if (n == 0) return NQ_OK;
    NQ_CHECK_NOT_NULL(fn, x);
    NQ_CHECK_NOT_NULL(fn, w);
    NQ_CHECK_NOT_NULL(fn, targets);
    NQ_CHECK_NOT_NULL(fn, nll);
    NQ_CHECK(std::isfinite(scale), NQ_ERR_INVALID_ARGUMENT, "%s: scale must be finite, got %g", fn, double(scale));
    NQ_CHECK_NO_OVERLAP(fn, dx, n * c * 4, x, n * c * 4);
    NQ_CHECK_NO_OVERLAP(fn, dx, n * c * 4, w, v * c * 4);
    NQ_CHECK_NO_OVERLAP(fn, dx, n * c * 4, nll, n * 8);
    if (w_packed) NQ_CHECK_NO_OVERLAP(fn, dx, n * c * 4, w_packed, nq::loss::pack_bytes(v, c, compute));
    for (int64_t r = 0; r < n; ++r) {  // all checked before any output is written
      const int32_t t = targets[r];
      NQ_CHECK(t == ignore_index || (t >= 0 && t < v), NQ_ERR_INVALID_ARGUMENT,
               "%s: target %d at row %lld is outside [0, %lld) and not ignore_index %d", fn, t,
               static_cast<long long>(r), static_cast<long long>(v), ignore_index);
    }
    const nq::loss::RowPasses* rows = &nq::loss::row_passes();
    const auto* packed = static_cast<const uint8_t*>(w_packed);
        const uint8_t* blocks = packed ? packed + nq::loss::kPackHeaderBytes : nullptr;
    const bool int8 = compute == NQ_COMPUTE_INT8;
    nq::loss::linear_cross_entropy({x, n, c, w, v, targets, ignore_index, compute, dx != nullptr, rows, nullptr, nullptr,
                                    int8 ? nullptr : blocks, nullptr, nullptr, int8 ? blocks : nullptr},
                                   scale, nll, dx);
    return NQ_OK;
  });
}

NQ_API nq_status nq_linear_cross_entropy_pack_bytes(int64_t v, int64_t c, nq_compute_type compute, uint64_t* bytes) {
  static constexpr const char* fn = "nq_linear_cross_entropy_pack_bytes";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_DIM(fn, c);
    NQ_CHECK_DIM(fn, v);
    NQ_CHECK_COMPUTE_ANY(fn, compute);
    NQ_CHECK_NOT_NULL(fn, bytes);
    *bytes = nq::loss::pack_applies(compute) ? nq::loss::pack_bytes(v, c, compute) : 0;
    return NQ_OK;
  });
}

NQ_API nq_status nq_linear_cross_entropy_pack(const float* w, int64_t v, int64_t c, nq_compute_type compute,
                                              void* packed, uint64_t bytes) {
  static constexpr const char* fn = "nq_linear_cross_entropy_pack";
  return nq::guard(fn, [&]() -> nq_status {
    NQ_CHECK_DIM(fn, c);
    NQ_CHECK_DIM(fn, v);
    NQ_CHECK_COMPUTE_ANY(fn, compute);
    NQ_CHECK(nq::loss::pack_applies(compute), NQ_ERR_UNSUPPORTED,
             "%s: packing applies only to NQ_COMPUTE_F16 on a CPU with AVX512-FP16 and to NQ_COMPUTE_INT8 on one "
             "with AVX2 (pack_bytes gives 0 here)",
             fn);
    NQ_CHECK_NOT_NULL(fn, w);
    NQ_CHECK_NOT_NULL(fn, packed);
    const uint64_t need = nq::loss::pack_bytes(v, c, compute);
    NQ_CHECK(bytes >= need, NQ_ERR_SHAPE, "%s: packed holds %llu bytes, a (%lld, %lld) head needs %llu", fn,
             static_cast<unsigned long long>(bytes), static_cast<long long>(v), static_cast<long long>(c),
             static_cast<unsigned long long>(need));
    NQ_CHECK_NO_OVERLAP(fn, packed, need, w, v * c * 4);
    NQ_CHECK(reinterpret_cast<uintptr_t>(packed) % 64 == 0, NQ_ERR_ALIGNMENT, "%s: packed must be 64-byte aligned", fn);
    nq::loss::head_pack(w, v, c, compute, static_cast<uint8_t*>(packed));
    return NQ_OK;
  });
}

}  // extern "C"
