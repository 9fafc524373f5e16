/* The output transform by its matrix A^T (f32-winograd_in/matrices.h), in double, then the bias and
 * the clamp. */
#include "../f32-winograd_in/matrices.h"
#include "../kernels.h"

void sl_f32_winograd_out_ref(uint32_t m, size_t tiles, size_t channels, const float* mt, size_t m_point_stride,
                             size_t m_channel_stride, const float* bias, float* y, size_t y_row_stride,
                             size_t y_channel_stride, size_t rows, size_t cols, const sl_minmax_t* mm) {
  const size_t a = m + 2;
  for (size_t c = 0; c < channels; c++)
    for (size_t t = 0; t < tiles; t++)
      for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < m && m * t + j < cols; j++) {
          double sum = bias[c];
          for (size_t k = 0; k < a; k++)
            for (size_t l = 0; l < a; l++) {
              double aik = m == 2 ? sl_wino_at2[i][k] : sl_wino_at4[i][k], ajl = m == 2 ? sl_wino_at2[j][l] : sl_wino_at4[j][l];
              if (aik != 0.0 && ajl != 0.0)
                sum += aik * ajl * mt[(k * a + l) * m_point_stride + c * m_channel_stride + t];
            }
          float o = (float)sum;
          o = o < mm->min ? mm->min : o; /* the kernels' clamp: NaN stays */
          o = mm->max < o ? mm->max : o;
          y[c * y_channel_stride + i * y_row_stride + m * t + j] = o;
        }
}
