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
/* Lanes [0, n), with the byte shuffle that moves the n halves ending a vector loaded back - n
 * halves early to its first lanes (index 0xFF gives zero). */
typedef struct {
  size_t n, back;
  uint8x16_t shift;
} sl_v_tail;

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) {
  /* from byte 16 - 2n: bytes 16 - 2n .. 15 of the loaded vector, then zeros */
  static const uint8_t bytes[32] = {0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  15,
                                    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};
  const sl_v_tail t = {n, 8 - n, vld1q_u8(bytes + 16 - 2 * n)};
  return t;
}
SL_V_INLINE sl_v sl_v_load(const sl_e* p) { return vld1q_f16((const float16_t*)p); }
/* Lanes past the tail read as zero and are never written (through a buffer: tiles narrower than a
 * vector only). */
SL_V_INLINE sl_v sl_v_load_tail(const sl_e* p, sl_v_tail t) {
  uint16_t buf[8] = {0};
  memcpy(buf, p, t.n * sizeof(sl_e));
  return vreinterpretq_f16_u16(vld1q_u16(buf));
}
/* The same from one load of the 8 halves ending at p + n: those before p must be readable. */
#define SL_V_TAIL_BACK 1
SL_V_INLINE sl_v sl_v_load_tail_back(const sl_e* p, sl_v_tail t) {
  return vreinterpretq_f16_u8(vqtbl1q_u8(vreinterpretq_u8_u16(vld1q_u16(p - t.back)), t.shift));
}
SL_V_INLINE void sl_v_store(sl_e* p, sl_v v) { vst1q_f16((float16_t*)p, v); }
SL_V_INLINE void sl_v_store_tail(sl_e* p, sl_v v, sl_v_tail t) {
  uint16_t buf[8];
  vst1q_u16(buf, vreinterpretq_u16_f16(v));
  memcpy(p, buf, t.n * sizeof(sl_e));
}
SL_V_INLINE sl_v sl_v_splat(const sl_e* p) { return vreinterpretq_f16_u16(vld1q_dup_u16(p)); }
SL_V_INLINE sl_v sl_v_dup(float v) { return vdupq_n_f16((float16_t)v); }
SL_V_INLINE sl_v sl_v_iota(void) {
  static const uint16_t lanes[8] = {0x0000, 0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700}; /* 0..7 */
  return vreinterpretq_f16_u16(vld1q_u16(lanes));
}
SL_V_INLINE sl_v sl_v_add(sl_v a, sl_v b) { return vaddq_f16(a, b); }
SL_V_INLINE sl_v sl_v_sub(sl_v a, sl_v b) { return vsubq_f16(a, b); }
/* FMLA, FMAX and FMIN written as instructions: clang 22's vfmaq_f16/vmaxq_f16/vminq_f16 (zig cc,
 * the wheel's compiler) refuse a function-level fp16 target that its other fp16 intrinsics take. */
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) {
  __asm__("fmla %0.8h, %1.8h, %2.8h" : "+w"(acc) : "w"(a), "w"(b));
  return acc;
}
/* acc + a * lane l of b, for a constant l. */
#define SL_V_FMA_LANE 1
SL_V_INLINE sl_v sl_v_fma_lane(sl_v a, sl_v b, int l, sl_v acc) {
  switch (l) {
    case 1: return vfmaq_laneq_f16(acc, a, b, 1);
    case 2: return vfmaq_laneq_f16(acc, a, b, 2);
    case 3: return vfmaq_laneq_f16(acc, a, b, 3);
    case 4: return vfmaq_laneq_f16(acc, a, b, 4);
    case 5: return vfmaq_laneq_f16(acc, a, b, 5);
    case 6: return vfmaq_laneq_f16(acc, a, b, 6);
    case 7: return vfmaq_laneq_f16(acc, a, b, 7);
    default: return vfmaq_laneq_f16(acc, a, b, 0);
  }
}
SL_V_INLINE sl_vm sl_v_lt(sl_v a, sl_v b) { return vcltq_f16(a, b); }
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return vbslq_f16(m, a, b); }
/* The bounds are never NaN; FMAX/FMIN keep a NaN in v, as the f32 kernels do. */
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) {
  __asm__("fmax %0.8h, %0.8h, %1.8h\n\tfmin %0.8h, %0.8h, %2.8h" : "+w"(v) : "w"(lo), "w"(hi));
  return v;
}
/* Lanes k .. k + 7 of a then b, for a constant k. */
SL_V_INLINE sl_v sl_v_ext(sl_v a, sl_v b, int k) {
  switch (k) {
    case 1: return vextq_f16(a, b, 1);
    case 2: return vextq_f16(a, b, 2);
    case 3: return vextq_f16(a, b, 3);
    case 4: return vextq_f16(a, b, 4);
    case 5: return vextq_f16(a, b, 5);
    case 6: return vextq_f16(a, b, 6);
    case 7: return vextq_f16(a, b, 7);
    default: return a;
  }
}
SL_V_INLINE sl_v sl_v_unzip_even(sl_v a, sl_v b) { return vuzp1q_f16(a, b); }
SL_V_INLINE sl_v sl_v_unzip_odd(sl_v a, sl_v b) { return vuzp2q_f16(a, b); }

#endif
