/* Every microkernel, grouped by ISA with the best ISA first. Selection takes
 * the first ISA the CPU (and the model's mask) allows; tests run every entry
 * the machine can execute against the plain C references. Adding a kernel is
 * one line here plus its file. */
#include "kernels.h"

#define DECLARE_SPMM(name) void name(size_t, size_t, const float*, const float*, const uint32_t*, \
                                     const uint32_t*, const uint32_t*, float*, size_t, const sl_minmax_t*);
#define DECLARE_GEMM(name) void name(size_t, size_t, size_t, const float*, size_t, const float*, float*, \
                                     size_t, const sl_minmax_t*);
#define DECLARE_DWCONV(name) void name(size_t, size_t, const uint32_t*, const float*, const float*, float, float*, \
                                       const sl_minmax_t*);

#if SL_ARCH_X86
DECLARE_SPMM(sl_f32_spmm_ukernel_32x1__avx2)
DECLARE_SPMM(sl_f32_spmm_ukernel_32x2__avx2)
DECLARE_SPMM(sl_f32_spmm_ukernel_24x4__avx2)
DECLARE_SPMM(sl_f32_spmm_ukernel_8x8__avx2)
DECLARE_SPMM(sl_f32_spmm_ukernel_16x1__sse2)
DECLARE_SPMM(sl_f32_spmm_ukernel_16x2__sse2)
DECLARE_SPMM(sl_f32_spmm_ukernel_8x4__sse2)
DECLARE_SPMM(sl_f32_spmm_ukernel_4x8__sse2)
DECLARE_GEMM(sl_f32_gemm_ukernel_4x24__avx2)
DECLARE_GEMM(sl_f32_gemm_ukernel_4x8__sse2)
DECLARE_DWCONV(sl_f32_dwconv_ukernel__avx2)
DECLARE_DWCONV(sl_f32_dwconv_ukernel__sse2)
#endif
#if defined(__wasm_simd128__)
DECLARE_SPMM(sl_f32_spmm_ukernel_16x1__wasm_simd128)
DECLARE_SPMM(sl_f32_spmm_ukernel_16x2__wasm_simd128)
DECLARE_SPMM(sl_f32_spmm_ukernel_8x4__wasm_simd128)
DECLARE_SPMM(sl_f32_spmm_ukernel_4x8__wasm_simd128)
DECLARE_GEMM(sl_f32_gemm_ukernel_4x8__wasm_simd128)
DECLARE_DWCONV(sl_f32_dwconv_ukernel__wasm_simd128)
#endif
#if defined(__aarch64__)
DECLARE_SPMM(sl_f32_spmm_ukernel_16x1__neon)
DECLARE_SPMM(sl_f32_spmm_ukernel_16x2__neon)
DECLARE_SPMM(sl_f32_spmm_ukernel_16x4__neon)
DECLARE_SPMM(sl_f32_spmm_ukernel_8x8__neon)
DECLARE_GEMM(sl_f32_gemm_ukernel_4x16__neon)
DECLARE_DWCONV(sl_f32_dwconv_ukernel__neon)
#endif
DECLARE_SPMM(sl_f32_spmm_ukernel_1__scalar)
DECLARE_SPMM(sl_f32_spmm_ukernel_2__scalar)
DECLARE_SPMM(sl_f32_spmm_ukernel_4__scalar)
DECLARE_SPMM(sl_f32_spmm_ukernel_8__scalar)
DECLARE_GEMM(sl_f32_gemm_ukernel_4x1__scalar)
DECLARE_DWCONV(sl_f32_dwconv_ukernel__scalar)

#define SPMM(name, isa, r, mr, efficiency) {#name, isa, r, mr, efficiency, name}
const sl_spmm_ukernel_t sl_spmm_ukernels[] = {
#if SL_ARCH_X86
    SPMM(sl_f32_spmm_ukernel_32x1__avx2, SL_ISA_AVX2_FMA, 1, 32, 0.4f),
    SPMM(sl_f32_spmm_ukernel_32x2__avx2, SL_ISA_AVX2_FMA, 2, 32, 0.5f),
    SPMM(sl_f32_spmm_ukernel_24x4__avx2, SL_ISA_AVX2_FMA, 4, 24, 0.7f),
    SPMM(sl_f32_spmm_ukernel_8x8__avx2, SL_ISA_AVX2_FMA, 8, 8, 0.45f),
    SPMM(sl_f32_spmm_ukernel_16x1__sse2, SL_ISA_SSE2, 1, 16, 0.35f),
    SPMM(sl_f32_spmm_ukernel_16x2__sse2, SL_ISA_SSE2, 2, 16, 0.6f),
    SPMM(sl_f32_spmm_ukernel_8x4__sse2, SL_ISA_SSE2, 4, 8, 0.85f),
    SPMM(sl_f32_spmm_ukernel_4x8__sse2, SL_ISA_SSE2, 8, 4, 0.7f),
#endif
#if defined(__aarch64__)
    SPMM(sl_f32_spmm_ukernel_16x1__neon, SL_ISA_NEON, 1, 16, 0.4f),
    SPMM(sl_f32_spmm_ukernel_16x2__neon, SL_ISA_NEON, 2, 16, 0.5f),
    SPMM(sl_f32_spmm_ukernel_16x4__neon, SL_ISA_NEON, 4, 16, 0.7f),
    SPMM(sl_f32_spmm_ukernel_8x8__neon, SL_ISA_NEON, 8, 8, 0.7f),
#endif
    SPMM(sl_f32_spmm_ukernel_1__scalar, SL_ISA_SCALAR, 1, 1, 0.5f),
    SPMM(sl_f32_spmm_ukernel_2__scalar, SL_ISA_SCALAR, 2, 1, 0.7f),
    SPMM(sl_f32_spmm_ukernel_4__scalar, SL_ISA_SCALAR, 4, 1, 0.9f),
    SPMM(sl_f32_spmm_ukernel_8__scalar, SL_ISA_SCALAR, 8, 1, 0.9f),
};
const size_t sl_spmm_ukernel_count = sizeof(sl_spmm_ukernels) / sizeof(sl_spmm_ukernels[0]);

