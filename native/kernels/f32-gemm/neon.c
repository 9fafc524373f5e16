/* AArch64 NEON gemm microkernels (tile/ukernels.h). */
#include "../kernels.h"
#if defined(__aarch64__)
#include "../vec/neon.h"
#include "../tile/ukernels.h"

SL_GEMM_UKERNEL(sl_f32_gemm_ukernel_4x16__neon, 4, 16)

#endif
