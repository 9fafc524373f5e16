/* Vector operations for the shared microkernel templates: AArch64 NEON, 4 floats,
 * fused multiply-add. AArch64 has 32 vector registers, so its tiles are twice
 * the x86 ones (see kernels/list.c). */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <arm_neon.h>

#define SL_V_WIDTH 4
#define SL_V_TARGET
#define SL_V_INLINE static inline __attribute__((always_inline))

typedef float32x4_t sl_v;
typedef size_t sl_v_tail; /* lanes [0, n) */

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) { return n; }
SL_V_INLINE sl_v sl_v_load(const float* p) { return vld1q_f32(p); }
/* Lanes past the tail read as zero and are never written. */
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail n) {
  switch (n) {
    case 1: return vld1q_lane_f32(p, vdupq_n_f32(0.0f), 0);
    case 2: return vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    case 3: return vld1q_lane_f32(p + 2, vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f)), 2);
    default: return vld1q_f32(p);
  }
}
SL_V_INLINE void sl_v_store(float* p, sl_v v) { vst1q_f32(p, v); }
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail n) {
  switch (n) {
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
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return vfmaq_f32(acc, a, b); }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return vminq_f32(vmaxq_f32(v, lo), hi); }

#endif
