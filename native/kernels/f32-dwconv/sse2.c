/* SSE2 depthwise microkernel: one output row at a time, 16 pixels per tile. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../tile/sse2.h"

SL_SSE2_INLINE void dw_tile(const int NV, const int tail, size_t last, const sl_dwconv_shape_t* s,
                            const float* x, const float* w, float bias, float* y, const sl_minmax_t* mm) {
  __m128 acc[4];
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) acc[v] = _mm_set1_ps(bias);
  for (uint32_t ky = 0; ky < s->kernel_h; ky++) {
    const float* row = x + (size_t)ky * s->row_len;
    for (uint32_t kx = 0; kx < s->kernel_w; kx++) {
      const float* xp = row + (kx % s->stride_w) * s->phase_stride + kx / s->stride_w;
      __m128 wv = _mm_load1_ps(w + ky * s->kernel_w + kx);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        __m128 xv = (tail && v == NV - 1) ? sl_sse2_load_partial(xp + 4 * v, last) : _mm_loadu_ps(xp + 4 * v);
        acc[v] = _mm_add_ps(acc[v], _mm_mul_ps(wv, xv));
      }
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

void sl_f32_dwconv_ukernel__sse2(const sl_dwconv_shape_t* s, const float* x, const float* w, float bias,
                                 float* y, const sl_minmax_t* mm) {
  for (uint32_t oy = 0; oy < s->out_h; oy++) {
    const float* xr = x + (size_t)oy * s->stride_h * s->row_len;
    float* yr = y + (size_t)oy * s->out_w;
#define DW_TILE(nv, tail, last, p) dw_tile(nv, tail, last, s, xr + (p), w, bias, yr + (p), mm)
    SL_SSE2_PIXEL_LOOP(4, s->out_w, DW_TILE);
#undef DW_TILE
  }
}

#endif
