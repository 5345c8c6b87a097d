// GEMM benchmarks: fp32 / bf16 GEMM, NF4 GEMM/GEMV, LLM.int8(), forward and backward, with
// peers (OpenBLAS sgemm, oneDNN bf16/int8 matmul) measured in the same process.
// Counters: GFLOPS (2*M*N*K per second; GOPS for int8), floor_ratio (vs the machine's
// measured peak for that instruction mix), GBps for GEMV (bytes of the stored weight).
#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu.h"
#include "gemm/f16_chunk.h"
#include "gemm/gemm_f32_f16.h"
#include "gemm/ukernel.h"
#include "nativequant.h"
#include "bench_util.h"
#ifdef NQ_HAVE_OPENBLAS
#include <cblas.h>
#endif
#ifdef NQ_HAVE_DNNL
#include <dnnl.hpp>
#endif

namespace {

// Machine floors for 2 threads (Zen 5, 2 vCPU): peak FMA, VNNI and bf16 dot rates and the
// streaming bandwidth a GEMV can hope for.
constexpr double kFloorF32Gflops = 476.0;
constexpr double kFloorVnniGops = 1880.0;
constexpr double kFloorBf16Gflops = 870.0;
constexpr double kFloorGemvGBps = 40.0;
// vfmadd231ph on 2 threads, measured by bench_peak on the AVX-512 FP16 box (NQ_COMPUTE_F16).
constexpr double kFloorF16Gflops = 688.0;

double floor_for(nq_compute_type ct) {
  return ct == NQ_COMPUTE_BF16  ? kFloorBf16Gflops
         : ct == NQ_COMPUTE_F16 ? kFloorF16Gflops
         : ct == NQ_COMPUTE_INT8 ? kFloorVnniGops
                                 : kFloorF32Gflops;
}

const int64_t kMs[] = {1, 16, 256, 512};
const int64_t kNK[][2] = {{768, 768}, {3072, 768}, {768, 3072}, {4096, 4096}, {11008, 4096}};

void shapes(benchmark::internal::Benchmark* b) {
  for (int64_t m : kMs)
    for (auto& nk : kNK) b->Args({m, nk[0], nk[1]});
  b->ArgNames({"M", "N", "K"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

// QLoRA training shapes: GPT-2 small at seq 256 (c_attn, attn c_proj, c_fc, mlp c_proj, the
// tied 50257 x 768 head, c_attn's LoRA r = 8 A and B) and the M = 512 LLaMA-7B shapes.
// (N, K) of the weight W.
void train_shapes(benchmark::internal::Benchmark* b) {
  const int64_t nk[][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}, {50257, 768}, {8, 768}, {2304, 8}};
  for (auto& s : nk) b->Args({256, s[0], s[1]});
  b->Args({512, 4096, 4096})->Args({512, 11008, 4096});
  // CPU time of all threads: on a shared box it moves far less than wall time.
  b->ArgNames({"M", "N", "K"})->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
}

void set_rate(benchmark::State& st, double flops_per_iter, double floor) {
  st.counters["GFLOPS"] = benchmark::Counter(flops_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["floor_ratio"] =
      benchmark::Counter(flops_per_iter * 1e-9 / floor, benchmark::Counter::kIsIterationInvariantRate);
}

void check(nq_status s, benchmark::State& st) {
  if (s != NQ_OK) st.SkipWithError(nq_last_error_message());
}

// fp32 forward Y = X W^T, or backward dX += dY W (as the autograd's linear backward calls it).
void gemm_f32_bench(benchmark::State& st, bool backward) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = randn(size_t(m * (backward ? n : k)), 1), w = randn(size_t(n * k), 2);
  std::vector<float> y(size_t(m * (backward ? k : n)));
  for (auto _ : st)
    check(backward ? nq_gemm_f32(0, 0, m, k, n, x.data(), w.data(), 1.0f, nullptr, y.data())
                   : nq_gemm_f32(0, 1, m, n, k, x.data(), w.data(), 0.0f, nullptr, y.data()),
          st);
  set_rate(st, 2.0 * m * n * k, kFloorF32Gflops);
}
void BM_GemmF32(benchmark::State& st) { gemm_f32_bench(st, false); }
BENCHMARK(BM_GemmF32)->Apply(shapes);
BENCHMARK_CAPTURE(gemm_f32_bench, train_fwd, false)->Apply(train_shapes);
BENCHMARK_CAPTURE(gemm_f32_bench, train_bwd, true)->Apply(train_shapes);

// Y = X W^T with bf16 inputs.
void BM_GemmBf16(benchmark::State& st) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  std::vector<uint16_t> x(size_t(m * k), 0x3f80), w(size_t(n * k), 0x3f00);
  std::vector<float> y(size_t(m * n));
  for (auto _ : st) check(nq_gemm_bf16(0, 1, m, n, k, x.data(), w.data(), 0.0f, nullptr, y.data()), st);
  set_rate(st, 2.0 * m * n * k, kFloorBf16Gflops);
}
BENCHMARK(BM_GemmBf16)->Apply(shapes);

// An NF4 weight (blocksize 64, plain absmax) quantized by the library; `copies` distinct
// copies let GEMV benchmarks stream weights larger than the last-level cache.
// double_quant: absmax compressed as bitsandbytes' compress_statistics (8-bit codes, nested
// blocks of 256).
struct Nf4Weights {
  std::vector<std::vector<uint8_t>> packed, absmax_q;
  std::vector<std::vector<float>> absmax, nested;
  std::vector<float> dyn_code = std::vector<float>(256);
  std::vector<nq_quant4_weight> w;
  Nf4Weights(int64_t n, int64_t k, int copies, bool double_quant = false) {
    const auto wf = randn(size_t(n * k), 3);
    const int64_t blocks = n * k / 64;
    nq_dynamic_map_create(1, dyn_code.data());
    packed.resize(size_t(copies));
    absmax.resize(size_t(copies));
    absmax_q.resize(size_t(copies));
    nested.resize(size_t(copies));
    for (int c = 0; c < copies; ++c) {
      packed[c].resize(size_t(n * k / 2));
      absmax[c].resize(size_t(blocks));
      nq_quant4_quantize(NQ_QUANT4_NF4, wf.data(), n * k, 64, packed[c].data(), absmax[c].data());
      nq_quant4_weight q{};
      q.packed = packed[c].data();
      q.absmax = absmax[c].data();
      q.n = n;
      q.k = k;
      q.blocksize = 64;
      q.type = NQ_QUANT4_NF4;
      if (double_quant) {
        absmax_q[c].resize(size_t(blocks));
        nested[c].resize(size_t((blocks + 255) / 256));
        nq_absmax_compress(absmax[c].data(), blocks, 256, dyn_code.data(), absmax_q[c].data(), nested[c].data(),
                           &q.nested_offset);
        q.absmax = nullptr;
        q.absmax_q = absmax_q[c].data();
        q.nested_absmax = nested[c].data();
        q.nested_code = dyn_code.data();
        q.nested_blocksize = 256;
      }
      w.push_back(q);
    }
  }
};

// Enough copies that one pass over all of them exceeds a 32 MiB L3.
int copies_for(int64_t n, int64_t k) { return int(std::max<int64_t>(1, (int64_t(96) << 20) / (n * k / 2))); }

void BM_Nf4Gemm(benchmark::State& st, nq_compute_type ct) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  Nf4Weights q(n, k, m <= 4 ? copies_for(n, k) : 1);
  auto x = randn(size_t(m * k), 1);
  std::vector<float> y(size_t(m * n));
  size_t c = 0;
  for (auto _ : st) check(nq_quant4_gemm(x.data(), m, &q.w[c++ % q.w.size()], nullptr, ct, y.data()), st);
  set_rate(st, 2.0 * m * n * k, floor_for(ct));
  if (m <= 4) {
    const double bytes = double(n) * k / 2 + double(n) * k / 64 * 4;
    st.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["bw_ratio"] = benchmark::Counter(bytes * 1e-9 / kFloorGemvGBps, benchmark::Counter::kIsIterationInvariantRate);
  }
}
BENCHMARK_CAPTURE(BM_Nf4Gemm, bf16, NQ_COMPUTE_BF16)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Nf4Gemm, f32, NQ_COMPUTE_F32)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Nf4Gemm, f32_train, NQ_COMPUTE_F32)->Apply(train_shapes);
BENCHMARK_CAPTURE(BM_Nf4Gemm, f16_train, NQ_COMPUTE_F16)->Apply(train_shapes);
BENCHMARK_CAPTURE(BM_Nf4Gemm, int8_train, NQ_COMPUTE_INT8)->Apply(train_shapes);

