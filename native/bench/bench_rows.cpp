// Row kernels of training: cross-entropy rows (256 x 50257, GPT-2's head chunk) and LayerNorm
// forward + backward (256 x 768). Counters: ns per row. Threads: the argument (nq_threads_set).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench_util.h"
#include "nativequant.h"

namespace {

void BM_CrossEntropyRows(benchmark::State& state) {
  const int64_t rows = 256, v = 50257;
  auto logits = randn(size_t(rows * v), 1);  // rewritten in place each call: the cost does not depend on values
  std::vector<int32_t> targets(rows);
  for (int64_t r = 0; r < rows; ++r) targets[size_t(r)] = r % 16 == 15 ? -100 : int32_t(r * 197 % v);
  std::vector<double> nll(rows);
  for (auto _ : state) {
    nq_cross_entropy_rows(logits.data(), rows, v, targets.data(), -100, 1.0f / 240, nll.data());
    benchmark::DoNotOptimize(nll.data());
  }
  state.counters["ns_per_row"] = benchmark::Counter(double(rows), benchmark::Counter::kIsIterationInvariantRate |
                                                                      benchmark::Counter::kInvert);
}
BENCHMARK(BM_CrossEntropyRows)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LayerNormForwardBackward(benchmark::State& state) {
  const int64_t rows = 256, c = 768;
  nq_threads_set(int32_t(state.range(0)));
  const auto x = randn(size_t(rows * c), 1), dy = randn(size_t(rows * c), 2), w = randn(size_t(c), 3),
             b = randn(size_t(c), 4);
  std::vector<float> y(x.size()), dx(x.size()), mean(rows), rstd(rows), dw(c), db(c);
  for (auto _ : state) {
    nq_layernorm_forward(x.data(), rows, c, w.data(), b.data(), 1e-5f, y.data(), mean.data(), rstd.data());
    nq_layernorm_backward(x.data(), dy.data(), rows, c, w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                          db.data());
    benchmark::DoNotOptimize(dx.data());
  }
  state.counters["ns_per_row"] = benchmark::Counter(double(rows), benchmark::Counter::kIsIterationInvariantRate |
                                                                      benchmark::Counter::kInvert);
}
BENCHMARK(BM_LayerNormForwardBackward)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
