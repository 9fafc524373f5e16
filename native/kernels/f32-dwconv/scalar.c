/* Portable depthwise microkernel: the 1-D multi-tap correlation, one output at a time. */
#include "../kernels.h"

void sl_f32_dwconv_ukernel__scalar(size_t count, size_t taps, const uint32_t* tap_offset, const float* x,
                                   const float* w, float bias, float* y, const sl_minmax_t* mm) {
  for (size_t i = 0; i < count; i++) {
    float acc = bias;
    for (size_t t = 0; t < taps; t++) acc += w[t] * x[i + tap_offset[t]];
    y[i] = acc < mm->min ? mm->min : (acc > mm->max ? mm->max : acc);
  }
}