// Decode-shaped NF4 GEMV (M = 1, 4; fp32 compute) at stories15M, GPT-2 and LLaMA-7B shapes,
// with plain and double-quantized absmax; GBps counts the stored bytes (codes + absmax).
// Copies of W rotate so that every call streams W from L3 or DRAM, as in decoding.
void BM_Nf4Gemv(benchmark::State& st) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  const bool dq = st.range(3) != 0;
  Nf4Weights q(n, k, copies_for(n, k), dq);
  auto x = randn(size_t(m * k), 1);
  std::vector<float> y(size_t(m * n));
  size_t c = 0;
  for (auto _ : st) check(nq_quant4_gemm(x.data(), m, &q.w[c++ % q.w.size()], nullptr, NQ_COMPUTE_F32, y.data()), st);
  const double bytes = double(n) * k / 2 + double(n) * k / 64 * (dq ? 1 : 4);
  st.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Nf4Gemv)->Apply([](benchmark::internal::Benchmark* b) {
  const int64_t nk[][2] = {{32000, 288}, {288, 288}, {768, 288}, {288, 768},
                           {2304, 768},  {768, 3072}, {11008, 4096}};
  for (int64_t m : {1, 4})
    for (int64_t dq : {0, 1})
      for (auto& s : nk) b->Args({m, s[0], s[1], dq});
  b->ArgNames({"M", "N", "K", "dq"})->Unit(benchmark::kMicrosecond)->UseRealTime();
});

