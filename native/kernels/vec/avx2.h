/* Vector operations for the shared microkernel templates: AVX2 + FMA, 8 floats.
 * Function-level target attributes let one binary carry these next to SSE2 code;
 * the kernel list only selects them when cpuid reports AVX2 and FMA. */
#ifndef SL_VEC_H
#define SL_VEC_H

#include <immintrin.h>

#define SL_V_WIDTH 8
#define SL_V_TARGET __attribute__((target("avx2,fma")))
#define SL_V_INLINE static inline __attribute__((always_inline)) SL_V_TARGET

typedef __m256 sl_v;
typedef __m256i sl_v_tail; /* lanes [0, n) set */

static const int32_t sl_v_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

SL_V_INLINE sl_v_tail sl_v_tail_of(size_t n) {
  return _mm256_loadu_si256((const __m256i*)(sl_v_mask_table + SL_V_WIDTH - n));
}
SL_V_INLINE sl_v sl_v_load(const float* p) { return _mm256_loadu_ps(p); }
SL_V_INLINE sl_v sl_v_load_tail(const float* p, sl_v_tail t) { return _mm256_maskload_ps(p, t); }
SL_V_INLINE void sl_v_store(float* p, sl_v v) { _mm256_storeu_ps(p, v); }
SL_V_INLINE void sl_v_store_tail(float* p, sl_v v, sl_v_tail t) { _mm256_maskstore_ps(p, t, v); }
SL_V_INLINE sl_v sl_v_splat(const float* p) { return _mm256_broadcast_ss(p); }
SL_V_INLINE sl_v sl_v_fma(sl_v a, sl_v b, sl_v acc) { return _mm256_fmadd_ps(a, b, acc); }
SL_V_INLINE sl_v sl_v_clamp(sl_v v, sl_v lo, sl_v hi) { return _mm256_min_ps(_mm256_max_ps(v, lo), hi); }

#endif
