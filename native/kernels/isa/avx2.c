/* AVX2 + FMA (x86-64, selected when cpuid reports both): every kernel the lists give this ISA,
 * from the templates. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../vec/avx2.h"
#define SL_LIST_AVX2 1
#include "../templates/instantiate.h"
#endif
