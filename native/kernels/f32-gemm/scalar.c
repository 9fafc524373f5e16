/* Portable gemm microkernel: panels of 4 rows, one pixel at a time. */
#include "../kernels.h"

void sl_f32_gemm_ukernel_4x1__scalar(size_t pixels, size_t rows, size_t k, const float* x, size_t x_stride,
                                     const float* panels, float* y, size_t y_stride, const sl_minmax_t* mm) {
  enum { MR = 4 };
  for (size_t r0 = 0; r0 < rows; r0 += MR, panels += MR * (k + 1)) {
    size_t valid = rows - r0 < MR ? rows - r0 : MR;
    for (size_t p = 0; p < pixels; p++) {
      float acc[MR];
      for (int j = 0; j < MR; j++) acc[j] = panels[j];
      for (size_t c = 0; c < k; c++) {
        float xv = x[c * x_stride + p];
        for (int j = 0; j < MR; j++) acc[j] += panels[MR + c * MR + j] * xv;
      }
      for (size_t j = 0; j < valid; j++) {
        float v = acc[j] < mm->min ? mm->min : (acc[j] > mm->max ? mm->max : acc[j]);
        y[(r0 + j) * y_stride + p] = v;
      }
    }
  }
}
