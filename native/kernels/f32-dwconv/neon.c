/* AArch64 NEON dwconv microkernels (tile/ukernels.h). */
#include "../kernels.h"
#if defined(__aarch64__)
#include "../vec/neon.h"
#include "../tile/ukernels.h"

SL_DWCONV_UKERNEL(sl_f32_dwconv_ukernel__neon)

#endif
