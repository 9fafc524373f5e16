/* AVX2+FMA depthwise microkernel, 4 vectors of outputs per tile (tile/ukernels.h). */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../vec/avx2.h"
#include "../tile/ukernels.h"

SL_DWCONV_UKERNEL(sl_f32_dwconv_ukernel__avx2)

#endif
