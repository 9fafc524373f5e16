/* AVX2+FMA depthwise microkernel: 32 outputs per register tile, every tap one
 * shifted load and FMA per vector. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../tile/avx2.h"

SL_AVX2_INLINE void dw_tile(const int NV, const int tail, __m256i mask, size_t taps, const uint32_t* tap_offset,
                            const float* x, const float* w, float bias, float* y, const sl_minmax_t* mm) {
  __m256 acc[4];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) acc[v] = _mm256_set1_ps(bias);
  for (size_t t = 0; t < taps; t++) {
    const float* xp = x + tap_offset[t];
    __m256 wv = _mm256_broadcast_ss(w + t);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      __m256 xv = (tail && v == NV - 1) ? _mm256_maskload_ps(xp + 8 * v, mask) : _mm256_loadu_ps(xp + 8 * v);
      acc[v] = _mm256_fmadd_ps(wv, xv, acc[v]);
    }
  }
  const __m256 vmin = _mm256_broadcast_ss(&mm->min), vmax = _mm256_broadcast_ss(&mm->max);
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) {
    __m256 o = _mm256_min_ps(_mm256_max_ps(acc[v], vmin), vmax);
    if (tail && v == NV - 1)
      _mm256_maskstore_ps(y + 8 * v, mask, o);
    else
      _mm256_storeu_ps(y + 8 * v, o);
  }
}

SL_AVX2 void sl_f32_dwconv_ukernel__avx2(size_t count, size_t taps, const uint32_t* tap_offset, const float* x,
                                         const float* w, float bias, float* y, const sl_minmax_t* mm) {
#define DW_TILE(nv, tail, mask, p) dw_tile(nv, tail, mask, taps, tap_offset, x + (p), w, bias, y + (p), mm)
  SL_AVX2_PIXEL_LOOP(4, count, DW_TILE);
#undef DW_TILE
}

#endif