void BM_Nf4Backward(benchmark::State& st, nq_compute_type ct) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  Nf4Weights q(n, k, 1);
  auto dy = randn(size_t(m * n), 1);
  std::vector<float> dx(size_t(m * k));
  for (auto _ : st) check(nq_quant4_gemm_backward(dy.data(), m, &q.w[0], ct, 0.0f, dx.data()), st);
  set_rate(st, 2.0 * m * n * k, floor_for(ct));
}
BENCHMARK_CAPTURE(BM_Nf4Backward, bf16, NQ_COMPUTE_BF16)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Nf4Backward, f32_train, NQ_COMPUTE_F32)->Apply(train_shapes);
BENCHMARK_CAPTURE(BM_Nf4Backward, f16_train, NQ_COMPUTE_F16)->Apply(train_shapes);
BENCHMARK_CAPTURE(BM_Nf4Backward, int8_train, NQ_COMPUTE_INT8)->Apply(train_shapes);

// LLM.int8() with 0.1% planted outlier columns (|x| = 20) at threshold 6.
void BM_Int8Matmul(benchmark::State& st) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = randn(size_t(m * k), 1), wf = randn(size_t(n * k), 2);
  for (int64_t c = 0; c < k; c += 1000)
    for (int64_t i = 0; i < m; ++i) x[size_t(i * k + c)] = 20.0f;
  std::vector<int8_t> w(size_t(n * k));
  std::vector<float> scb(static_cast<size_t>(n)), y(size_t(m * n));
  nq_int8_rowwise_quantize(wf.data(), n, k, w.data(), scb.data());
  std::vector<int32_t> cols(static_cast<size_t>(k));
  int64_t count = 0;
  for (auto _ : st)
    check(nq_int8_matmul(x.data(), m, k, w.data(), scb.data(), n, 6.0f, nullptr, NQ_COMPUTE_BF16, y.data(),
                         cols.data(), k, &count),
          st);
  set_rate(st, 2.0 * m * n * k, kFloorVnniGops);
  st.counters["outliers"] = double(count);
}
BENCHMARK(BM_Int8Matmul)->Apply(shapes);

void BM_Int8Backward(benchmark::State& st, nq_compute_type ct) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto dy = randn(size_t(m * n), 1), wf = randn(size_t(n * k), 2);
  std::vector<int8_t> w(size_t(n * k));
  std::vector<float> scb(static_cast<size_t>(n)), dx(size_t(m * k));
  nq_int8_rowwise_quantize(wf.data(), n, k, w.data(), scb.data());
  for (auto _ : st)
    check(nq_int8_matmul_backward(dy.data(), m, n, w.data(), scb.data(), k, ct, 0.0f, dx.data()), st);
  set_rate(st, 2.0 * m * n * k, ct == NQ_COMPUTE_INT8 ? kFloorVnniGops : kFloorBf16Gflops);
}
BENCHMARK_CAPTURE(BM_Int8Backward, bf16, NQ_COMPUTE_BF16)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Int8Backward, int8, NQ_COMPUTE_INT8)->Apply(shapes);

