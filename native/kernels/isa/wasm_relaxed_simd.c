/* WebAssembly relaxed SIMD: every kernel the lists give this ISA, from the templates. */
#include "../kernels.h"
#if SL_ARCH_WASM_RELAXED_SIMD
#include "../vec/wasm_relaxed_simd.h"
#define SL_LIST_WASM_RELAXED_SIMD 1
#include "../templates/instantiate.h"
#endif
