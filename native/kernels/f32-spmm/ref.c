#include <string.h>

#include "../kernels.h"

void sl_f32_spmm_ref(const sl_group_sparse_f32_t* w, const float* bias, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act) {
  for (uint32_t g = 0; g < w->group_rows; g++) {
    for (uint32_t j = 0; j < w->r; j++) {
      uint32_t row = g * w->r + j;
      if (row >= w->rows) break; /* zero-padded tail rows have no output channel */
      uint32_t oc = w->out_perm != NULL ? w->out_perm[row] : row;
      float* out = y + (size_t)oc * pixels;
      float b = bias != NULL ? bias[oc] : 0.0f;
      for (size_t p = 0; p < pixels; p++) out[p] = b;
      for (uint32_t e = w->row_ptr[g]; e < w->row_ptr[g + 1]; e++) {
        float v = w->values[(size_t)e * w->r + j];
        const float* in = x + (size_t)w->col_idx[e] * pixels;
        for (size_t p = 0; p < pixels; p++) out[p] += v * in[p];
      }
      for (size_t p = 0; p < pixels; p++) out[p] = sl_activation_scalar(act, out[p]);
    }
  }
}
