/* AVX2+FMA spmm microkernels: MR pixels x r rows per register tile. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../tile/avx2.h"

SL_AVX2_INLINE void spmm_avx2(const int R, const int NV, size_t pixels, size_t blocks, const float* x,
                              const float* w, const uint32_t* x_offset, const uint32_t* nz_start,
                              const uint32_t* out_row, float* y, size_t y_stride, const sl_minmax_t* mm) {
  /* Pixel tiles outermost: a tile's input columns stay in L1 while every
   * block's weights stream past them. */
#define SPMM_TILE(nv, tail, mask, p)                                                             \
  do {                                                                                           \
    const float* w_ = w;                                                                         \
    for (size_t b = 0; b < blocks; b++) {                                                        \
      float* out[8];                                                                             \
      for (int j = 0; j < R; j++) out[j] = y + (size_t)out_row[b * R + j] * y_stride + (p);      \
      size_t cols = nz_start[b + 1] - nz_start[b];                                               \
      sl_avx2_tile(R, nv, 0, tail, mask, w_, cols, x + (p), x_offset + (nz_start[b] - nz_start[0]), \
                   0, out, R, mm);                                                               \
      w_ += R + cols * R;                                                                        \
    }                                                                                            \
  } while (0)
  SL_AVX2_PIXEL_LOOP(NV, pixels, SPMM_TILE);
#undef SPMM_TILE
}

#define AVX2_SPMM(MR, R)                                                                                   \
  SL_AVX2 void sl_f32_spmm_ukernel_##MR##x##R##__avx2(size_t pixels, size_t blocks, const float* x,        \
                                                     const float* w, const uint32_t* x_offset,              \
                                                     const uint32_t* nz_start, const uint32_t* out_row,     \
                                                     float* y, size_t y_stride, const sl_minmax_t* mm) {    \
    spmm_avx2(R, (MR) / 8, pixels, blocks, x, w, x_offset, nz_start, out_row, y, y_stride, mm);             \
  }
AVX2_SPMM(32, 1)
AVX2_SPMM(32, 2)
AVX2_SPMM(24, 4)
AVX2_SPMM(8, 8)

#endif
