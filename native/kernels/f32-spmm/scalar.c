/* Portable spmm microkernels: one pixel at a time, r accumulators. */
#include "../kernels.h"

static inline float clampf(float v, const sl_minmax_t* mm) {
  return v < mm->min ? mm->min : (v > mm->max ? mm->max : v);
}

static inline void spmm_scalar(uint32_t r, size_t pixels, size_t blocks, const float* x, const float* w,
                               const uint32_t* x_offset, const uint32_t* nz_start, const uint32_t* out_row,
                               float* y, size_t y_stride, const sl_minmax_t* mm) {
  for (size_t b = 0; b < blocks; b++) {
    uint32_t nnz = nz_start[b + 1] - nz_start[b];
    for (size_t p = 0; p < pixels; p++) {
      float acc[8];
      for (uint32_t j = 0; j < r; j++) acc[j] = w[j];
      const float* wv = w + r;
      for (uint32_t e = 0; e < nnz; e++, wv += r) {
        float xv = x[x_offset[e] + p];
        for (uint32_t j = 0; j < r; j++) acc[j] += wv[j] * xv;
      }
      for (uint32_t j = 0; j < r; j++) y[out_row[j] * y_stride + p] = clampf(acc[j], mm);
    }
    w += r + (size_t)nnz * r;
    x_offset += nnz;
    out_row += r;
  }
}

#define SCALAR_SPMM(R)                                                                              \
  void sl_f32_spmm_ukernel_##R##__scalar(size_t pixels, size_t blocks, const float* x, const float* w, \
                                         const uint32_t* x_offset, const uint32_t* nz_start,          \
                                         const uint32_t* out_row, float* y, size_t y_stride,          \
                                         const sl_minmax_t* mm) {                                     \
    spmm_scalar(R, pixels, blocks, x, w, x_offset, nz_start, out_row, y, y_stride, mm);              \
  }
SCALAR_SPMM(1)
SCALAR_SPMM(2)
SCALAR_SPMM(4)
SCALAR_SPMM(8)
