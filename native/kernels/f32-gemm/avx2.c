/* AVX2+FMA gemm microkernel over 4-row panels (tile/ukernels.h). */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../vec/avx2.h"
#include "../tile/ukernels.h"

SL_GEMM_UKERNEL(sl_f32_gemm_ukernel_4x24__avx2, 4, 24)

#endif