double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// LLM.int8() forward (as BM_Int8Matmul) and the backward dX = dY W (beta = 1, as the autograd
// accumulates) alternated inside every iteration, so load on a shared box hits both alike.
// Counters: each one's GOPS (wall) and backward / forward time, by wall and by process CPU time.
void BM_Int8TrainPair(benchmark::State& st, nq_compute_type ct) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = randn(size_t(m * k), 1), wf = randn(size_t(n * k), 2), dy = randn(size_t(m * n), 3);
  for (int64_t c = 0; c < k; c += 1000)
    for (int64_t i = 0; i < m; ++i) x[size_t(i * k + c)] = 20.0f;
  std::vector<int8_t> w(size_t(n * k));
  std::vector<float> scb(static_cast<size_t>(n)), y(size_t(m * n)), dx(size_t(m * k));
  nq_int8_rowwise_quantize(wf.data(), n, k, w.data(), scb.data());
  std::vector<int32_t> cols(static_cast<size_t>(k));
  int64_t count = 0;
  double wall[2] = {0, 0}, cpu[2] = {0, 0};
  for (auto _ : st) {
    const auto w0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_seconds();
    check(nq_int8_matmul(x.data(), m, k, w.data(), scb.data(), n, 6.0f, nullptr, NQ_COMPUTE_BF16, y.data(),
                         cols.data(), k, &count),
          st);
    const auto w1 = std::chrono::steady_clock::now();
    const double c1 = process_cpu_seconds();
    check(nq_int8_matmul_backward(dy.data(), m, n, w.data(), scb.data(), k, ct, 1.0f, dx.data()), st);
    const auto w2 = std::chrono::steady_clock::now();
    const double c2 = process_cpu_seconds();
    wall[0] += std::chrono::duration<double>(w1 - w0).count();
    wall[1] += std::chrono::duration<double>(w2 - w1).count();
    cpu[0] += c1 - c0;
    cpu[1] += c2 - c1;
  }
  const double ops = 2.0 * m * n * k * double(st.iterations());
  st.counters["fwd_GOPS"] = ops * 1e-9 / wall[0];
  st.counters["bwd_GOPS"] = ops * 1e-9 / wall[1];
  st.counters["bwd_fwd_wall"] = wall[1] / wall[0];
  st.counters["bwd_fwd_cpu"] = cpu[1] / cpu[0];
}
void int8_train_shapes(benchmark::internal::Benchmark* b) {
  const int64_t nk[][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};
  for (auto& s : nk) b->Args({256, s[0], s[1]});
  b->Args({512, 4096, 4096});
  b->ArgNames({"M", "N", "K"})->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
}
BENCHMARK_CAPTURE(BM_Int8TrainPair, int8, NQ_COMPUTE_INT8)->Apply(int8_train_shapes);
BENCHMARK_CAPTURE(BM_Int8TrainPair, bf16, NQ_COMPUTE_BF16)->Apply(int8_train_shapes);

#ifdef NQ_HAVE_OPENBLAS
// Same products as gemm_f32_bench.
void openblas_bench(benchmark::State& st, bool backward) {
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  auto x = randn(size_t(m * (backward ? n : k)), 1), w = randn(size_t(n * k), 2);
  std::vector<float> y(size_t(m * (backward ? k : n)));
  int32_t threads = 1;
  nq_threads_get(&threads);
  openblas_set_num_threads(threads);
  for (auto _ : st) {
    if (backward)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(k), int(n), 1.0f, x.data(), int(n),
                  w.data(), int(k), 1.0f, y.data(), int(k));
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data(), int(k),
                  w.data(), int(k), 0.0f, y.data(), int(n));
  }
  set_rate(st, 2.0 * m * n * k, kFloorF32Gflops);
  // OpenBLAS 0.3.21 (Debian 12) detects Zen 5 as "Prescott" (SSE3 kernels); run with
  // OPENBLAS_CORETYPE=SkylakeX for a fair peer. The label records which kernel ran.
  st.SetLabel(openblas_get_corename());
}
void BM_OpenBlasSgemm(benchmark::State& st) { openblas_bench(st, false); }
BENCHMARK(BM_OpenBlasSgemm)->Apply(shapes);
BENCHMARK_CAPTURE(openblas_bench, train_fwd, false)->Apply(train_shapes);
BENCHMARK_CAPTURE(openblas_bench, train_bwd, true)->Apply(train_shapes);

