/* SSE2 depthwise microkernel: 16 outputs per register tile (see avx2.c). */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../tile/sse2.h"

SL_SSE2_INLINE void dw_tile(const int NV, const int tail, size_t last, size_t taps, const uint32_t* tap_offset,
                            const float* x, const float* w, float bias, float* y, const sl_minmax_t* mm) {
  __m128 acc[4];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) acc[v] = _mm_set1_ps(bias);
  for (size_t t = 0; t < taps; t++) {
    const float* xp = x + tap_offset[t];
    __m128 wv = _mm_load1_ps(w + t);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      __m128 xv = (tail && v == NV - 1) ? sl_sse2_load_partial(xp + 4 * v, last) : _mm_loadu_ps(xp + 4 * v);
      acc[v] = _mm_add_ps(acc[v], _mm_mul_ps(wv, xv));
    }
  }
  const __m128 vmin = _mm_load1_ps(&mm->min), vmax = _mm_load1_ps(&mm->max);
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) {
    __m128 o = _mm_min_ps(_mm_max_ps(acc[v], vmin), vmax);
    if (tail && v == NV - 1)
      sl_sse2_store_partial(y + 4 * v, o, last);
    else
      _mm_storeu_ps(y + 4 * v, o);
  }
}

void sl_f32_dwconv_ukernel__sse2(size_t count, size_t taps, const uint32_t* tap_offset, const float* x,
                                 const float* w, float bias, float* y, const sl_minmax_t* mm) {
#define DW_TILE(nv, tail, last, p) dw_tile(nv, tail, last, taps, tap_offset, x + (p), w, bias, y + (p), mm)
  SL_SSE2_PIXEL_LOOP(4, count, DW_TILE);
#undef DW_TILE
}

#endif
