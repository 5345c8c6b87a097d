// Optimizer step throughput on 64M params: 8-bit vs 32-bit AdamW, Lion, the scalar
// reference, and 8-bit AdamW with paged state (budget 25% of the state).
// Bytes counted per param: p read+write (8) + g read (4) + per state read+write (2 for
// 8-bit, 8 for 32-bit) + absmax read+write (8 / 256 per 8-bit state).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "nativequant.h"

namespace {

constexpr int64_t kN = int64_t(64) << 20;

struct Data {
  std::vector<float> p, g, c1, c2;
  Data() : p(kN), g(kN), c1(256), c2(256) {
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (int64_t i = 0; i < kN; ++i) {
      p[i] = 0.1f * d(rng);
      g[i] = 0.01f * d(rng);
    }
    nq_dynamic_map_create(1, c1.data());
    nq_dynamic_map_create(0, c2.data());
  }
};

Data& data() {
  static Data d;
  return d;
}

struct Isa {
  explicit Isa(nq_isa isa) { nq_cpu_isa_set_max(isa); }
  ~Isa() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

void report(benchmark::State& st, double bytes_per_param) {
  st.SetItemsProcessed(int64_t(st.iterations()) * kN);
  st.SetBytesProcessed(int64_t(double(st.iterations()) * kN * bytes_per_param));
}

nq_optimizer_params params(nq_optimizer_kind kind, int64_t step) {
  return kind == NQ_OPTIMIZER_ADAMW ? nq_optimizer_params{1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, 1.0f, step}
                                    : nq_optimizer_params{1e-4f, 0.9f, 0.99f, 0.0f, 1e-2f, 1.0f, step};
}

void BM_Step8(benchmark::State& st) {
  const auto kind = static_cast<nq_optimizer_kind>(st.range(0));
  Isa isa(static_cast<nq_isa>(st.range(1)));
  Data& d = data();
  const bool two = kind == NQ_OPTIMIZER_ADAMW;
  const int64_t blocks = (kN + 255) / 256;
  std::vector<uint8_t> q1(kN, 0), q2(two ? kN : 0, 0);
  std::vector<float> a1(blocks, 0.0f), a2(two ? blocks : 0, 0.0f);
  int64_t t = 0;
  for (auto _ : st) {
    const nq_optimizer_params hp = params(kind, ++t);
    if (nq_optimizer8_step(kind, &hp, d.p.data(), d.g.data(), q1.data(), a1.data(), two ? q2.data() : nullptr,
                           two ? a2.data() : nullptr, d.c1.data(), two ? d.c2.data() : nullptr, kN) != NQ_OK)
      st.SkipWithError(nq_last_error_message());
  }
  report(st, 12.0 + (two ? 2 : 1) * (2.0 + 8.0 / 256));
}

void BM_Step32(benchmark::State& st) {
  const auto kind = static_cast<nq_optimizer_kind>(st.range(0));
  Data& d = data();
  const bool two = kind == NQ_OPTIMIZER_ADAMW;
  std::vector<float> m(kN, 0.0f), v(two ? kN : 0, 0.0f);
  int64_t t = 0;
  for (auto _ : st) {
    const nq_optimizer_params hp = params(kind, ++t);
    if (nq_optimizer32_step(kind, &hp, d.p.data(), d.g.data(), m.data(), two ? v.data() : nullptr, kN) != NQ_OK)
      st.SkipWithError(nq_last_error_message());
  }
  report(st, 12.0 + (two ? 2 : 1) * 8.0);
}

// Paged 8-bit AdamW: state in a file under /tmp, resident budget = 25% of the state.
void BM_AdamW8Paged(benchmark::State& st) {
  Data& d = data();
  const int64_t blocks = (kN + 255) / 256;
  const uint64_t state_bytes = 2 * (uint64_t(kN) + 4 * uint64_t(blocks));
  nq_pager* pager = nullptr;
  if (nq_pager_create(state_bytes / 4, uint64_t(st.range(0)), "/tmp", &pager) != NQ_OK) {
    st.SkipWithError(nq_last_error_message());
    return;
  }
  int64_t q1, q2, a1, a2;
  nq_pager_alloc(pager, kN, &q1);
  nq_pager_alloc(pager, kN, &q2);
  nq_pager_alloc(pager, 4 * blocks, &a1);
  nq_pager_alloc(pager, 4 * blocks, &a2);
  int64_t t = 0;
  for (auto _ : st) {
    const nq_optimizer_params hp = params(NQ_OPTIMIZER_ADAMW, ++t);
    if (nq_optimizer8_step_paged(NQ_OPTIMIZER_ADAMW, &hp, d.p.data(), d.g.data(), pager, q1, a1, q2, a2,
                                 d.c1.data(), d.c2.data(), kN) != NQ_OK)
      st.SkipWithError(nq_last_error_message());
  }
  nq_pager_stats s{};
  nq_pager_stats_get(pager, &s);
  st.counters["evictions/step"] = double(s.evictions) / double(t);
  st.counters["page_ins/step"] = double(s.page_ins) / double(t);
  report(st, 12.0 + 2 * (2.0 + 8.0 / 256));
  nq_pager_destroy(pager);
}

}  // namespace

BENCHMARK(BM_Step8)->ArgNames({"kind", "isa"})
    ->Args({NQ_OPTIMIZER_ADAMW, NQ_ISA_AVX512})->Args({NQ_OPTIMIZER_LION, NQ_ISA_AVX512})
    ->Args({NQ_OPTIMIZER_ADAMW, NQ_ISA_SCALAR})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Step32)->ArgNames({"kind"})->Arg(NQ_OPTIMIZER_ADAMW)->Arg(NQ_OPTIMIZER_LION)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AdamW8Paged)->ArgNames({"page"})->Arg(1 << 20)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
