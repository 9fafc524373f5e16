/* AVX2+FMA spmm microkernels: MR pixels x r rows per register tile (tile/ukernels.h). */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../vec/avx2.h"
#include "../tile/ukernels.h"

SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_32x1__avx2, 1, 32)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_32x2__avx2, 2, 32)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_24x4__avx2, 4, 24)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_8x8__avx2, 8, 8)

#endif
