/* What vec/neon.h (4 floats) and vec/neon_fp16.h (8 halves) share, written once over the
 * including header's SL_V_WIDTH, sl_v, SL_NEON_E (the element type in memory), SL_NEON_T (the
 * intrinsics' suffix: f32 or f16) and SL_V_INLINE (its target attributes included). */
#ifndef SL_VEC_NEON_COMMON_H
#define SL_VEC_NEON_COMMON_H

#define SL_NEON_CAT_(a, b) a##_##b
#define SL_NEON_CAT(a, b) SL_NEON_CAT_(a, b)
#define SL_NEON(op) SL_NEON_CAT(op, SL_NEON_T) /* SL_NEON(vaddq): vaddq_f32 or vaddq_f16 */
#define SL_NEON_FROM_U8 SL_NEON_CAT(vreinterpretq, SL_NEON_CAT(SL_NEON_T, u8))

/* Lanes [0, n), with the byte shuffle that moves the n elements ending a vector loaded back = W - n
 * elements early to its first lanes (index 0xFF gives zero): one load and a TBL per column for a
 * tile's last vector, no branches. */
typedef struct {
  size_t n, back;
  uint8x16_t shift;
} sl_v_tail;

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) {
  /* from byte 16 - n elements: the loaded vector's last n elements, then zeros */
  static const uint8_t bytes[32] = {0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  15,
                                    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};
  const sl_v_tail t = {n, SL_V_WIDTH - n, vld1q_u8(bytes + 16 - 16 / SL_V_WIDTH * n)};
  return t;
}
/* The tail from one load of the W elements ending at p + n: those before p must be readable. */
#define SL_V_TAIL_BACK 1
SL_V_INLINE sl_v sl_v_load_tail_back(const SL_NEON_E* p, sl_v_tail t) {
  return SL_NEON_FROM_U8(vqtbl1q_u8(vld1q_u8((const uint8_t*)(p - t.back)), t.shift));
}
SL_V_INLINE sl_v sl_v_add(sl_v a, sl_v b) { return SL_NEON(vaddq)(a, b); }
SL_V_INLINE sl_v sl_v_sub(sl_v a, sl_v b) { return SL_NEON(vsubq)(a, b); }
SL_V_INLINE sl_vm sl_v_lt(sl_v a, sl_v b) { return SL_NEON(vcltq)(a, b); }
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return SL_NEON(vbslq)(m, a, b); }
/* acc + a * lane l of b, for a constant l (FMLA by element: one weight load serves W). */
#define SL_V_FMA_LANE 1
SL_V_INLINE sl_v sl_v_fma_lane(sl_v a, sl_v b, int l, sl_v acc) {
  switch (l) {
    case 1: return SL_NEON(vfmaq_laneq)(acc, a, b, 1);
    case 2: return SL_NEON(vfmaq_laneq)(acc, a, b, 2);
    case 3: return SL_NEON(vfmaq_laneq)(acc, a, b, 3);
#if SL_V_WIDTH == 8
    case 4: return SL_NEON(vfmaq_laneq)(acc, a, b, 4);
    case 5: return SL_NEON(vfmaq_laneq)(acc, a, b, 5);
    case 6: return SL_NEON(vfmaq_laneq)(acc, a, b, 6);
    case 7: return SL_NEON(vfmaq_laneq)(acc, a, b, 7);
#endif
    default: return SL_NEON(vfmaq_laneq)(acc, a, b, 0);
  }
}
/* Lanes k .. k + W - 1 of a then b, for a constant k. */
SL_V_INLINE sl_v sl_v_ext(sl_v a, sl_v b, int k) {
  switch (k) {
    case 1: return SL_NEON(vextq)(a, b, 1);
    case 2: return SL_NEON(vextq)(a, b, 2);
    case 3: return SL_NEON(vextq)(a, b, 3);
#if SL_V_WIDTH == 8
    case 4: return SL_NEON(vextq)(a, b, 4);
    case 5: return SL_NEON(vextq)(a, b, 5);
    case 6: return SL_NEON(vextq)(a, b, 6);
    case 7: return SL_NEON(vextq)(a, b, 7);
#endif
    default: return a;
  }
}
SL_V_INLINE sl_v sl_v_unzip_even(sl_v a, sl_v b) { return SL_NEON(vuzp1q)(a, b); }
SL_V_INLINE sl_v sl_v_unzip_odd(sl_v a, sl_v b) { return SL_NEON(vuzp2q)(a, b); }

#endif
