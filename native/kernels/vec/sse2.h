/* Vector operations for the shared microkernel templates: SSE2, 4 floats, no
 * FMA. SSE2 is the x86-64 baseline, so these serve every x86-64 CPU. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <emmintrin.h>
#include <string.h>

#define SL_V_WIDTH 4
#define SL_V_TARGET
#define SL_V_INLINE static inline __attribute__((always_inline))

typedef __m128 sl_v;
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
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return _mm_add_ps(acc, _mm_mul_ps(a, b)); }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return _mm_min_ps(_mm_max_ps(v, lo), hi); }

#endif
