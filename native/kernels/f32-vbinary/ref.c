/* Binary ops by their definitions, then the clamp (which keeps NaN), then the PRELU if a slope is given. */
#include "../kernels.h"

void sl_f32_vbinary_ref(sl_binary_op_t op, const float* a, size_t a_step, const float* b, size_t b_step, float* y,
                        size_t n, const sl_minmax_t* mm, const float* slope) {
  for (size_t i = 0; i < n; i++) {
    float u = a[i * a_step], w = b[i * b_step], v = 0.0f;
    switch (op) {
      case SL_BINARY_ADD: v = u + w; break;
      case SL_BINARY_SUB: v = u - w; break;
      case SL_BINARY_MUL: v = u * w; break;
      case SL_BINARY_DIV: v = u / w; break;
      case SL_BINARY_PRELU: v = u > 0.0f ? u : u * w; break;
    }
    v = v < mm->min ? mm->min : (v > mm->max ? mm->max : v);
    y[i] = slope != NULL && !(v > 0.0f) ? v * *slope : v;
  }
}
