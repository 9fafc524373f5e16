/* Portable depthwise microkernel over the padded, phase-split plane. */
#include "../kernels.h"

void sl_f32_dwconv_ukernel__scalar(const sl_dwconv_shape_t* s, const float* x, const float* w, float bias,
                                   float* y, const sl_minmax_t* mm) {
  for (uint32_t oy = 0; oy < s->out_h; oy++) {
    for (uint32_t ox = 0; ox < s->out_w; ox++) {
      float acc = bias;
      for (uint32_t ky = 0; ky < s->kernel_h; ky++) {
        const float* row = x + (size_t)(oy * s->stride_h + ky) * s->row_len + ox;
        for (uint32_t kx = 0; kx < s->kernel_w; kx++)
          acc += w[ky * s->kernel_w + kx] * row[(kx % s->stride_w) * s->phase_stride + kx / s->stride_w];
      }
      y[(size_t)oy * s->out_w + ox] = acc < mm->min ? mm->min : (acc > mm->max ? mm->max : acc);
    }
  }
}