// Ours vs OpenBLAS sgemm on the same operands, both called inside every iteration (order flipped each
// iteration, so load on a shared box and cache warmth hit both alike). The three products of a Linear
// layer with X (M,K), W (N,K), dY (M,N):
//   V = 0 forward  Y = X W^T     (NT, beta 0)
//   V = 1 input    dX += dY W    (NN, beta 1)
//   V = 2 weight   dW += dY^T X  (TN, beta 1; the product's K is the batch M)
// Counters: each side's GFLOPS by wall time, ratio = OpenBLAS time / ours (issue 3: >= 0.95), ratio_cpu,
// ratio_best. Run with OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4 OPENBLAS_CORETYPE=SkylakeX: by
// default OpenBLAS's idle workers spin ~0.1 s after each call and halve our next call on 2 vCPUs.
void BM_F32VsOpenBlas(benchmark::State& st) {
  const int v = int(st.range(0));
  const int64_t m = st.range(1), n = st.range(2), k = st.range(3);
  const int ta = v == 2, tb = v == 0;
  const int64_t pm = v == 2 ? n : m, pn = v == 0 ? n : k, pk = v == 0 ? k : v == 1 ? n : m;
  const float beta = v == 0 ? 0.0f : 1.0f;
  auto a = randn(size_t(pm * pk), 1), b = randn(size_t(pn * pk), 2);
  std::vector<float> c(size_t(pm * pn), 0.0f);
  int32_t threads = 1;
  nq_threads_get(&threads);
  openblas_set_num_threads(threads);
  const auto ours = [&] { check(nq_gemm_f32(ta, tb, pm, pn, pk, a.data(), b.data(), beta, nullptr, c.data()), st); };
  const auto blas = [&] {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(pm), int(pn),
                int(pk), 1.0f, a.data(), int(ta ? pm : pk), b.data(), int(tb ? pk : pn), beta, c.data(), int(pn));
  };
  double t[2] = {0, 0}, cpu[2] = {0, 0}, best[2] = {1e30, 1e30};
  int64_t it = 0;
  for (auto _ : st) {
    for (int s = 0; s < 2; ++s) {
      const int side = (s + int(it & 1)) & 1;
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = process_cpu_seconds();
      side == 0 ? ours() : blas();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      t[side] += dt;
      best[side] = std::min(best[side], dt);
      cpu[side] += process_cpu_seconds() - c0;
    }
    ++it;
  }
  const double flops = 2.0 * double(m) * double(n) * double(k) * double(st.iterations());
  st.counters["ours_GFLOPS"] = flops * 1e-9 / t[0];
  st.counters["blas_GFLOPS"] = flops * 1e-9 / t[1];
  st.counters["ratio"] = t[1] / t[0];
  // CPU seconds of all threads (run with OMP_WAIT_POLICY=passive OPENBLAS_THREAD_TIMEOUT=4 so neither
  // side's idle workers spin): the work each side does, which a loaded box distorts far less.
  st.counters["ratio_cpu"] = cpu[1] / cpu[0];
  // Fastest call of each: the least disturbed estimate when other processes share the cores.
  st.counters["ratio_best"] = best[1] / best[0];
  st.SetLabel(openblas_get_corename());
}
BENCHMARK(BM_F32VsOpenBlas)->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t v : {0, 1, 2})
    for (int64_t m : kMs)
      for (auto& nk : kNK) b->Args({v, m, nk[0], nk[1]});
  b->ArgNames({"V", "M", "N", "K"})->Unit(benchmark::kMillisecond)->UseRealTime();
});
#endif

// Gaussian floats in an nq_buffer_alloc buffer: on huge pages, like the engine's tensors (the head's W is 154 MB
// read with 3 KiB strides).
struct NqFloats {
  float* p = nullptr;
  explicit NqFloats(size_t n, uint64_t seed) {
    void* raw = nullptr;
    if (nq_buffer_alloc(n * sizeof(float), &raw) != NQ_OK) throw std::bad_alloc();
    p = static_cast<float*>(raw);
    const auto v = randn(n, seed);
    std::memcpy(p, v.data(), n * sizeof(float));
  }
  ~NqFloats() { nq_buffer_free(p); }
  NqFloats(const NqFloats&) = delete;
  NqFloats& operator=(const NqFloats&) = delete;
};

// Every side once per benchmark iteration, in an order rotated each iteration so load and cache warmth hit them
// alike: time[s] = side s's total seconds, best[s] its fastest call.
void time_sides(benchmark::State& st, const std::vector<std::function<void()>>& sides, std::vector<double>& time,
                std::vector<double>& best) {
  const size_t ns = sides.size();
  time.assign(ns, 0.0);
  best.assign(ns, 1e30);
  size_t it = 0;
  for (auto _ : st) {
    for (size_t s = 0; s < ns; ++s) {
      const size_t side = (s + it) % ns;
      const auto t0 = std::chrono::steady_clock::now();
      sides[side]();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      time[side] += dt;
      best[side] = std::min(best[side], dt);
    }
    ++it;
  }
}

