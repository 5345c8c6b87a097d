// GELU forward and backward (beta 0 and 1) on one GPT-2 MLP activation, (256, 3072) = 786,432 floats,
// single thread (the host splits it over its workers), per dispatch level. "s/elem" is time per element.
#include <benchmark/benchmark.h>

#include <vector>

#include "bench_util.h"
#include "nativequant.h"

namespace {

constexpr int64_t kN = 256 * 3072;

struct Isa {
  explicit Isa(nq_isa isa) { nq_cpu_isa_set_max(isa); }
  ~Isa() { nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16); }
};

void report(benchmark::State& st) {
  st.counters["s/elem"] =
      benchmark::Counter(double(kN), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_GeluForward(benchmark::State& st) {
  Isa isa(static_cast<nq_isa>(st.range(0)));
  const std::vector<float> x = randn(kN, 1);
  std::vector<float> y(kN);
  for (auto _ : st) {
    nq_gelu_forward(x.data(), kN, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  report(st);
}

void BM_GeluBackward(benchmark::State& st) {
  Isa isa(static_cast<nq_isa>(st.range(0)));
  const float beta = float(st.range(1));
  const std::vector<float> x = randn(kN, 1), g = randn(kN, 2);
  std::vector<float> dx(kN, 0.0f);
  for (auto _ : st) {
    nq_gelu_backward(x.data(), g.data(), kN, beta, dx.data());
    benchmark::DoNotOptimize(dx.data());
  }
  report(st);
}

BENCHMARK(BM_GeluForward)->ArgName("isa")->Arg(NQ_ISA_AVX512)->Arg(NQ_ISA_AVX2)->Arg(NQ_ISA_SCALAR);
BENCHMARK(BM_GeluBackward)
    ->ArgNames({"isa", "beta"})
    ->Args({NQ_ISA_AVX512, 0})
    ->Args({NQ_ISA_AVX512, 1})
    ->Args({NQ_ISA_AVX2, 0})
    ->Args({NQ_ISA_SCALAR, 0});

}  // namespace

BENCHMARK_MAIN();
