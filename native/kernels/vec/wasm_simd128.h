/* Vector operations for the kernel templates: WebAssembly SIMD128, 4 floats. Plain SIMD128
 * runs on every engine with SIMD; without FMA, multiply-add is two instructions as on SSE2.
 * vec/wasm_relaxed_simd.h sets SL_V_RELAXED for the relaxed build's two substitutions, the
 * relaxed ops whose result stays within the templates' rules. The operations and their NaN
 * rules are listed in templates/matrix.h. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <string.h>
#include <wasm_simd128.h>

#define SL_V_WIDTH 4
#define SL_V_TARGET
#define SL_V_INLINE static inline __attribute__((always_inline))

typedef v128_t sl_v;
typedef v128_t sl_vm;     /* lane mask: all bits set or clear */
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
SL_V_INLINE sl_v sl_v_dup(float v) { return wasm_f32x4_splat(v); }
SL_V_INLINE sl_v sl_v_add(sl_v a, sl_v b) { return wasm_f32x4_add(a, b); }
SL_V_INLINE sl_v sl_v_sub(sl_v a, sl_v b) { return wasm_f32x4_sub(a, b); }
SL_V_INLINE sl_v sl_v_mul(sl_v a, sl_v b) { return wasm_f32x4_mul(a, b); }
SL_V_INLINE sl_v sl_v_div(sl_v a, sl_v b) { return wasm_f32x4_div(a, b); }
#ifdef SL_V_RELAXED
/* Fused or not as the engine's CPU has FMA: one instruction where it does (fma's contract). */
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return wasm_f32x4_relaxed_madd(a, b, acc); }
#else
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b)); }
#endif
/* pmax(a, b) is exactly a < b ? b : a and pmin(a, b) is b < a ? b : a, one instruction each
 * on x86 engines. Relaxed min/max would save nothing there and may drop a NaN in a. */
SL_V_INLINE sl_v sl_v_max(sl_v a, sl_v b) { return wasm_f32x4_pmax(a, b); }
SL_V_INLINE sl_v sl_v_min(sl_v a, sl_v b) { return wasm_f32x4_pmin(a, b); }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return sl_v_min(sl_v_max(v, lo), hi); }
SL_V_INLINE sl_v sl_v_abs(sl_v a) { return wasm_f32x4_abs(a); }
SL_V_INLINE sl_v sl_v_sqrt(sl_v a) { return wasm_f32x4_sqrt(a); }
SL_V_INLINE sl_v sl_v_getexp(sl_v a) {
  v128_t e = wasm_v128_and(wasm_u32x4_shr(a, 23), wasm_i32x4_splat(0xFF));
  return wasm_f32x4_convert_i32x4(wasm_i32x4_sub(e, wasm_i32x4_splat(127)));
}
SL_V_INLINE sl_v sl_v_getmant(sl_v a) {
  return wasm_v128_or(wasm_v128_and(a, wasm_i32x4_splat(0x007FFFFF)), wasm_i32x4_splat(0x3F800000));
}
SL_V_INLINE sl_vm sl_v_lt(sl_v a, sl_v b) { return wasm_f32x4_lt(a, b); }
SL_V_INLINE sl_vm sl_v_eq(sl_v a, sl_v b) { return wasm_f32x4_eq(a, b); }
#ifdef SL_V_RELAXED
/* Exact for masks of whole lanes (sl_vm's): one blend instead of and/andnot/or. */
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return wasm_i32x4_relaxed_laneselect(a, b, m); }
#else
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return wasm_v128_bitselect(a, b, m); }
#endif
SL_V_INLINE sl_vm sl_v_tail_mask(sl_v_tail n) {
  return wasm_u32x4_lt(wasm_u32x4_make(0, 1, 2, 3), wasm_u32x4_splat((uint32_t)n));
}
SL_V_INLINE sl_v sl_v_exp2i(sl_v t) { return wasm_i32x4_shl(wasm_i32x4_add(t, wasm_i32x4_splat(127)), 23); }
/* Lanes k .. k + 3 of a then b, for a constant k. */
SL_V_INLINE sl_v sl_v_ext(sl_v a, sl_v b, int k) {
  switch (k) {
    case 1: return wasm_i32x4_shuffle(a, b, 1, 2, 3, 4);
    case 2: return wasm_i32x4_shuffle(a, b, 2, 3, 4, 5);
    case 3: return wasm_i32x4_shuffle(a, b, 3, 4, 5, 6);
    default: return a;
  }
}
SL_V_INLINE sl_v sl_v_unzip_even(sl_v a, sl_v b) { return wasm_i32x4_shuffle(a, b, 0, 2, 4, 6); }
SL_V_INLINE sl_v sl_v_unzip_odd(sl_v a, sl_v b) { return wasm_i32x4_shuffle(a, b, 1, 3, 5, 7); }
SL_V_INLINE sl_v sl_v_zip_lo(sl_v a, sl_v b) { return wasm_i32x4_shuffle(a, b, 0, 4, 1, 5); }
SL_V_INLINE sl_v sl_v_zip_hi(sl_v a, sl_v b) { return wasm_i32x4_shuffle(a, b, 2, 6, 3, 7); }
SL_V_INLINE float sl_v_hsum(sl_v v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}
SL_V_INLINE float sl_v_hmax(sl_v v) {
  sl_v s = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  s = wasm_f32x4_pmax(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(s, 0);
}

#endif
