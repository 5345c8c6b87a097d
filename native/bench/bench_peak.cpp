// Machine probes: the compute and memory floors every other benchmark is measured against.
// Instruction throughput:
// Each probe runs 12 independent accumulator chains per thread (enough to cover any of these
// instructions' latency on 2 issue ports) over register-resident operands, so the figure is the
// core's peak for that instruction and nothing else. Counters: Gops (multiply-adds x 2 per
// second, i.e. GFLOP/s or GOP/s) for 1 thread and for every OpenMP thread at once.
// Read bandwidth: every OpenMP thread streams its share of one buffer with 64-byte loads, the
// way a GEMV streams its weight; 64 MiB stays in a 260 MiB Xeon L3 (not in a 32 MiB EPYC one), 2 GiB in none.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>


namespace {

constexpr int kIters = 1 << 16;

// One probe: OPS(acc, a, b) is a single instruction updating acc from register operands.
#define NQ_PEAK_PROBE(name, isa, vec, zero, op, madds_per_insn)                               \
  __attribute__((target(isa), noinline)) double name(int64_t iters) {                         \
    vec a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero;                        \
    vec a6 = zero, a7 = zero, a8 = zero, a9 = zero, a10 = zero, a11 = zero;                      \
    vec x, y;                                                                                     \
    __asm__("" : "=v"(x), "=v"(y));                                                               \
    for (int64_t i = 0; i < iters; ++i) {                                                         \
      op(a0); op(a1); op(a2); op(a3); op(a4); op(a5);                                             \
      op(a6); op(a7); op(a8); op(a9); op(a10); op(a11);                                           \
      __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));        \
      __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));      \
    }                                                                                             \
    vec s = a0;                                                                                   \
    __asm__ volatile("" ::"v"(s), "v"(a1), "v"(a2), "v"(a3), "v"(a4), "v"(a5), "v"(a6), "v"(a7), \
                     "v"(a8), "v"(a9), "v"(a10), "v"(a11));                                       \
    return 2.0 * (madds_per_insn) * 12.0 * static_cast<double>(iters);                           \
  }

// fp32 FMA: 16 multiply-adds per zmm instruction.
#define OP_F32(acc) acc = _mm512_fmadd_ps(x, y, acc)
NQ_PEAK_PROBE(peak_fma_f32, "avx512f", __m512, _mm512_setzero_ps(), OP_F32, 16)
// bf16 dot (vdpbf16ps): 32 bf16 products summed pairwise into 16 fp32 lanes.
#define OP_BF16(acc) acc = _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)y)
NQ_PEAK_PROBE(peak_dp_bf16, "avx512f,avx512bf16", __m512, _mm512_setzero_ps(), OP_BF16, 32)
// int8 dot (vpdpbusd): 64 u8 x s8 products summed by fours into 16 int32 lanes.
#define OP_VNNI(acc) acc = _mm512_dpbusd_epi32(acc, x, y)
NQ_PEAK_PROBE(peak_dp_vnni, "avx512f,avx512vnni", __m512i, _mm512_setzero_si512(), OP_VNNI, 64)
// fp16 FMA (AVX512-FP16 vfmadd231ph): 32 multiply-adds per zmm instruction.
#define OP_F16(acc) acc = _mm512_fmadd_ph(x, y, acc)
NQ_PEAK_PROBE(peak_fma_f16, "avx512f,avx512fp16", __m512h, _mm512_setzero_ph(), OP_F16, 32)

// The AVX2 floors (the library's baseline ISA): fp32 FMA on ymm, 8 multiply-adds; the int16 pair product the
// AVX2 int8 kernel runs (vpmaddwd then vpaddd into int32 lanes), 16 multiply-adds per pair of instructions.
#define OP_F32_AVX2(acc) acc = _mm256_fmadd_ps(x, y, acc)
NQ_PEAK_PROBE(peak_fma_f32_avx2, "avx2,fma", __m256, _mm256_setzero_ps(), OP_F32_AVX2, 8)
// The product reads its accumulator (madd(x, y) alone would be hoisted out of the loop as invariant, leaving
// a probe of vpaddd); 12 chains of madd (3 cycles) + add still cover the latency.
#define OP_I16_AVX2(acc) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(acc, y))
NQ_PEAK_PROBE(peak_madd_i16_avx2, "avx2", __m256i, _mm256_setzero_si256(), OP_I16_AVX2, 16)

