// Run-time CPU feature detection, dispatch level and thread count.
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::cpu {

uint32_t features();       // nq_cpu_feature bits present on this CPU
nq_isa supported_isa();    // highest level the CPU supports
nq_isa active_isa();       // min(supported, cap set by nq_cpu_isa_set_max)

// True when kernels may use the `level` path now.
inline bool use(nq_isa level) { return active_isa() >= level; }

// AVX-512 FP16 (vfmadd231ph) kernels: dispatched at the NQ_ISA_AVX512_BF16 level (every CPU
// with FP16 also has BF16), so capping dispatch below it also disables them.
inline bool use_avx512fp16() { return use(NQ_ISA_AVX512_BF16) && (features() & NQ_CPU_AVX512FP16) != 0; }

int num_threads();         // threads parallel kernels should use (>= 1)

}  // namespace nq::cpu
