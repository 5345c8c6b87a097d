// Quantization kernels on 64M floats with 2 threads, per ISA (arg: nq_isa).
// Counters: Gelem/s, and floor_ratio = (bytes read + written) / 40 GB/s / time: the share of
// the memory-bandwidth floor reached (1.0 = at the floor).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <functional>
#include <random>

#include "nativequant.h"

namespace {

constexpr int64_t kN = int64_t(64) << 20;
constexpr double kFloorBytesPerSec = 40e9;

// n elements in 64-byte aligned memory from nq_buffer_alloc, as the managed tensors use (the
// kernels stream large aligned outputs).
template <class T>
struct Buffer {
  T* p = nullptr;
  explicit Buffer(int64_t n) {
    void* v = nullptr;
    nq_buffer_alloc(uint64_t(n) * sizeof(T), &v);
    p = static_cast<T*>(v);
    std::fill(p, p + n, T());
  }
  ~Buffer() { nq_buffer_free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* data() { return p; }
};

struct Data {
  Buffer<float> x, y, code;
  Buffer<uint8_t> q;
  Buffer<int8_t> q8;
  Buffer<float> absmax;
  Buffer<uint16_t> h;
  Data() : x(kN), y(kN), code(256), q(kN), q8(kN), absmax(kN / 32), h(kN) {
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (int64_t i = 0; i < kN; ++i) x.p[i] = d(rng);
    nq_dynamic_map_create(1, code.data());
  }
};

Data& data() {
  static Data d;
  return d;
}

void run(benchmark::State& state, double bytes_per_elem, const std::function<nq_status(Data&)>& fn) {
  Data& d = data();
  nq_threads_set(2);
  nq_cpu_isa_set_max(static_cast<nq_isa>(state.range(0)));
  if (fn(d) != NQ_OK) state.SkipWithError(nq_last_error_message());
  for (auto _ : state) benchmark::DoNotOptimize(fn(d));
  nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16);
  const double it = static_cast<double>(state.iterations());
  state.counters["Gelem/s"] = benchmark::Counter(it * kN / 1e9, benchmark::Counter::kIsRate);
  // floor_ratio = (bytes / floor bandwidth) / seconds per iteration
  state.counters["floor_ratio"] =
      benchmark::Counter(it * kN * bytes_per_elem / kFloorBytesPerSec, benchmark::Counter::kIsRate);
}

// bytes per element: fp32 in (4) + code out (1) + absmax (4 / blocksize)
void BM_blockwise8_quantize(benchmark::State& s) {
  run(s, 5 + 4.0 / 256, [](Data& d) {
    return nq_blockwise8_quantize(d.x.data(), kN, 256, d.code.data(), d.q.data(), d.absmax.data());
  });
}
// Compute cost without memory stalls: 64K elements (256 KB, L2-resident) on one thread, CPU time.
void BM_blockwise8_quantize_l2(benchmark::State& s) {
  constexpr int64_t n = int64_t(1) << 16;
  Data& d = data();
  nq_threads_set(1);
  nq_cpu_isa_set_max(static_cast<nq_isa>(s.range(0)));
  for (auto _ : s)
    benchmark::DoNotOptimize(nq_blockwise8_quantize(d.x.data(), n, 256, d.code.data(), d.q.data(), d.absmax.data()));
  nq_cpu_isa_set_max(NQ_ISA_AVX512_BF16);
  s.counters["ns/elem"] =
      benchmark::Counter(s.iterations() * n * 1e-9, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
void BM_blockwise8_dequantize(benchmark::State& s) {
  run(s, 5 + 4.0 / 256, [](Data& d) {
    return nq_blockwise8_dequantize(d.q.data(), d.absmax.data(), kN, 256, d.code.data(), d.y.data());
  });
}
void BM_nf4_quantize(benchmark::State& s) {
  run(s, 4.5 + 4.0 / 64, [](Data& d) {
    return nq_quant4_quantize(NQ_QUANT4_NF4, d.x.data(), kN, 64, d.q.data(), d.absmax.data());
  });
}
void BM_fp4_quantize(benchmark::State& s) {
  run(s, 4.5 + 4.0 / 64, [](Data& d) {
    return nq_quant4_quantize(NQ_QUANT4_FP4, d.x.data(), kN, 64, d.q.data(), d.absmax.data());
  });
}
void BM_nf4_dequantize(benchmark::State& s) {
  run(s, 4.5 + 4.0 / 64, [](Data& d) {
    return nq_quant4_dequantize(NQ_QUANT4_NF4, d.q.data(), d.absmax.data(), kN, 64, d.y.data());
  });
}
void BM_nf4_dequantize_bf16(benchmark::State& s) {
  run(s, 2.5 + 4.0 / 64, [](Data& d) {
    return nq_quant4_dequantize_bf16(NQ_QUANT4_NF4, d.q.data(), d.absmax.data(), kN, 64, d.h.data());
  });
}
// int8 row-wise on (16384, 4096): absmax pass + scaling pass over fp32, int8 out
void BM_int8_rowwise_quantize(benchmark::State& s) {
  run(s, 5, [](Data& d) { return nq_int8_rowwise_quantize(d.x.data(), kN / 4096, 4096, d.q8.data(), d.absmax.data()); });
}
void BM_int8_rowwise_dequantize(benchmark::State& s) {
  run(s, 5, [](Data& d) {
    return nq_int8_rowwise_dequantize(d.q8.data(), d.absmax.data(), kN / 4096, 4096, d.y.data());
  });
}
void BM_int8_zeropoint_quantize(benchmark::State& s) {
  run(s, 5, [](Data& d) {
    return nq_int8_zeropoint_quantize(d.x.data(), kN / 4096, 4096, 1, d.q8.data(), d.absmax.data(), d.y.data());
  });
}

#define NQ_QUANT_BENCH(fn) BENCHMARK(fn)->Arg(NQ_ISA_SCALAR)->Arg(NQ_ISA_AVX2)->Arg(NQ_ISA_AVX512)->Unit(benchmark::kMillisecond)->UseRealTime()
NQ_QUANT_BENCH(BM_blockwise8_quantize);
BENCHMARK(BM_blockwise8_quantize_l2)->DenseRange(NQ_ISA_SCALAR, NQ_ISA_AVX512)->Unit(benchmark::kMicrosecond);
NQ_QUANT_BENCH(BM_blockwise8_dequantize);
NQ_QUANT_BENCH(BM_nf4_quantize);
NQ_QUANT_BENCH(BM_fp4_quantize);
NQ_QUANT_BENCH(BM_nf4_dequantize);
NQ_QUANT_BENCH(BM_nf4_dequantize_bf16);
NQ_QUANT_BENCH(BM_int8_rowwise_quantize);
NQ_QUANT_BENCH(BM_int8_rowwise_dequantize);
NQ_QUANT_BENCH(BM_int8_zeropoint_quantize);

}  // namespace

BENCHMARK_MAIN();