#define GEMM(name, isa, mr, nr) {#name, isa, mr, nr, name}
const sl_gemm_ukernel_t sl_gemm_ukernels[] = {
#if SL_ARCH_X86
    GEMM(sl_f32_gemm_ukernel_4x24__avx2, SL_ISA_AVX2_FMA, 4, 24),
    GEMM(sl_f32_gemm_ukernel_4x8__sse2, SL_ISA_SSE2, 4, 8),
#endif
#if defined(__wasm_simd128__)
    GEMM(sl_f32_gemm_ukernel_4x8__wasm_simd128, SL_ISA_WASM_SIMD128, 4, 8),
#endif
#if defined(__aarch64__)
    GEMM(sl_f32_gemm_ukernel_4x16__neon, SL_ISA_NEON, 4, 16),
#endif
    GEMM(sl_f32_gemm_ukernel_4x1__scalar, SL_ISA_SCALAR, 4, 1),
};
const size_t sl_gemm_ukernel_count = sizeof(sl_gemm_ukernels) / sizeof(sl_gemm_ukernels[0]);

#define DWCONV(name, isa) {#name, isa, name}
const sl_dwconv_ukernel_t sl_dwconv_ukernels[] = {
#if SL_ARCH_X86
    DWCONV(sl_f32_dwconv_ukernel__avx2, SL_ISA_AVX2_FMA),
    DWCONV(sl_f32_dwconv_ukernel__sse2, SL_ISA_SSE2),
#endif
#if defined(__wasm_simd128__)
    DWCONV(sl_f32_dwconv_ukernel__wasm_simd128, SL_ISA_WASM_SIMD128),
#endif
#if defined(__aarch64__)
    DWCONV(sl_f32_dwconv_ukernel__neon, SL_ISA_NEON),
#endif
    DWCONV(sl_f32_dwconv_ukernel__scalar, SL_ISA_SCALAR),
};
const size_t sl_dwconv_ukernel_count = sizeof(sl_dwconv_ukernels) / sizeof(sl_dwconv_ukernels[0]);

uint32_t sl_cpu_isa(void) {
  uint32_t isa = SL_ISA_SCALAR;
#if SL_ARCH_X86
  isa |= SL_ISA_SSE2; /* the x86-64 baseline */
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa |= SL_ISA_AVX2_FMA;
#endif
#if defined(__aarch64__)
  isa |= SL_ISA_NEON; /* part of the AArch64 baseline */
#endif
#if defined(__wasm_simd128__)
  isa |= SL_ISA_WASM_SIMD128; /* validated by the engine when the module loaded */
#endif
  return isa;
}

static bool isa_ok(uint32_t needed, uint32_t available) { return (needed & ~available) == 0; }

const sl_spmm_ukernel_t* sl_spmm_select(uint32_t isa, uint32_t r) {
  uint32_t level = UINT32_MAX; /* the ISA of the first runnable entry: the best one */
  for (size_t i = 0; i < sl_spmm_ukernel_count; i++) {
    const sl_spmm_ukernel_t* k = &sl_spmm_ukernels[i];
    if (!isa_ok(k->isa, isa)) continue;
    if (level == UINT32_MAX) level = k->isa;
    if (k->isa == level && k->r == r) return k;
  }
  return NULL;
}

const sl_gemm_ukernel_t* sl_gemm_select(uint32_t isa) {
  for (size_t i = 0; i < sl_gemm_ukernel_count; i++)
    if (isa_ok(sl_gemm_ukernels[i].isa, isa)) return &sl_gemm_ukernels[i];
  return NULL;
}

const sl_dwconv_ukernel_t* sl_dwconv_select(uint32_t isa) {
  for (size_t i = 0; i < sl_dwconv_ukernel_count; i++)
    if (isa_ok(sl_dwconv_ukernels[i].isa, isa)) return &sl_dwconv_ukernels[i];
  return NULL;
}