// The tied fp32 LM head of QLoRA training (GPT-2 small; Functional.LinearCrossEntropy runs it on chunks of
// 64 rows): V = 0 logits = X W^T (NT, beta 0), V = 1 dX += dlogits W (NN, beta 1), W (50257, 768).
// nq_gemm_f32_compute with NQ_COMPUTE_F16 vs NQ_COMPUTE_F32 (vs OpenBLAS sgemm when built with it), all
// called in every iteration in rotating order so load and cache warmth hit them alike. Counters: GFLOPS of
// each by wall time, f16_speedup = F32 time / F16 time, f16_speedup_best from each side's fastest call.
void BM_HeadF16(benchmark::State& st) {
  const int v = int(st.range(0));
  const int64_t m = st.range(1), vocab = 50257, width = 768;
  const int64_t n = v == 0 ? vocab : width, k = v == 0 ? width : vocab;
  const float beta = v == 0 ? 0.0f : 1.0f;
  const NqFloats a(size_t(m * k), 1), w(size_t(vocab * width), 2), c(size_t(m * n), 3);
  const auto ours = [&](nq_compute_type ct) {
    check(nq_gemm_f32_compute(0, v == 0, m, n, k, a.p, w.p, beta, nullptr, ct, c.p), st);
  };
  std::vector<std::function<void()>> sides = {[&] { ours(NQ_COMPUTE_F16); }, [&] { ours(NQ_COMPUTE_F32); }};
  const char* names[] = {"f16", "f32", "blas"};
#ifdef NQ_HAVE_OPENBLAS
  int32_t threads = 1;
  nq_threads_get(&threads);
  openblas_set_num_threads(threads);
  sides.push_back([&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, v == 0 ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f, a.p,
                int(k), w.p, int(v == 0 ? k : n), beta, c.p, int(n));
  });
  st.SetLabel(openblas_get_corename());
