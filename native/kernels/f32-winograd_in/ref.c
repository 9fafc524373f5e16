/* The input transform by its matrix B^T (matrices.h), in double. */
#include "../kernels.h"
#include "matrices.h"

void sl_f32_winograd_in_ref(uint32_t m, size_t tiles, size_t channels, const float* x, size_t x_row_stride,
                            size_t x_channel_stride, float* v, size_t v_point_stride, size_t v_channel_stride) {
  const size_t a = m + 2;
  for (size_t c = 0; c < channels; c++)
    for (size_t t = 0; t < tiles; t++)
      for (size_t i = 0; i < a; i++)
        for (size_t j = 0; j < a; j++) {
          double sum = 0.0;
          for (size_t k = 0; k < a; k++)
            for (size_t l = 0; l < a; l++) {
              double bik = m == 2 ? sl_wino_bt2[i][k] : sl_wino_bt4[i][k], bjl = m == 2 ? sl_wino_bt2[j][l] : sl_wino_bt4[j][l];
              if (bik != 0.0 && bjl != 0.0) /* as the kernels: no term for a zero coefficient (NaN stays put) */
                sum += bik * bjl * x[c * x_channel_stride + k * x_row_stride + m * t + l];
            }
          v[(i * a + j) * v_point_stride + c * v_channel_stride + t] = (float)sum;
        }
}
