/* AArch64 NEON (the AArch64 baseline): every kernel the lists give this ISA, from the templates. */
#include "../kernels.h"
#if SL_ARCH_ARM64
#include "../vec/neon.h"
#define SL_LIST_NEON 1
#include "../templates/instantiate.h"
#endif
