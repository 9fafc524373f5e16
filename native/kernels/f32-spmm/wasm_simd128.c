/* WebAssembly SIMD128 spmm microkernels (tile/ukernels.h). */
#include "../kernels.h"
#if defined(__wasm_simd128__)
#include "../vec/wasm_simd128.h"
#include "../tile/ukernels.h"

SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_16x1__wasm_simd128, 1, 16)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_16x2__wasm_simd128, 2, 16)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_8x4__wasm_simd128, 4, 8)
SL_SPMM_UKERNEL(sl_f32_spmm_ukernel_4x8__wasm_simd128, 8, 4)

#endif
