#include "../kernels.h"

void sl_f32_gemm_ref(const float* w, const float* bias, size_t rows, size_t cols, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act) {
  for (size_t o = 0; o < rows; o++) {
    float* out = y + o * pixels;
    float b = bias != NULL ? bias[o] : 0.0f;
    for (size_t p = 0; p < pixels; p++) out[p] = b;
    for (size_t k = 0; k < cols; k++) {
      float v = w[o * cols + k];
      const float* in = x + k * pixels;
      for (size_t p = 0; p < pixels; p++) out[p] += v * in[p];
    }
    for (size_t p = 0; p < pixels; p++) out[p] = sl_activation_scalar(act, out[p]);
  }
}
