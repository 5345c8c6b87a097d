// Optimizer steps over pager-backed state: walk the tensor in block-aligned chunks that
// fit half the budget, pin a chunk's state ranges, prefetch the next chunk's, update, and
// unpin. The kernel per chunk is the unpaged one on offset pointers, so the bits match.
#include <algorithm>

#include "core/error.h"
#include "optim/optim.h"
#include "pager/pager.h"

namespace nq::optim {

namespace {

// One pager buffer holding a state; element range [i0, i0 + len) covers bytes
// [i0 * num / den, ceil((i0 + len) * num / den)) with den = 1 (a dense state of `num`
// bytes per element) or den = kBlock (absmax: 4 bytes per block).
struct StateBuffer {
  int64_t id;
  uint64_t num, den;
  uint64_t begin(int64_t i0) const { return uint64_t(i0) * num / den; }
  uint64_t end(int64_t i1) const { return (uint64_t(i1) * num + den - 1) / den; }
};

nq_status check_buffer(const char* fn, const char* arg, nq_pager* pager, const StateBuffer& b, int64_t n) {
  uint64_t bytes = 0;
  if (nq_status s = nq::pager::buffer_bytes(fn, arg, pager, b.id, &bytes); s != NQ_OK) return s;
  NQ_CHECK(bytes >= b.end(n), NQ_ERR_SHAPE, "%s: buffer '%s' holds %llu bytes; %llu needed for n = %lld", fn, arg,
           static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(b.end(n)),
           static_cast<long long>(n));
  return NQ_OK;
}

// Run `kernel(i0, len, ptrs)` over chunks; ptrs[k] points at buffer k's bytes for i0.
template <class Kernel>
nq_status run_paged(const char* fn, nq_pager* pager, const StateBuffer* bufs, int count, int64_t n,
                    Kernel&& kernel) {
  // Elements per chunk: half the budget (the other half takes the prefetched chunk),
  // less two pages per buffer for ranges straddling page boundaries.
  const uint64_t page = nq::pager::page_bytes(pager);
  const uint64_t half = nq::pager::budget_bytes(pager) / page / 2 * page;
  double bytes_per_element = 0;
  for (int k = 0; k < count; ++k) bytes_per_element += double(bufs[k].num) / double(bufs[k].den);
  const uint64_t slack = 2 * page * uint64_t(count);
  const int64_t fit = half > slack ? int64_t(double(half - slack) / bytes_per_element) : 0;
  NQ_CHECK(fit >= kBlock, NQ_ERR_INVALID_ARGUMENT,
           "%s: the pager's budget (%llu bytes) is too small for a paged step; it needs at least %llu bytes", fn,
           static_cast<unsigned long long>(nq::pager::budget_bytes(pager)),
           static_cast<unsigned long long>(2 * (slack + uint64_t(bytes_per_element * kBlock) + page)));
  // Page-multiple chunks keep dense state ranges page-aligned, so consecutive chunks
  // never share a page.
  const int64_t chunk = fit >= int64_t(page) ? fit / int64_t(page) * int64_t(page) : fit / kBlock * kBlock;

  void* ptrs[4] = {};
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t i1 = std::min(n, i0 + chunk);
    int pinned = 0;
    nq_status s = NQ_OK;
    for (; pinned < count && s == NQ_OK; ++pinned) {
      const StateBuffer& b = bufs[pinned];
      s = nq_pager_acquire(pager, b.id, b.begin(i0), b.end(i1) - b.begin(i0), &ptrs[pinned]);
    }
    if (s != NQ_OK) --pinned;  // the failed acquire pinned nothing
    if (s == NQ_OK && i1 < n) {
      const int64_t i2 = std::min(n, i1 + chunk);
      for (int k = 0; k < count && s == NQ_OK; ++k)
        s = nq_pager_prefetch(pager, bufs[k].id, bufs[k].begin(i1), bufs[k].end(i2) - bufs[k].begin(i1));
    }
    if (s == NQ_OK) kernel(i0, i1 - i0, ptrs);
    for (int k = 0; k < pinned; ++k) {
      const nq_status r = nq_pager_release(pager, bufs[k].id, bufs[k].begin(i0), bufs[k].end(i1) - bufs[k].begin(i0));
      if (s == NQ_OK) s = r;
    }
    if (s != NQ_OK) return s;
  }
  return NQ_OK;
}

}  // namespace

}  // namespace nq::optim

