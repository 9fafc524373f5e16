/* SSE2 (the x86-64 baseline): every kernel the lists give this ISA, from the templates. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../vec/sse2.h"
#define SL_LIST_SSE2 1
#include "../templates/instantiate.h"
#endif
