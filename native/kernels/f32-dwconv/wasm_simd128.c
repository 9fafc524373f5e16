/* WebAssembly SIMD128 dwconv microkernels (tile/ukernels.h). */
#include "../kernels.h"
#if defined(__wasm_simd128__)
#include "../vec/wasm_simd128.h"
#include "../tile/ukernels.h"

SL_DWCONV_UKERNEL(sl_f32_dwconv_ukernel__wasm_simd128)

#endif
