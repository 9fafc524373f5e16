/* WebAssembly SIMD128: every kernel the lists give this ISA, from the templates. */
#include "../kernels.h"
#if SL_ARCH_WASM_SIMD128
#include "../vec/wasm_simd128.h"
#define SL_LIST_WASM_SIMD128 1
#include "../templates/instantiate.h"
#endif
