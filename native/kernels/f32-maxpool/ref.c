/* Max pooling by its definition: a NaN anywhere in the window is the output. */
#include <math.h>

#include "../kernels.h"

void sl_f32_maxpool_ref(size_t out_rows, size_t n, size_t kh, size_t kw, size_t stride, const float* x, size_t x_stride,
                        size_t x_step, float* y, size_t y_stride) {
  for (size_t o = 0; o < out_rows; o++)
    for (size_t i = 0; i < n; i++) {
      float acc = -INFINITY;
      for (size_t r = 0; r < kh; r++)
        for (size_t j = 0; j < kw; j++) {
          float v = x[o * x_step + r * x_stride + i * stride + j];
          acc = isnan(v) || isnan(acc) ? NAN : (v > acc ? v : acc);
        }
      y[o * y_stride + i] = acc;
    }
}