using Probe = double (*)(int64_t);

bool supported(int which) {
  switch (which) {
    case 0: return __builtin_cpu_supports("avx512f");
    case 1: return __builtin_cpu_supports("avx512bf16");
    case 2: return __builtin_cpu_supports("avx512vnni");
    case 3: return __builtin_cpu_supports("avx512fp16");
    case 4: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case 5: return __builtin_cpu_supports("avx2");
  }
  return false;
}

const Probe kProbes[] = {peak_fma_f32, peak_dp_bf16, peak_dp_vnni, peak_fma_f16, peak_fma_f32_avx2, peak_madd_i16_avx2};
const char* const kNames[] = {"fma_f32", "dpbf16ps", "vpdpbusd", "fma_f16", "fma_f32_ymm", "vpmaddwd_ymm"};

// range(0): probe, range(1): 1 = one thread, 0 = all OpenMP threads.
void BM_peak(benchmark::State& st) {
  const int which = static_cast<int>(st.range(0));
  if (!supported(which)) {
    st.SkipWithError("instruction not supported on this CPU");
    return;
  }
  const int threads = st.range(1) ? 1 : omp_get_max_threads();
  double ops = 0;
  for (auto _ : st) {
    double sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    sum += kProbes[which](kIters);
    ops += sum;
  }
  st.SetLabel(std::string(kNames[which]) + (threads == 1 ? " 1 thread" : " all threads"));
  st.counters["Gops"] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsRate);
  st.counters["threads"] = threads;
}

BENCHMARK(BM_peak)
    ->ArgsProduct({{0, 1, 2, 3, 4, 5}, {1, 0}})
    ->ArgNames({"probe", "one_thread"})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// 64 bytes per step either way: zmm loads, or two ymm loads on an AVX2-only CPU.
__attribute__((target("avx2"), noinline)) float read_sum_avx2(const float* p, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i < n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(p + i));
    s1 = _mm256_add_ps(s1, _mm256_load_ps(p + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(p + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float l[8];
  _mm256_store_ps(l, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}

__attribute__((target("avx512f"), noinline)) float read_sum(const float* p, int64_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i < n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_load_ps(p + i));
    s1 = _mm512_add_ps(s1, _mm512_load_ps(p + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_load_ps(p + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// range(0): buffer size in MiB.
void BM_read_bandwidth(benchmark::State& st) {
  const bool zmm = __builtin_cpu_supports("avx512f");
  const size_t bytes = static_cast<size_t>(st.range(0)) << 20;
  float* buf = static_cast<float*>(std::aligned_alloc(2 << 20, bytes));
  if (buf == nullptr) {
    st.SkipWithError("allocation failed");
    return;
  }
  madvise(buf, bytes, MADV_HUGEPAGE);
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  const int threads = omp_get_max_threads();
  // Each thread first-touches the share it later reads.
#pragma omp parallel num_threads(threads)
  {
    const int64_t per = n / threads, lo = per * omp_get_thread_num();
    for (int64_t i = lo; i < lo + per; ++i) buf[i] = 1.0f;
  }
  float sink = 0;
  for (auto _ : st) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const int64_t per = n / threads;
      sink += zmm ? read_sum(buf + per * omp_get_thread_num(), per) : read_sum_avx2(buf + per * omp_get_thread_num(), per);
    }
  }
  benchmark::DoNotOptimize(sink);
  std::free(buf);
  st.counters["GBps"] = benchmark::Counter(static_cast<double>(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = threads;
}

BENCHMARK(BM_read_bandwidth)->Arg(64)->Arg(2048)->ArgName("MiB")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
