// Causal attention forward, backward and both (one training step's attention for one layer) at the
// GPT-2 small shape (T = 256, 12 heads of 64) and the stories15M shape (T = 256, 6 heads of 48), with
// q/k/v narrow views of a fused (T, 3C) projection as the models pass them, and a decode step (T = 1
// against 256 cached keys), each at the CPU's full dispatch level and capped to AVX2 (isa = nq_isa).
// Counters: GFLOPS of the causal products, 2 D flops per visible (query, key) pair and product (QK^T
// and PV forward; dP, dV, dQ, dK backward; the backward's recomputed QK^T is not counted, so this is
// useful work), and peak_ratio against the 2-thread fp32 FMA peak.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "nativequant.h"

namespace {

// vfmadd231ps on 2 threads, measured by nq_bench_peak on the Emerald Rapids box.
constexpr double kPeakF32Gflops = 331.0;

struct Problem {
  nq_attention_shape s{};
  std::vector<float> qkv, o, lse, d_o, dqkv;
  Problem(int64_t t, int64_t heads, int64_t d, int64_t offset) {
    const int64_t c = heads * d, kv = offset + t;
    s = {1, t, kv, heads, heads, d, offset, kv * 3 * c, 3 * c, kv * 3 * c, 3 * c, kv * 3 * c, 3 * c,
         float(1.0 / std::sqrt(double(d)))};
    std::mt19937_64 rng(1);
    std::normal_distribution<float> n01(0.0f, 1.0f);
    qkv.resize(size_t(kv * 3 * c));
    for (float& x : qkv) x = n01(rng);
    d_o.resize(size_t(t * c));
    for (float& x : d_o) x = n01(rng);
    o.resize(d_o.size());
    lse.resize(size_t(heads * t));
    dqkv.assign(qkv.size(), 0.0f);
  }
  const float* q() const { return qkv.data(); }
  const float* k() const { return qkv.data() + s.q_heads * s.head_dim; }
  const float* v() const { return qkv.data() + 2 * s.q_heads * s.head_dim; }
  nq_status forward() { return nq_attention_forward(&s, q(), k(), v(), o.data(), lse.data()); }
  nq_status backward() {
    float* g = dqkv.data();
    const int64_t c = s.q_heads * s.head_dim;
    return nq_attention_backward(&s, q(), k(), v(), d_o.data(), lse.data(), g, g + c, g + 2 * c);
  }
  // Multiply-adds of one product over the visible (query, key) pairs.
  double madds() const {
    double pairs = 0;
    for (int64_t t = 0; t < s.q_len; ++t) pairs += double(s.query_offset + t + 1);
    return pairs * double(s.head_dim * s.q_heads * s.batch);
  }
};

void set_rate(benchmark::State& st, double flops) {
  st.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["peak_ratio"] =
      benchmark::Counter(flops * 1e-9 / kPeakF32Gflops, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: T, heads, D, query offset, dispatch cap (nq_isa); which = 0 forward, 1 backward, 2 both.
void BM_Attention(benchmark::State& st, int which) {
  struct Cap {  // restore full dispatch even when the body skips
    explicit Cap(int64_t isa) { nq_cpu_isa_set_max(nq_isa(isa)); }
    ~Cap() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
  } cap(st.range(4));
  Problem p(st.range(0), st.range(1), st.range(2), st.range(3));
  if (p.forward() != NQ_OK) st.SkipWithError(nq_last_error_message());
  for (auto _ : st) {
    if (which != 1 && p.forward() != NQ_OK) st.SkipWithError(nq_last_error_message());
    if (which != 0 && p.backward() != NQ_OK) st.SkipWithError(nq_last_error_message());
  }
  set_rate(st, 2.0 * p.madds() * (which == 0 ? 2 : which == 1 ? 4 : 6));
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t isa : {NQ_ISA_AVX512_BF16, NQ_ISA_AVX2}) b->Args({256, 12, 64, 0, isa})->Args({256, 6, 48, 0, isa});
  b->ArgNames({"T", "H", "D", "offset", "isa"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_Attention, forward, 0)
    ->Apply(shapes)
    ->Args({1, 12, 64, 255, NQ_ISA_AVX512_BF16})
    ->Args({1, 12, 64, 255, NQ_ISA_AVX2});
BENCHMARK_CAPTURE(BM_Attention, backward, 1)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Attention, step, 2)->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
