/* Vector operations for the kernel templates on plain C floats: a vector of one lane, so the
 * portable kernels are the same templates as the SIMD ones. The operations and their NaN rules
 * are listed in templates/matrix.h. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SL_V_WIDTH 1
#define SL_V_TARGET
#define SL_V_INLINE static inline __attribute__((always_inline))

typedef float sl_v;
typedef int sl_vm;        /* 1 = true */
typedef size_t sl_v_tail; /* one lane: never partial */

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) { return n; }
SL_V_INLINE sl_v sl_v_load(const float* p) { return *p; }
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail n) { return n ? *p : 0.0f; }
SL_V_INLINE void sl_v_store(float* p, sl_v v) { *p = v; }
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail n) {
  if (n) *p = v;
}
SL_V_INLINE sl_v sl_v_splat(const float* p) { return *p; }
SL_V_INLINE sl_v sl_v_dup(float v) { return v; }
SL_V_INLINE sl_v sl_v_add(sl_v a, sl_v b) { return a + b; }
SL_V_INLINE sl_v sl_v_sub(sl_v a, sl_v b) { return a - b; }
SL_V_INLINE sl_v sl_v_mul(sl_v a, sl_v b) { return a * b; }
SL_V_INLINE sl_v sl_v_div(sl_v a, sl_v b) { return a / b; }
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return acc + a * b; }
SL_V_INLINE sl_v sl_v_max(sl_v a, sl_v b) { return a < b ? b : a; }
SL_V_INLINE sl_v sl_v_min(sl_v a, sl_v b) { return b < a ? b : a; }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return sl_v_min(sl_v_max(v, lo), hi); }
SL_V_INLINE sl_v sl_v_abs(sl_v a) { return fabsf(a); }
SL_V_INLINE sl_v sl_v_sqrt(sl_v a) { return sqrtf(a); }
SL_V_INLINE sl_v sl_v_getexp(sl_v a) {
  uint32_t bits;
  memcpy(&bits, &a, sizeof(bits));
  return (float)((int32_t)(bits >> 23 & 0xFFu) - 127);
}
SL_V_INLINE sl_v sl_v_getmant(sl_v a) {
  uint32_t bits;
  memcpy(&bits, &a, sizeof(bits));
  bits = (bits & 0x007FFFFFu) | 0x3F800000u;
  float out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}
SL_V_INLINE sl_vm sl_v_lt(sl_v a, sl_v b) { return a < b; }
SL_V_INLINE sl_vm sl_v_eq(sl_v a, sl_v b) { return a == b; }
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return m ? a : b; }
SL_V_INLINE sl_vm sl_v_tail_mask(sl_v_tail n) { return n > 0; }
SL_V_INLINE sl_v sl_v_exp2i(sl_v t) {
  uint32_t bits;
  memcpy(&bits, &t, sizeof(bits));
  bits = (bits + 127u) << 23;
  float out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}
SL_V_INLINE sl_v sl_v_ext(sl_v a, sl_v b, int k) { /* one lane: k is 0 */
  (void)b;
  (void)k;
  return a;
}
SL_V_INLINE sl_v sl_v_unzip_even(sl_v a, sl_v b) {
  (void)b;
  return a;
}
SL_V_INLINE sl_v sl_v_unzip_odd(sl_v a, sl_v b) {
  (void)a;
  return b;
}
SL_V_INLINE sl_v sl_v_zip_lo(sl_v a, sl_v b) {
  (void)b;
  return a;
}
SL_V_INLINE sl_v sl_v_zip_hi(sl_v a, sl_v b) {
  (void)a;
  return b;
}
SL_V_INLINE float sl_v_hsum(sl_v v) { return v; }
SL_V_INLINE float sl_v_hmax(sl_v v) { return v; }

#endif
