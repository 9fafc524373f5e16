/* Vector operations for the kernel templates: SSE2, 4 floats, no FMA. SSE2 is the x86-64
 * baseline, so these serve every x86-64 CPU. The operations and their NaN rules are listed
 * in templates/matrix.h. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <emmintrin.h>
#include <string.h>

#define SL_V_WIDTH 4
#define SL_V_TARGET
#define SL_V_INLINE static inline __attribute__((always_inline))

typedef __m128 sl_v;
typedef __m128 sl_vm;    /* lane mask: all bits set or clear */
typedef size_t sl_v_tail; /* lanes [0, n) */

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) { return n; }
SL_V_INLINE sl_v sl_v_load(const float* p) { return _mm_loadu_ps(p); }
SL_V_INLINE sl_v sl_v_load2(const float* p) { /* two floats at any alignment: one movsd */
  double d;
  memcpy(&d, p, sizeof(d));
  return _mm_castpd_ps(_mm_set_sd(d));
}
/* Lanes past the tail read as zero and are never written. */
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail n) {
  switch (n) {
    case 1: return _mm_load_ss(p);
    case 2: return sl_v_load2(p);
    case 3: return _mm_movelh_ps(sl_v_load2(p), _mm_load_ss(p + 2));
    default: return _mm_loadu_ps(p);
  }
}
SL_V_INLINE void sl_v_store(float* p, sl_v v) { _mm_storeu_ps(p, v); }
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail n) {
  double d = _mm_cvtsd_f64(_mm_castps_pd(v));
  switch (n) {
    case 1: _mm_store_ss(p, v); break;
    case 2: memcpy(p, &d, sizeof(d)); break;
    case 3:
      memcpy(p, &d, sizeof(d));
      _mm_store_ss(p + 2, _mm_movehl_ps(v, v));
      break;
    default: _mm_storeu_ps(p, v);
  }
}
SL_V_INLINE sl_v sl_v_splat(const float* p) { return _mm_load1_ps(p); }
SL_V_INLINE sl_v sl_v_dup(float v) { return _mm_set1_ps(v); }
SL_V_INLINE sl_v sl_v_add(sl_v a, sl_v b) { return _mm_add_ps(a, b); }
SL_V_INLINE sl_v sl_v_sub(sl_v a, sl_v b) { return _mm_sub_ps(a, b); }
SL_V_INLINE sl_v sl_v_mul(sl_v a, sl_v b) { return _mm_mul_ps(a, b); }
SL_V_INLINE sl_v sl_v_div(sl_v a, sl_v b) { return _mm_div_ps(a, b); }
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return _mm_add_ps(acc, _mm_mul_ps(a, b)); }
/* maxps/minps return their second operand when either is NaN: it is a. */
SL_V_INLINE sl_v sl_v_max(sl_v a, sl_v b) { return _mm_max_ps(b, a); }
SL_V_INLINE sl_v sl_v_min(sl_v a, sl_v b) { return _mm_min_ps(b, a); }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return sl_v_min(sl_v_max(v, lo), hi); }
SL_V_INLINE sl_v sl_v_abs(sl_v a) { return _mm_andnot_ps(_mm_set1_ps(-0.0f), a); }
SL_V_INLINE sl_v sl_v_sqrt(sl_v a) { return _mm_sqrt_ps(a); }
SL_V_INLINE sl_v sl_v_getexp(sl_v a) {
  __m128i e = _mm_and_si128(_mm_srli_epi32(_mm_castps_si128(a), 23), _mm_set1_epi32(0xFF));
  return _mm_cvtepi32_ps(_mm_sub_epi32(e, _mm_set1_epi32(127)));
}
SL_V_INLINE sl_v sl_v_getmant(sl_v a) {
  __m128i m = _mm_and_si128(_mm_castps_si128(a), _mm_set1_epi32(0x007FFFFF));
  return _mm_castsi128_ps(_mm_or_si128(m, _mm_set1_epi32(0x3F800000)));
}
SL_V_INLINE sl_vm sl_v_lt(sl_v a, sl_v b) { return _mm_cmplt_ps(a, b); }
SL_V_INLINE sl_vm sl_v_eq(sl_v a, sl_v b) { return _mm_cmpeq_ps(a, b); }
SL_V_INLINE sl_v sl_v_select(sl_vm m, sl_v a, sl_v b) { return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b)); }
SL_V_INLINE sl_vm sl_v_tail_mask(sl_v_tail n) {
  return _mm_castsi128_ps(_mm_cmplt_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32((int)n)));
}
SL_V_INLINE sl_v sl_v_exp2i(sl_v t) {
  __m128i bits = _mm_add_epi32(_mm_castps_si128(t), _mm_set1_epi32(127));
  return _mm_castsi128_ps(_mm_slli_epi32(bits, 23));
}
/* Lanes k .. k + 3 of a then b, for a constant k, by shuffles (SSE2 has no alignr). */
SL_V_INLINE sl_v sl_v_ext(sl_v a, sl_v b, int k) {
  switch (k) {
    case 1: return _mm_shuffle_ps(a, _mm_shuffle_ps(a, b, _MM_SHUFFLE(0, 0, 3, 3)), _MM_SHUFFLE(2, 0, 2, 1));
    case 2: return _mm_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 3, 2));
    case 3: return _mm_shuffle_ps(_mm_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 3, 3)), b, _MM_SHUFFLE(2, 1, 2, 0));
    default: return a;
  }
}
SL_V_INLINE sl_v sl_v_unzip_even(sl_v a, sl_v b) { return _mm_shuffle_ps(a, b, 0x88); }
SL_V_INLINE sl_v sl_v_unzip_odd(sl_v a, sl_v b) { return _mm_shuffle_ps(a, b, 0xDD); }
SL_V_INLINE sl_v sl_v_zip_lo(sl_v a, sl_v b) { return _mm_unpacklo_ps(a, b); }
SL_V_INLINE sl_v sl_v_zip_hi(sl_v a, sl_v b) { return _mm_unpackhi_ps(a, b); }
SL_V_INLINE float sl_v_hsum(sl_v v) {
  sl_v s = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
SL_V_INLINE float sl_v_hmax(sl_v v) {
  sl_v s = _mm_max_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_shuffle_ps(s, s, 1)));
}

#endif
