/* Vector operations for the kernel templates: WebAssembly SIMD128 with relaxed SIMD (FMA and
 * lane selects), the relaxed build's kernels (wasm/build.sh). Hosts load that build only where a
 * relaxed op validates, so it needs no check at run time. */
#define SL_V_RELAXED 1
#include "wasm_simd128.h"
