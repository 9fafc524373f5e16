/* AVX2+FMA depthwise microkernel: one output row at a time, 32 pixels per tile. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../tile/avx2.h"

SL_AVX2_INLINE void dw_tile(const int NV, const int tail, __m256i mask, const sl_dwconv_shape_t* s,
                            const float* x, const float* w, float bias, float* y, const sl_minmax_t* mm) {
  __m256 acc[4];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) acc[v] = _mm256_set1_ps(bias);
  for (uint32_t ky = 0; ky < s->kernel_h; ky++) {
    const float* row = x + (size_t)ky * s->row_len;
    for (uint32_t kx = 0; kx < s->kernel_w; kx++) {
      const float* xp = row + (kx % s->stride_w) * s->phase_stride + kx / s->stride_w;
      __m256 wv = _mm256_broadcast_ss(w + ky * s->kernel_w + kx);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        __m256 xv = (tail && v == NV - 1) ? _mm256_maskload_ps(xp + 8 * v, mask) : _mm256_loadu_ps(xp + 8 * v);
        acc[v] = _mm256_fmadd_ps(wv, xv, acc[v]);
      }
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

SL_AVX2 void sl_f32_dwconv_ukernel__avx2(const sl_dwconv_shape_t* s, const float* x, const float* w, float bias,
                                         float* y, const sl_minmax_t* mm) {
  for (uint32_t oy = 0; oy < s->out_h; oy++) {
    const float* xr = x + (size_t)oy * s->stride_h * s->row_len;
    float* yr = y + (size_t)oy * s->out_w;
#define DW_TILE(nv, tail, mask, p) dw_tile(nv, tail, mask, s, xr + (p), w, bias, yr + (p), mm)
    SL_AVX2_PIXEL_LOOP(4, s->out_w, DW_TILE);
#undef DW_TILE
  }
}

#endif
