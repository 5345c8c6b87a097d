#include "cpu/cpu.h"

#include <atomic>
#include <cpuid.h>
#include <omp.h>

#include "core/error.h"

namespace nq::cpu {
namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

uint32_t detect() {
  uint32_t a, b, c, d, f = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const bool osxsave = c & (1u << 27);
  if (!osxsave) return 0;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_ok = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
  const bool zmm_ok = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!ymm_ok) return 0;
  if (c & (1u << 12)) f |= NQ_CPU_FMA;
  if (c & (1u << 29)) f |= NQ_CPU_F16C;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  if (b & (1u << 5)) f |= NQ_CPU_AVX2;
  if (zmm_ok) {
    if (b & (1u << 16)) f |= NQ_CPU_AVX512F;
    if (b & (1u << 17)) f |= NQ_CPU_AVX512DQ;
    if (b & (1u << 30)) f |= NQ_CPU_AVX512BW;
    if (b & (1u << 31)) f |= NQ_CPU_AVX512VL;
    if (c & (1u << 11)) f |= NQ_CPU_AVX512VNNI;
    if (d & (1u << 23)) f |= NQ_CPU_AVX512FP16;  // zmm state checked above (zmm_ok)
    __cpuid_count(7, 1, a, b, c, d);
    if (a & (1u << 5)) f |= NQ_CPU_AVX512BF16;
  }
  return f;
}

nq_isa level_of(uint32_t f) {
  const uint32_t avx2 = NQ_CPU_AVX2 | NQ_CPU_FMA | NQ_CPU_F16C;
  const uint32_t avx512 = NQ_CPU_AVX512F | NQ_CPU_AVX512BW | NQ_CPU_AVX512VL | NQ_CPU_AVX512DQ;
  if ((f & avx2) != avx2) return NQ_ISA_SCALAR;
  if ((f & avx512) != avx512) return NQ_ISA_AVX2;
  if (!(f & NQ_CPU_AVX512VNNI)) return NQ_ISA_AVX512;
  if (!(f & NQ_CPU_AVX512BF16)) return NQ_ISA_AVX512_VNNI;
  return NQ_ISA_AVX512_BF16;
}

std::atomic<int> g_cap{NQ_ISA_AVX512_BF16};
std::atomic<int> g_threads{0};  // 0 = not yet chosen

}  // namespace

uint32_t features() {
  static const uint32_t f = detect();
  return f;
}

nq_isa supported_isa() {
  static const nq_isa level = level_of(features());
  return level;
}

nq_isa active_isa() {
  const int cap = g_cap.load(std::memory_order_relaxed);
  const int sup = supported_isa();
  return static_cast<nq_isa>(cap < sup ? cap : sup);
}

int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = omp_get_max_threads();
    if (n < 1) n = 1;
    g_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

}  // namespace nq::cpu

extern "C" {

NQ_API nq_status nq_cpu_features_get(uint32_t* out_features) {
  NQ_CHECK_NOT_NULL("nq_cpu_features_get", out_features);
  *out_features = nq::cpu::features();
  return NQ_OK;
}

NQ_API nq_status nq_cpu_isa_supported(nq_isa* out_isa) {
  NQ_CHECK_NOT_NULL("nq_cpu_isa_supported", out_isa);
  *out_isa = nq::cpu::supported_isa();
  return NQ_OK;
}

NQ_API nq_status nq_cpu_isa_set_max(nq_isa isa) {
  NQ_CHECK(isa >= NQ_ISA_SCALAR && isa <= NQ_ISA_AVX512_BF16, NQ_ERR_INVALID_ARGUMENT,
           "nq_cpu_isa_set_max: argument 'isa' must be 0..4 (NQ_ISA_SCALAR..NQ_ISA_AVX512_BF16), got %d",
           static_cast<int>(isa));
  nq::cpu::g_cap.store(isa);
  return NQ_OK;
}

NQ_API nq_status nq_cpu_isa_get(nq_isa* out_isa) {
  NQ_CHECK_NOT_NULL("nq_cpu_isa_get", out_isa);
  *out_isa = nq::cpu::active_isa();
  return NQ_OK;
}

NQ_API nq_status nq_threads_set(int32_t num_threads) {
  NQ_CHECK(num_threads >= 1 && num_threads <= 4096, NQ_ERR_INVALID_ARGUMENT,
           "nq_threads_set: argument 'num_threads' must be in 1..4096, got %d", num_threads);
  nq::cpu::g_threads.store(num_threads);
  return NQ_OK;
}

NQ_API nq_status nq_threads_get(int32_t* out_num_threads) {
  NQ_CHECK_NOT_NULL("nq_threads_get", out_num_threads);
  *out_num_threads = nq::cpu::num_threads();
  return NQ_OK;
}

}  // extern "C"
