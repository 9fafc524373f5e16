/* AVX2+FMA gemm microkernel: panels of 4 rows x 24 pixels per register tile. */
#include "../kernels.h"
#if SL_ARCH_X86
#include "../tile/avx2.h"

SL_AVX2 void sl_f32_gemm_ukernel_4x24__avx2(size_t pixels, size_t rows, size_t k, const float* x,
                                            size_t x_stride, const float* panels, float* y, size_t y_stride,
                                            const sl_minmax_t* mm) {
  enum { MR = 4, NV = 3 };
#define GEMM_TILE(nv, tail, mask, p)                                                          \
  do {                                                                                        \
    const float* panel = panels;                                                              \
    for (size_t r0 = 0; r0 < rows; r0 += MR, panel += MR * (k + 1)) {                         \
      float* out[MR];                                                                         \
      for (int j = 0; j < MR; j++) out[j] = y + (r0 + j < rows ? r0 + j : r0) * y_stride + (p);                    \
      sl_avx2_tile(MR, nv, 1, tail, mask, panel, k, x + (p), NULL, x_stride, out, rows - r0, mm); \
    }                                                                                         \
  } while (0)
  SL_AVX2_PIXEL_LOOP(NV, pixels, GEMM_TILE);
#undef GEMM_TILE
}

#endif
