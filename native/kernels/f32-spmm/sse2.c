/* SSE2 spmm microkernels: MR pixels x r rows per register tile (tile/ukernels.h). */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../vec/sse2.h"
#include "../tile/ukernels.h"

SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_16x1__sse2, 1, 16)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_16x2__sse2, 2, 16)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_8x4__sse2, 4, 8)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_4x8__sse2, 8, 4)

#endif
