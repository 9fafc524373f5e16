/* AVX-512F (x86-64, selected when cpuid and the OS report it): every kernel the lists give this
 * ISA, from the templates. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../vec/avx512.h"
#define SL_LIST_AVX512 1
#include "../templates/instantiate.h"
#endif
