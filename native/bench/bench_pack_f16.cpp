// NQ_COMPUTE_F16 packers alone, on the calling thread, at the QLoRA training shapes (GPT-2 small, seq 256), in
// the driver's block order (KC = 384 k, NC = 480 columns), plus the head's dX product they serve on 2 threads.
// Counters: ns_per_elem (per source element packed), GBps (source bytes read per second).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cpu/cpu.h"
#include "gemm/f16_chunk.h"
#include "gemm/quant4_f16.h"
#include "nativequant.h"
#include "bench_util.h"

namespace {

constexpr int64_t kKc = 384, kNc = 480;

void set_counters(benchmark::State& st, double elems, double bytes) {
  st.counters["ns_per_elem"] =
      benchmark::Counter(elems * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// A = activations (M, K) fp32 -> F16CA panels: every 8-row panel of each K block through PackAF16, as a thread of
// run_gemm packs them (K = 768: c_attn/c_fc forward; 2304, 3072: NF4 backward dX; 50257: the head's
// dX = dlogits W).
void BM_PackAF16(benchmark::State& st) {
  if (!nq::cpu::use_avx512fp16()) return st.SkipWithError("no AVX-512 FP16");
  const int64_t m = st.range(0), k = st.range(1);
  const auto x = randn(size_t(m * k), 1);
  const size_t panel_bytes = size_t(nq::gemm::kF16Mr * kKc * 8);
  std::vector<uint8_t> panels(size_t((m + 7) / 8) * panel_bytes);
  const nq::gemm::PackAF16 pack{x.data(), k, m};
  const nq::gemm::PackGeom g{};  // unused by PackAF16
  for (auto _ : st)
    for (int64_t pc = 0; pc < k; pc += kKc)
      for (int64_t i = 0; i < m; i += nq::gemm::kF16Mr)
        pack(panels.data() + size_t(i / 8) * panel_bytes, g, i, int(std::min<int64_t>(8, m - i)), pc,
             std::min(kKc, k - pc));
  set_counters(st, double(m * k), double(m * k) * 4);
}
BENCHMARK(BM_PackAF16)
    ->ArgsProduct({{256}, {768, 3072, 50257}})
    ->ArgNames({"M", "K"})
    ->Unit(benchmark::kMicrosecond);

// As BM_PackAF16, but A was written by another thread just before each pass, as the previous op's output is in a
// training step: its lines come from the other core's cache. Manual time: the packing only.
void BM_PackAF16Fresh(benchmark::State& st) {
  if (!nq::cpu::use_avx512fp16()) return st.SkipWithError("no AVX-512 FP16");
  const int64_t m = st.range(0), k = st.range(1);
  const auto src = randn(size_t(m * k), 1);
  std::vector<float> x(src.size());
  const size_t panel_bytes = size_t(nq::gemm::kF16Mr * kKc * 8);
  std::vector<uint8_t> panels(size_t((m + 7) / 8) * panel_bytes);
  const nq::gemm::PackAF16 pack{x.data(), k, m};
  const nq::gemm::PackGeom g{};  // unused by PackAF16
  // This thread and the writer pinned to two CPUs: unpinned, the scheduler may run both on one, and A comes from
  // this core's own cache.
  cpu_set_t all, cpu[2];
  sched_getaffinity(0, sizeof(all), &all);
  if (CPU_COUNT(&all) < 2) return st.SkipWithError("needs 2 CPUs");
  for (int c = 0, i = 0; i < 2; ++c)
    if (CPU_ISSET(c, &all)) {
      CPU_ZERO(&cpu[i]);
      CPU_SET(c, &cpu[i++]);
    }
  pthread_setaffinity_np(pthread_self(), sizeof(cpu[0]), &cpu[0]);
  std::atomic<int64_t> go{0}, done{0};  // pass number asked of the writer / written by it; -1 stops it
  std::thread writer([&] {
    pthread_setaffinity_np(pthread_self(), sizeof(cpu[1]), &cpu[1]);
    for (int64_t pass = 1;; ++pass) {
      int64_t asked;
      while ((asked = go.load(std::memory_order_acquire)) < pass)
        if (asked < 0) return;
      const float sign = pass % 2 ? 1.0f : -1.0f;  // new values each pass, not a memcpy
      for (size_t i = 0; i < x.size(); ++i) x[i] = sign * src[i];
      done.store(pass, std::memory_order_release);
    }
  });
  int64_t pass = 0;
  for (auto _ : st) {
    go.store(++pass, std::memory_order_release);
    while (done.load(std::memory_order_acquire) < pass) {
    }
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t pc = 0; pc < k; pc += kKc)
      for (int64_t i = 0; i < m; i += nq::gemm::kF16Mr)
        pack(panels.data() + size_t(i / 8) * panel_bytes, g, i, int(std::min<int64_t>(8, m - i)), pc,
             std::min(kKc, k - pc));
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  go.store(-1, std::memory_order_release);
  writer.join();
  pthread_setaffinity_np(pthread_self(), sizeof(all), &all);
  set_counters(st, double(m * k), double(m * k) * 4);
}
BENCHMARK(BM_PackAF16Fresh)
    ->ArgsProduct({{256}, {768, 3072}})
    ->ArgNames({"M", "K"})
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime();

// NF4 W (N, K), blocksize 64 -> F16C blocks: forward B(k, j) = W[j][k] (Y = X W^T), backward B(k, j) = W[k][j]
// (dX = dY W). All of W, in the driver's blocks; ns_per_elem per weight. Copies of W (64 MiB in all) rotate,
// so W comes from L3 or DRAM as in a training step (GPT-2 small's NF4 weights are 47 MB).
void BM_PackBQuant4F16(benchmark::State& st) {
  if (!nq::cpu::use_avx512fp16()) return st.SkipWithError("no AVX-512 FP16");
  const bool backward = st.range(0) != 0;
  const int64_t n = st.range(1), k = st.range(2);
  const auto wf = randn(size_t(n * k), 3);
  const int copies = int(std::max<int64_t>(1, (int64_t(64) << 20) / (n * k / 2)));
  std::vector<std::vector<uint8_t>> packed(size_t(copies), std::vector<uint8_t>(size_t(n * k / 2)));
  std::vector<std::vector<float>> absmax(size_t(copies), std::vector<float>(size_t(n * k / 64)));
  std::vector<nq_quant4_weight> w(static_cast<size_t>(copies));
  for (int c = 0; c < copies; ++c) {
    nq_quant4_quantize(NQ_QUANT4_NF4, wf.data(), n * k, 64, packed[c].data(), absmax[c].data());
    w[c].packed = packed[c].data();
    w[c].absmax = absmax[c].data();
    w[c].n = n;
    w[c].k = k;
    w[c].blocksize = 64;
    w[c].type = NQ_QUANT4_NF4;
  }
  const int64_t bk = backward ? n : k, bn = backward ? k : n;  // B is (bk, bn)
  const int64_t panel_bytes = kKc * nq::gemm::kF16Nr * 4;
  std::vector<uint8_t> block(size_t(kNc / nq::gemm::kF16Nr * panel_bytes));
  size_t c = 0;
  for (auto _ : st) {
    const nq::gemm::PackBQuant4F16 pack{w[c++ % w.size()], backward};
    for (int64_t k0 = 0; k0 < bk; k0 += kKc)
      for (int64_t n0 = 0; n0 < bn; n0 += kNc) {
        const int64_t kc = std::min(kKc, bk - k0), nc = std::min(kNc, bn - n0);
        const nq::gemm::PackGeom g{nq::gemm::kF16Nr, nq::gemm::kF16Chunk, (kc + 63) / 64 * 64, nq::gemm::kF16Nr * kKc};
        pack(block.data(), g, k0, kc, n0, nc);
      }
  }
  set_counters(st, double(n * k), double(n * k) / 2);
}
BENCHMARK(BM_PackBQuant4F16)
    ->ArgsProduct({{0, 1}, {2304, 768, 3072}, {768}})
    ->Args({0, 768, 3072})
    ->Args({1, 768, 3072})
    ->ArgNames({"bwd", "N", "K"})
    ->Unit(benchmark::kMicrosecond);

// The head's dX += dlogits W on 2 threads (fp16 compute): M = 256, N = 768, K = 50257, W (50257, 768). Its
// A (dlogits, 51 MB fp32) is larger than run_gemm's shared-A budget; CPU time of both threads.
void BM_HeadDxF16(benchmark::State& st) {
  const int64_t m = st.range(0), n = 768, k = 50257;
  const auto a = randn(size_t(m * k), 1), w = randn(size_t(k * n), 2);
  std::vector<float> c(size_t(m * n), 0.0f);
  for (auto _ : st)
    if (nq_gemm_f32_compute(0, 0, m, n, k, a.data(), w.data(), 1.0f, nullptr, NQ_COMPUTE_F16, c.data()) != NQ_OK)
      st.SkipWithError(nq_last_error_message());
  st.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(m * n * k), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_HeadDxF16)
    ->Arg(256)
    ->ArgName("M")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