using namespace nq::optim;

extern "C" {

NQ_API nq_status nq_optimizer32_step_paged(nq_optimizer_kind kind, const nq_optimizer_params* params,
                                           float* p, const float* g, nq_pager* pager, int64_t state1,
                                           int64_t state2, int64_t n) {
  static constexpr const char* fn = "nq_optimizer32_step_paged";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status s = check_tensor_args(fn, kind, params, p, g, n); s != NQ_OK) return s;
    NQ_CHECK_NOT_NULL(fn, pager);
    const int count = kind == NQ_OPTIMIZER_ADAMW ? 2 : 1;
    NQ_CHECK(count == 2 || state2 == -1, NQ_ERR_INVALID_ARGUMENT, "%s: argument 'state2' must be -1 for Lion", fn);
    const StateBuffer bufs[2] = {{state1, 4, 1}, {state2, 4, 1}};
    const char* names[2] = {"state1", "state2"};
    for (int k = 0; k < count; ++k)
      if (nq_status s = check_buffer(fn, names[k], pager, bufs[k], n); s != NQ_OK) return s;
    NQ_CHECK(count == 1 || state1 != state2, NQ_ERR_OVERLAP, "%s: 'state1' and 'state2' must differ", fn);
    const StepConsts c = make_consts(*params);
    return run_paged(fn, pager, bufs, count, n, [&](int64_t i0, int64_t len, void* const* ptr) {
      step32(kind, c, p + i0, g + i0, static_cast<float*>(ptr[0]), count == 2 ? static_cast<float*>(ptr[1]) : nullptr,
             len);
    });
  });
}

NQ_API nq_status nq_optimizer8_step_paged(nq_optimizer_kind kind, const nq_optimizer_params* params,
                                          float* p, const float* g, nq_pager* pager, int64_t state1,
                                          int64_t absmax1, int64_t state2, int64_t absmax2,
                                          const float* code1, const float* code2, int64_t n) {
  static constexpr const char* fn = "nq_optimizer8_step_paged";
  return nq::guard(fn, [&]() -> nq_status {
    if (nq_status s = check_tensor_args(fn, kind, params, p, g, n); s != NQ_OK) return s;
    NQ_CHECK_NOT_NULL(fn, pager);
    const bool adamw = kind == NQ_OPTIMIZER_ADAMW;
    NQ_CHECK(adamw || (state2 == -1 && absmax2 == -1 && code2 == nullptr), NQ_ERR_INVALID_ARGUMENT,
             "%s: arguments 'state2', 'absmax2' must be -1 and 'code2' NULL for Lion", fn);
    if (nq_status s = check_code(fn, "code1", code1); s != NQ_OK) return s;
    if (adamw)
      if (nq_status s = check_code(fn, "code2", code2); s != NQ_OK) return s;
    const StateBuffer bufs[4] = {{state1, 1, 1}, {absmax1, 4, uint64_t(kBlock)}, {state2, 1, 1},
                                 {absmax2, 4, uint64_t(kBlock)}};
    const char* names[4] = {"state1", "absmax1", "state2", "absmax2"};
    const int count = adamw ? 4 : 2;
    for (int k = 0; k < count; ++k) {
      if (nq_status s = check_buffer(fn, names[k], pager, bufs[k], n); s != NQ_OK) return s;
      for (int j = 0; j < k; ++j)
        NQ_CHECK(bufs[j].id != bufs[k].id, NQ_ERR_OVERLAP, "%s: buffers '%s' and '%s' must differ", fn, names[j],
                 names[k]);
    }
    Codebook cb1, cb2;
    make_codebook(code1, &cb1);
    if (adamw) make_codebook(code2, &cb2);
    const StepConsts c = make_consts(*params);
    return run_paged(fn, pager, bufs, count, n, [&](int64_t i0, int64_t len, void* const* ptr) {
      step8(kind, c, p + i0, g + i0, static_cast<uint8_t*>(ptr[0]), static_cast<float*>(ptr[1]),
            adamw ? static_cast<uint8_t*>(ptr[2]) : nullptr, adamw ? static_cast<float*>(ptr[3]) : nullptr, cb1, cb2,
            len);
    });
  });
}

}  // extern "C"
