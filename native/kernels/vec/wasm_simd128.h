/* Vector operations for the shared microkernel templates: WebAssembly SIMD128,
 * 4 floats. Plain SIMD128 only (no relaxed SIMD), so every engine with SIMD
 * runs it; without FMA, multiply-add is two instructions as on SSE2. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <string.h>
#include <wasm_simd128.h>

#define SL_V_WIDTH 4
#define SL_V_TARGET
#define SL_V_INLINE static inline __attribute__((always_inline))

typedef v128_t sl_v;
typedef size_t sl_v_tail; /* lanes [0, n) */

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) { return n; }
SL_V_INLINE sl_v sl_v_load(const float* p) { return wasm_v128_load(p); }
/* Lanes past the tail read as zero and are never written. */
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail n) {
  switch (n) {
    case 1: return wasm_v128_load32_zero(p);
    case 2: return wasm_v128_load64_zero(p);
    case 3: return wasm_v128_load32_lane(p + 2, wasm_v128_load64_zero(p), 2);
    default: return wasm_v128_load(p);
  }
}
SL_V_INLINE void sl_v_store(float* p, sl_v v) { wasm_v128_store(p, v); }
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail n) {
  switch (n) {
    case 1: wasm_v128_store32_lane(p, v, 0); break;
    case 2: wasm_v128_store64_lane(p, v, 0); break;
    case 3:
      wasm_v128_store64_lane(p, v, 0);
      wasm_v128_store32_lane(p + 2, v, 2);
      break;
    default: wasm_v128_store(p, v);
  }
}
SL_V_INLINE sl_v sl_v_splat(const float* p) { return wasm_v128_load32_splat(p); }
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }
/* pmin/pmax lower to single minps/maxps on x86 engines and match min/max for
 * the finite bounds used here (NaNs pass through either way). */
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return wasm_f32x4_pmin(wasm_f32x4_pmax(lo, v), hi); }

#endif
