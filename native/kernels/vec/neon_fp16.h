/* Vector operations for the kernel templates: AArch64 NEON with ARMv8.2-A half-precision arithmetic
 * (FEAT_FP16), 8 halves, fused multiply-add. Every function carries the target attribute, so the
 * rest of an ARMv8.0 build stays ARMv8.0 and these run only where sl_cpu_isa() found the feature.
 * Elements are stored as their bits (sl_f16) and loaded as halves. Only what templates/matrix.h's
 * spmm, gemm and depthwise use. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <arm_neon.h>
#include <string.h>

#define SL_V_WIDTH 8
#define SL_V_TARGET __attribute__((target("arch=armv8.2-a+fp16")))
#define SL_V_INLINE static inline __attribute__((always_inline, target("arch=armv8.2-a+fp16")))
#define SL_V_ELEM 1
typedef sl_f16 sl_e;

typedef float16x8_t sl_v;
typedef uint16x8_t sl_vm;
#define SL_NEON_E sl_e
#define SL_NEON_T f16
#include "neon_common.h"
/* Depthwise reuses each input row over 3 output rows, tiles of 4 vectors (templates/matrix.h). */
#define SL_V_DW_ROWS 3
#define SL_V_DW_NV 4

SL_V_INLINE sl_v sl_v_load(const sl_e* p) { return vld1q_f16((const float16_t*)p); }
/* Lanes past the tail read as zero and are never written (through a buffer: tiles narrower than a
 * vector only). */
SL_V_INLINE sl_v sl_v_load_tail(const sl_e* p, sl_v_tail t) {
  uint16_t buf[8] = {0};
  memcpy(buf, p, t.n * sizeof(sl_e));
  return vreinterpretq_f16_u16(vld1q_u16(buf));
}
SL_V_INLINE void sl_v_store(sl_e* p, sl_v v) { vst1q_f16((float16_t*)p, v); }
SL_V_INLINE void sl_v_store_tail(sl_e* p, sl_v v, sl_v_tail t) {
  uint16_t buf[8];
  vst1q_u16(buf, vreinterpretq_u16_f16(v));
  memcpy(p, buf, t.n * sizeof(sl_e));
}
SL_V_INLINE sl_v sl_v_splat(const sl_e* p) { return vreinterpretq_f16_u16(vld1q_dup_u16(p)); }
/* Lane 0 only, by a scalar LDR (no vector pipe, unlike LD1R's broadcast): for FMLA by element. */
#define SL_V_LOAD_SCALAR 1
SL_V_INLINE sl_v sl_v_load_scalar(const sl_e* p) {
  sl_v v;
  __asm__("ldr %h0, %1" : "=w"(v) : "m"(*p));
  return v;
}
SL_V_INLINE sl_v sl_v_dup(float v) { return vdupq_n_f16((float16_t)v); }
SL_V_INLINE sl_v sl_v_iota(void) {
  static const uint16_t lanes[8] = {0x0000, 0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700}; /* 0..7 */
  return vreinterpretq_f16_u16(vld1q_u16(lanes));
}
/* FMLA, FMAX and FMIN written as instructions: clang 22's vfmaq_f16/vmaxq_f16/vminq_f16 (zig cc,
 * the wheel's compiler) refuse a function-level fp16 target that its other fp16 intrinsics take. */
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) {
  __asm__("fmla %0.8h, %1.8h, %2.8h" : "+w"(acc) : "w"(a), "w"(b));
  return acc;
}
/* The bounds are never NaN; FMAX/FMIN keep a NaN in v, as the f32 kernels do. */
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) {
  __asm__("fmax %0.8h, %0.8h, %1.8h\n\tfmin %0.8h, %0.8h, %2.8h" : "+w"(v) : "w"(lo), "w"(hi));
  return v;
}

#endif
