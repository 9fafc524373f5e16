/* AArch64 NEON spmm microkernels (tile/ukernels.h). */
#include "../kernels.h"
#if defined(__aarch64__)
#include "../vec/neon.h"
#include "../tile/ukernels.h"

SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_16x1__neon, 1, 16)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_16x2__neon, 2, 16)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_16x4__neon, 4, 16)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_8x8__neon, 8, 8)

#endif
