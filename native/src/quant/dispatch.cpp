// Run-time choice of the quantization kernel table (scalar reference, AVX2, AVX-512).
#include "cpu/cpu.h"
#include "quant/quant.h"

namespace nq::quant {

#define NQ_QUANT_TABLE(isa)                                                                            \
  Kernels{blockwise8_quantize_##isa, blockwise8_dequantize_##isa, quant4_quantize_##isa,             \
          quant4_dequantize_##isa,   quant4_dequantize_bf16_##isa, absmax_bits_##isa,                 \
          colmax_bits_##isa,         minmax_##isa,                 int8_scale_##isa,                  \
          int8_unscale_##isa,        zp_quantize_##isa,            zp_dequantize_##isa}

const Kernels& kernels_ref() {
  static const Kernels k = NQ_QUANT_TABLE(ref);
  return k;
}

const Kernels& kernels_avx2() {
  static const Kernels k = NQ_QUANT_TABLE(avx2);
  return k;
}

const Kernels& kernels_avx512() {
  static const Kernels k = NQ_QUANT_TABLE(avx512);
  return k;
}

const Kernels& kernels() {
  if (nq::cpu::use(NQ_ISA_AVX512)) return kernels_avx512();
  if (nq::cpu::use(NQ_ISA_AVX2)) return kernels_avx2();
  return kernels_ref();
}

}  // namespace nq::quant
