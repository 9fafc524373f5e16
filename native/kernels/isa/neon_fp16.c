/* AArch64 NEON with ARMv8.2-A fp16 arithmetic: the lists' f16 kernels from the matrix templates,
 * over 8 halves per vector. Built into every aarch64 library (function-level target attributes),
 * selected only where sl_cpu_isa() reports SL_ISA_NEON_FP16. */
#include "../kernels.h"
#if SL_ARCH_ARM64
#include "../vec/neon_fp16.h"
#define SL_LIST_NEON_FP16 1
#include "../templates/matrix.h"

#define SL_DEFINE_f16_spmm SL_DEFINE_spmm
#define SL_DEFINE_f16_gemm SL_DEFINE_gemm
#define SL_DEFINE_f16_dwconv SL_DEFINE_dwconv
#define SL_UKERNEL(family, name, isa, pixels, rows, efficiency) SL_DEFINE_##family(name, pixels, rows)
#include "../lists.inc"
#undef SL_UKERNEL
#endif
