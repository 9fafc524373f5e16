/* WebAssembly SIMD128 gemm microkernels (tile/ukernels.h). */
#include "../kernels.h"
#if defined(__wasm_simd128__)
#include "../vec/wasm_simd128.h"
#include "../tile/ukernels.h"

SL_GEMM_UKERNEL(sl_f32_gemm_ukernel_4x8__wasm_simd128, 4, 8)

#endif
