/* The SSE2 register tile shared by the spmm and gemm microkernels: R output
 * rows x NV vectors of 4 pixels (see tile/avx2.h). SSE2 is the x86-64
 * baseline, so this also serves CPUs without AVX2; it has no FMA. */
#ifndef SL_TILE_SSE2_H
#define SL_TILE_SSE2_H

#include <emmintrin.h>
#include <string.h>

#include "../kernels.h"

#define SL_SSE2_INLINE static inline __attribute__((always_inline))

/* Two floats at any alignment (memcpy compiles to one movsd). */
SL_SSE2_INLINE __m128 sl_sse2_load2(const float* p) {
  double d;
  memcpy(&d, p, sizeof(d));
  return _mm_castpd_ps(_mm_set_sd(d));
}

SL_SSE2_INLINE void sl_sse2_store2(float* p, __m128 v) {
  double d = _mm_cvtsd_f64(_mm_castps_pd(v));
  memcpy(p, &d, sizeof(d));
}

/* n in 1..4 floats; lanes past n read as zero and are never written. */
SL_SSE2_INLINE __m128 sl_sse2_load_partial(const float* p, size_t n) {
  switch (n) {
    case 1: return _mm_load_ss(p);
    case 2: return sl_sse2_load2(p);
    case 3: return _mm_movelh_ps(sl_sse2_load2(p), _mm_load_ss(p + 2));
    default: return _mm_loadu_ps(p);
  }
}

SL_SSE2_INLINE void sl_sse2_store_partial(float* p, __m128 v, size_t n) {
  switch (n) {
    case 1: _mm_store_ss(p, v); break;
    case 2: sl_sse2_store2(p, v); break;
    case 3:
      sl_sse2_store2(p, v);
      _mm_store_ss(p + 2, _mm_movehl_ps(v, v));
      break;
    default: _mm_storeu_ps(p, v);
  }
}

/* As sl_avx2_tile; `last` is the lane count of the last vector when `tail` is set. */
SL_SSE2_INLINE void sl_sse2_tile(const int R, const int NV, const int dense, const int tail, size_t last,
                                 const float* w, size_t cols, const float* x, const uint32_t* x_offset,
                                 size_t x_stride, float* const* out, size_t valid, const sl_minmax_t* mm) {
  __m128 acc[8][4];
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) {
    __m128 b = _mm_load1_ps(w + j);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[j][v] = b;
  }
  w += R;
  const float* xp = x;
  for (size_t c = 0; c < cols; c++, w += R) {
    if (!dense) xp = x + x_offset[c];
    __m128 xv[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
      xv[v] = (tail && v == NV - 1) ? sl_sse2_load_partial(xp + 4 * v, last) : _mm_loadu_ps(xp + 4 * v);
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) {
      __m128 wj = _mm_load1_ps(w + j);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[j][v] = _mm_add_ps(acc[j][v], _mm_mul_ps(wj, xv[v]));
    }
    if (dense) xp += x_stride;
  }
  const __m128 vmin = _mm_load1_ps(&mm->min), vmax = _mm_load1_ps(&mm->max);
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) {
    if ((size_t)j >= valid) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      __m128 o = _mm_min_ps(_mm_max_ps(acc[j][v], vmin), vmax);
      if (tail && v == NV - 1)
        sl_sse2_store_partial(out[j] + 4 * v, o, last);
      else
        _mm_storeu_ps(out[j] + 4 * v, o);
    }
  }
}

/* As SL_AVX2_PIXEL_LOOP, with 4-pixel vectors. */
#define SL_SSE2_PIXEL_LOOP(NV, pixels, TILE)                               \
  do {                                                                     \
    size_t p_ = 0;                                                         \
    for (; p_ + 4 * (NV) <= (pixels); p_ += 4 * (NV)) TILE(NV, 0, 4, p_);  \
    size_t rem_ = (pixels) - p_;                                           \
    if (rem_ == 0) break;                                                  \
    size_t nv_ = (rem_ + 3) / 4, last_ = rem_ - 4 * (nv_ - 1);             \
    if (nv_ == 1) TILE(1, 1, last_, p_);                                   \
    if ((NV) >= 2 && nv_ == 2) TILE(2, 1, last_, p_);                      \
    if ((NV) >= 3 && nv_ == 3) TILE(3, 1, last_, p_);                      \
    if ((NV) >= 4 && nv_ == 4) TILE(4, 1, last_, p_);                      \
  } while (0)

#endif
