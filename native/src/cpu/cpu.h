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

int num_threads();         // threads parallel kernels should use (>= 1)

}  // namespace nq::cpu