#endif
  const size_t ns = sides.size();
  std::vector<double> t, best;
  time_sides(st, sides, t, best);
  const double flops = 2.0 * double(m) * double(n) * double(k) * double(st.iterations());
  for (size_t s = 0; s < ns; ++s) st.counters[std::string(names[s]) + "_GFLOPS"] = flops * 1e-9 / t[s];
  st.counters["f16_speedup"] = t[1] / t[0];
  st.counters["f16_speedup_best"] = best[1] / best[0];
}
BENCHMARK(BM_HeadF16)
    ->ArgsProduct({{0, 1}, {64, 256}})
    ->ArgNames({"V", "M"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The tied head with its loss, as a training step runs it (GPT-2 small: 256 rows, W (50257, 768), fp16
// compute): fused = nq_linear_cross_entropy (logits one 384-entry block at a time, W read once), unfused =
// logits = X W^T, nq_cross_entropy_rows over the rows in place, dX = dlogits W (what the step ran before), and
// the fused op with W packed once. All run in every iteration in rotating order; counters: each side's GFLOPS
// (the two products' 4 n V C) by wall time, fused_speedup = unfused time / fused time (total and best of each
// side's calls), packed_speedup = fused time / packed time.
void BM_HeadLoss(benchmark::State& st) {
  const auto ct = static_cast<nq_compute_type>(st.range(0));
  const int64_t n = 256, vocab = 50257, width = 768;
  const NqFloats x(size_t(n * width), 1), w(size_t(vocab * width), 2), logits(size_t(n * vocab), 3), dx(size_t(n * width), 4);
  // w ~ N(0, 0.1^2) like a trained embedding: logits of std ~2.8. N(0, 1) would put them at std 28, where most
  // softmax weights are fp32 subnormals and the fp32 products crawl through microcode assists.
  for (size_t i = 0; i < size_t(vocab * width); ++i) w.p[i] *= 0.1f;
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::mt19937_64 rng(5);
  for (auto& e : t) e = int32_t(rng() % uint64_t(vocab));
  std::vector<double> nll(static_cast<size_t>(n));
  const float scale = 1.0f / float(n);
  // W packed once (a frozen head, nq_linear_cross_entropy_pack) where that applies (F16 on AVX512-FP16).
  uint64_t pack_bytes = 0;
  check(nq_linear_cross_entropy_pack_bytes(vocab, width, ct, &pack_bytes), st);
  void* packed = nullptr;
  if (pack_bytes > 0) {
    check(nq_buffer_alloc(pack_bytes, &packed), st);
    check(nq_linear_cross_entropy_pack(w.p, vocab, width, ct, packed, pack_bytes), st);
  }
  const std::vector<std::function<void()>> sides = {
      [&] { check(nq_linear_cross_entropy(x.p, n, width, w.p, nullptr, vocab, t.data(), -100, scale, ct, nll.data(), dx.p), st); },
      [&] {
        check(nq_gemm_f32_compute(0, 1, n, vocab, width, x.p, w.p, 0.0f, nullptr, ct, logits.p), st);
        const int nt = nq::cpu::num_threads();
#pragma omp parallel for num_threads(nt)
        for (int64_t r = 0; r < n; ++r)
          nq_cross_entropy_rows(logits.p + r * vocab, 1, vocab, t.data() + r, -100, scale, nll.data() + r);
        check(nq_gemm_f32_compute(0, 0, n, width, vocab, logits.p, w.p, 0.0f, nullptr, ct, dx.p), st);
      },
      [&] { check(nq_linear_cross_entropy(x.p, n, width, w.p, packed, vocab, t.data(), -100, scale, ct, nll.data(), dx.p), st); }};
  std::vector<double> time, best;
  time_sides(st, sides, time, best);
  const double flops = 4.0 * double(n) * double(vocab) * double(width) * double(st.iterations());
  st.counters["fused_GFLOPS"] = flops * 1e-9 / time[0];
  st.counters["unfused_GFLOPS"] = flops * 1e-9 / time[1];
  st.counters["fused_speedup"] = time[1] / time[0];
  st.counters["fused_speedup_best"] = best[1] / best[0];
  st.counters["packed_GFLOPS"] = flops * 1e-9 / time[2];  // = fused where packing does not apply
  st.counters["packed_speedup"] = time[0] / time[2];
  nq_buffer_free(packed);
}
BENCHMARK(BM_HeadLoss)->Arg(NQ_COMPUTE_F16)->Arg(NQ_COMPUTE_F32)->ArgName("compute")->Unit(benchmark::kMillisecond)->UseRealTime();

// The F16 head's B packing alone, on the calling thread: all of W in the driver's blocks (KC = 384, NC = 480),
// as one F16 head call packs it (2 threads each pack half). V = 0: W read as B stored (N, K) (16x16
// transposes); V = 1: B stored (K, N). GBps = bytes of W read per second.
void BM_HeadF16PackB(benchmark::State& st) {
  if (!nq::cpu::use_avx512fp16()) return st.SkipWithError("no AVX-512 FP16");
  const bool trans = st.range(0) == 0;
  const int64_t vocab = 50257, width = 768, kc_max = 384, nc_max = 480;
  const int64_t n = trans ? vocab : width, k = trans ? width : vocab;
  const NqFloats w(size_t(vocab * width), 2);
  const int64_t panel_bytes = kc_max * 96 * 4;
  std::vector<uint8_t> block(size_t(nc_max / 96 * panel_bytes));
  for (auto _ : st)
    for (int64_t k0 = 0; k0 < k; k0 += kc_max)
      for (int64_t n0 = 0; n0 < n; n0 += nc_max)
        nq::gemm::pack_b_f32_f16_avx512fp16(trans ? w.p + n0 * k + k0 : w.p + k0 * n + n0, trans ? k : n,
                                            trans, block.data(), panel_bytes, std::min(kc_max, k - k0),
                                            std::min(nc_max, n - n0));
  st.counters["GBps"] =
      benchmark::Counter(double(vocab * width) * 4e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_HeadF16PackB)->Arg(0)->Arg(1)->ArgName("V")->Unit(benchmark::kMillisecond)->UseRealTime();

// The fp16 micro-kernel alone, on the calling thread, in run_gemm's loop nest and tile order (K blocks of
// 384, B blocks of 480 columns, 8-row panels, 96-column tiles into a C of M x N): A packed per K block and
// one B block reused (it sits in L2 as a freshly packed block would), so no packing is timed. Full tiles only
// (N a multiple of 96, M of 8). GPT-2 training shapes: forward N x K and the backward dX (N = 768); the head
// (50208 ~ 50257 columns, 64-row chunks as LinearCrossEntropy runs it) and its dX (K = 50240).
void BM_F16Ukernel(benchmark::State& st) {
  namespace g = nq::gemm;
  if (!nq::cpu::use_avx512fp16()) return st.SkipWithError("no AVX-512 FP16");
  const g::Ukernel& uk = g::kUkF16Avx512;
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2), kc_max = g::kc_for(uk), nc_max = g::nc_for(uk);
  const int64_t k_blocks = (k + kc_max - 1) / kc_max, m_tiles = m / g::kF16Mr;
  const int64_t a_panel = kc_max / g::kF16Chunk * g::kF16AChunkBytes, b_panel = kc_max / g::kF16Chunk * g::kF16BChunkBytes;
  std::vector<uint8_t> a(size_t(k_blocks * m_tiles * a_panel)), b(size_t(nc_max / g::kF16Nr * b_panel));
  const auto x = randn(size_t(m * k), 1), y = randn(b.size() / 2, 2);
  for (int64_t pc = 0; pc < k_blocks; ++pc)
    for (int64_t t = 0; t < m_tiles; ++t)
      g::pack_a_f16_avx512fp16(x.data() + t * g::kF16Mr * k + pc * kc_max, k, g::kF16Mr,
                               std::min(kc_max, k - pc * kc_max), a.data() + (pc * m_tiles + t) * a_panel);
  for (size_t c = 0; c < b.size() / g::kF16BChunkBytes; ++c) {  // fp16 values in (-1, 1), scales ~ 2^-3
    uint8_t* chunk = b.data() + c * g::kF16BChunkBytes;
    for (int64_t i = 0; i < g::kF16Chunk * g::kF16Nr; ++i) {
      const uint16_t v = g::f16_bits(std::tanh(y[c * g::kF16Chunk * g::kF16Nr + size_t(i)]));
      std::memcpy(chunk + 2 * i, &v, 2);
    }
    for (int j = 0; j < g::kF16Nr; ++j) {
      const float s = g::pow2f(-3 - j % 3);
      std::memcpy(chunk + g::kF16BScaleOffset + 4 * j, &s, 4);
    }
  }
  std::vector<float> c(size_t(m * n));
  for (auto _ : st)
    for (int64_t pc = 0; pc < k_blocks; ++pc) {
      const int64_t groups = g::chunks_of(std::min(kc_max, k - pc * kc_max));
      for (int64_t jc = 0; jc < n; jc += nc_max)
        for (int64_t t = 0; t < m_tiles; ++t)
          for (int64_t j = jc; j < std::min(n, jc + nc_max); j += g::kF16Nr)
            uk.run(groups, a.data() + (pc * m_tiles + t) * a_panel, b.data() + (j - jc) / g::kF16Nr * b_panel,
                   c.data() + t * g::kF16Mr * n + j, n, pc > 0);
    }
  benchmark::DoNotOptimize(c.data());
  set_rate(st, 2.0 * m * n * k, kFloorF16Gflops / 2);
}
BENCHMARK(BM_F16Ukernel)
    ->Args({256, 2304, 768})->Args({256, 768, 768})->Args({256, 3072, 768})->Args({256, 768, 3072})
    ->Args({256, 768, 2304})->Args({64, 50208, 768})->Args({64, 768, 50240})
    ->ArgNames({"M", "N", "K"})->Unit(benchmark::kMillisecond)->UseRealTime();

#ifdef NQ_HAVE_DNNL
// oneDNN matmul Y = X W^T (W stored (N,K) row-major = (K,N) with tag ba) in bf16 -> f32 or
// u8 x s8 -> f32 (raw int product; no scales, so a lower bound on its LLM.int8() cost).
void BM_OneDnnMatmul(benchmark::State& st, dnnl::memory::data_type src_dt, dnnl::memory::data_type w_dt,
                     double floor) {
  using namespace dnnl;
  const int64_t m = st.range(0), n = st.range(1), k = st.range(2);
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::desc a_md({m, k}, src_dt, memory::format_tag::ab), b_md({k, n}, w_dt, memory::format_tag::ba),
      c_md({m, n}, memory::data_type::f32, memory::format_tag::ab);
  const matmul::primitive_desc pd(matmul::desc(a_md, b_md, c_md), eng);
  memory a(a_md, eng), b(b_md, eng), c(c_md, eng);
  std::memset(a.get_data_handle(), 0x3c, a_md.get_size());
  std::memset(b.get_data_handle(), 0x1c, b_md.get_size());
  matmul prim(pd);
  for (auto _ : st) {
    prim.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    strm.wait();
  }
  set_rate(st, 2.0 * m * n * k, floor);
}
BENCHMARK_CAPTURE(BM_OneDnnMatmul, bf16, dnnl::memory::data_type::bf16, dnnl::memory::data_type::bf16,
                  kFloorBf16Gflops)
    ->Apply(shapes);
BENCHMARK_CAPTURE(BM_OneDnnMatmul, u8s8, dnnl::memory::data_type::u8, dnnl::memory::data_type::s8, kFloorVnniGops)
    ->Apply(shapes);
BENCHMARK_CAPTURE(BM_OneDnnMatmul, f32, dnnl::memory::data_type::f32, dnnl::memory::data_type::f32, kFloorF32Gflops)
    ->Apply(shapes);
#endif

}  // namespace

BENCHMARK_MAIN();
