/* Bilinear resampling along a row by its definition (sl_f32_bilinear_row_ukernel_fn). */
#include "../kernels.h"

void sl_f32_bilinear_row_ref(size_t n, const float* src, size_t src_n, const sl_bilinear_cols_t* cols, float* out) {
  (void)src_n;
  for (size_t i = 0; i < n; i++) {
    const int32_t base = cols->base[i / SL_BILINEAR_BLOCK];
    const float* s = base >= 0 ? src + base : src;
    out[i] = s[cols->lo[i]] * (1.0f - cols->frac[i]) + s[cols->hi[i]] * cols->frac[i];
  }
}
