# Baseline ISA is x86-64 + AVX2/FMA/F16C (the minimum the library supports).
# AVX-512 code lives in *_avx512*.cpp files compiled with extra flags and is only
# reached through run-time dispatch (src/cpu/cpu.h), so an AVX2-only CPU never
# executes an AVX-512 instruction.
#
# -ffp-contract=off: the scalar references and SIMD paths must agree byte for byte;
# implicit FMA contraction would make results depend on what the compiler fused.
set(NQ_BASE_FLAGS -mavx2 -mfma -mf16c -mbmi2 -ffp-contract=off -fno-math-errno)
set(NQ_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq)
# GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() ("__Y = __Y"), which -Wall
# reports as (maybe-)uninitialized in every caller (GCC PR 105593, fixed in 13).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND NQ_AVX512_FLAGS -Wno-maybe-uninitialized -Wno-uninitialized)
endif()
set(NQ_AVX512VNNI_FLAGS ${NQ_AVX512_FLAGS} -mavx512vnni)
set(NQ_AVX512BF16_FLAGS ${NQ_AVX512_FLAGS} -mavx512bf16)
set(NQ_AVX512FP16_FLAGS ${NQ_AVX512_FLAGS} -mavx512fp16)

if(NQ_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# nq_isa_sources(<list-var>): give each file its ISA flags by filename suffix.
function(nq_isa_sources)
  foreach(src ${ARGN})
    if(src MATCHES "_avx512fp16\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${NQ_AVX512FP16_FLAGS}")
    elseif(src MATCHES "_avx512bf16\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${NQ_AVX512BF16_FLAGS}")
    elseif(src MATCHES "_avx512vnni\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${NQ_AVX512VNNI_FLAGS}")
    elseif(src MATCHES "_avx512\\.cpp$")
      set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${NQ_AVX512_FLAGS}")
    endif()
  endforeach()
endfunction()
