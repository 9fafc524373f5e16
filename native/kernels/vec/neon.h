/* Vector operations for the kernel templates: AArch64 NEON, 4 floats, fused multiply-add.
 * AArch64 has 32 vector registers, so its tiles are twice the x86 ones (see the lists).
 * The operations and their NaN rules are listed in templates/matrix.h. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <arm_neon.h>

#define SL_V_WIDTH 4
#define SL_V_TARGET
#define SL_V_INLINE static inline __attribute__((always_inline))

typedef float32x4_t sl_v;
typedef uint32x4_t sl_vm; /* lane mask: all bits set or clear */
#define SL_NEON_E float
#define SL_NEON_T f32
#include "neon_common.h"
/* Depthwise reuses each input row over 3 output rows, tiles of 4 vectors (templates/matrix.h). */
#define SL_V_DW_ROWS 3
#define SL_V_DW_NV 4

SL_V_INLINE sl_v sl_v_load(const float* p) { return vld1q_f32(p); }
/* Lanes past the tail read as zero and are never written. */
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail t) {
  switch (t.n) {
    case 1: return vld1q_lane_f32(p, vdupq_n_f32(0.0f), 0);
    case 2: return vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    case 3: return vld1q_lane_f32(p + 2, vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f)), 2);
    default: return vld1q_f32(p);
  }
}
SL_V_INLINE void sl_v_store(float* p, sl_v v) { vst1q_f32(p, v); }
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail t) {
  switch (t.n) {
    case 1: vst1q_lane_f32(p, v, 0); break;
    case 2: vst1_f32(p, vget_low_f32(v)); break;
    case 3:
      vst1_f32(p, vget_low_f32(v));
      vst1q_lane_f32(p + 2, v, 2);
      break;
    default: vst1q_f32(p, v);
  }
}
SL_V_INLINE sl_v sl_v_splat(const float* p) { return vld1q_dup_f32(p); }
SL_V_INLINE sl_v sl_v_dup(float v) { return vdupq_n_f32(v); }
SL_V_INLINE sl_v sl_v_mul(sl_v a, sl_v b) { return vmulq_f32(a, b); }
SL_V_INLINE sl_v sl_v_div(sl_v a, sl_v b) { return vdivq_f32(a, b); }
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return vfmaq_f32(acc, a, b); }
SL_V_INLINE sl_vm sl_v_eq(sl_v a, sl_v b) { return vceqq_f32(a, b); }
/* fmax/fmin return NaN for a NaN in either operand; these keep a's, as on the other ISAs. */
SL_V_INLINE sl_v sl_v_max(sl_v a, sl_v b) { return vbslq_f32(vcltq_f32(a, b), b, a); }
SL_V_INLINE sl_v sl_v_min(sl_v a, sl_v b) { return vbslq_f32(vcltq_f32(b, a), b, a); }
/* The bounds are never NaN, so the one-instruction forms agree with max/min here. */
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return vminq_f32(vmaxq_f32(v, lo), hi); }
SL_V_INLINE sl_v sl_v_abs(sl_v a) { return vabsq_f32(a); }
SL_V_INLINE sl_v sl_v_sqrt(sl_v a) { return vsqrtq_f32(a); }
SL_V_INLINE sl_v sl_v_getexp(sl_v a) {
  uint32x4_t e = vandq_u32(vshrq_n_u32(vreinterpretq_u32_f32(a), 23), vdupq_n_u32(0xFF));
  return vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(e), vdupq_n_s32(127)));
}
SL_V_INLINE sl_v sl_v_getmant(sl_v a) {
  uint32x4_t m = vandq_u32(vreinterpretq_u32_f32(a), vdupq_n_u32(0x007FFFFF));
  return vreinterpretq_f32_u32(vorrq_u32(m, vdupq_n_u32(0x3F800000)));
}
SL_V_INLINE sl_vm sl_v_tail_mask(sl_v_tail t) {
  static const uint32_t lanes[4] = {0, 1, 2, 3};
  return vcltq_u32(vld1q_u32(lanes), vdupq_n_u32((uint32_t)t.n));
}
SL_V_INLINE sl_v sl_v_exp2i(sl_v t) {
  int32x4_t bits = vaddq_s32(vreinterpretq_s32_f32(t), vdupq_n_s32(127));
  return vreinterpretq_f32_s32(vshlq_n_s32(bits, 23));
}
SL_V_INLINE sl_v sl_v_zip_lo(sl_v a, sl_v b) { return vzip1q_f32(a, b); }
SL_V_INLINE sl_v sl_v_zip_hi(sl_v a, sl_v b) { return vzip2q_f32(a, b); }
SL_V_INLINE float sl_v_hsum(sl_v v) { return vaddvq_f32(v); }
SL_V_INLINE float sl_v_hmax(sl_v v) { return vmaxvq_f32(v); }

#endif
