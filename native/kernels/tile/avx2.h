/* The AVX2+FMA register tile shared by the spmm and gemm microkernels:
 * R output rows x NV vectors of 8 pixels, accumulators in registers. Per
 * stored column it loads NV pixel vectors once and reuses each for R FMAs
 * with broadcast weights: the FMA-per-load gain that group sparsity buys.
 * Built with function-level target attributes, so one binary also runs on
 * CPUs without AVX2 (the list only selects these when cpuid reports it). */
#ifndef SL_TILE_AVX2_H
#define SL_TILE_AVX2_H

#include <immintrin.h>

#include "../kernels.h"

#define SL_AVX2 __attribute__((target("avx2,fma")))
#define SL_AVX2_INLINE static inline __attribute__((always_inline)) SL_AVX2

static const int32_t sl_avx2_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Lanes [0, n) set, n in 1..8. */
SL_AVX2_INLINE __m256i sl_avx2_mask(size_t n) {
  return _mm256_loadu_si256((const __m256i*)(sl_avx2_mask_table + 8 - n));
}

/* w: R biases then R weights per column. Columns are x + x_offset[c] (sparse)
 * or x + c * x_stride (dense). The last vector is masked when `tail` is set.
 * Rows j >= valid are computed but not stored (zero rows of a gemm panel). */
SL_AVX2_INLINE void sl_avx2_tile(const int R, const int NV, const int dense, const int tail, __m256i mask,
                                 const float* w, size_t cols, const float* x, const uint32_t* x_offset,
                                 size_t x_stride, float* const* out, size_t valid, const sl_minmax_t* mm) {
  __m256 acc[8][4];
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) {
    __m256 b = _mm256_broadcast_ss(w + j);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[j][v] = b;
  }
  w += R;
  const float* xp = x;
  for (size_t c = 0; c < cols; c++, w += R) {
    if (!dense) xp = x + x_offset[c];
    __m256 xv[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++)
      xv[v] = (tail && v == NV - 1) ? _mm256_maskload_ps(xp + 8 * v, mask) : _mm256_loadu_ps(xp + 8 * v);
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) {
      __m256 wj = _mm256_broadcast_ss(w + j);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[j][v] = _mm256_fmadd_ps(wj, xv[v], acc[j][v]);
    }
    if (dense) xp += x_stride;
  }
  const __m256 vmin = _mm256_broadcast_ss(&mm->min), vmax = _mm256_broadcast_ss(&mm->max);
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) {
    if ((size_t)j >= valid) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      __m256 o = _mm256_min_ps(_mm256_max_ps(acc[j][v], vmin), vmax);
      if (tail && v == NV - 1)
        _mm256_maskstore_ps(out[j] + 8 * v, mask, o);
      else
        _mm256_storeu_ps(out[j] + 8 * v, o);
    }
  }
}

/* Calls TILE(nv, tail, mask, p) over [0, pixels): full NV-vector tiles, then
 * one tile of the remaining vectors with the last one masked. */
#define SL_AVX2_PIXEL_LOOP(NV, pixels, TILE)                                  \
  do {                                                                        \
    size_t p_ = 0;                                                            \
    __m256i mask_ = _mm256_setzero_si256();                                   \
    for (; p_ + 8 * (NV) <= (pixels); p_ += 8 * (NV)) TILE(NV, 0, mask_, p_); \
    size_t rem_ = (pixels) - p_;                                              \
    if (rem_ == 0) break;                                                     \
    size_t nv_ = (rem_ + 7) / 8;                                              \
    mask_ = sl_avx2_mask(rem_ - 8 * (nv_ - 1));                               \
    if (nv_ == 1) TILE(1, 1, mask_, p_);                                      \
    if ((NV) >= 2 && nv_ == 2) TILE(2, 1, mask_, p_);                         \
    if ((NV) >= 3 && nv_ == 3) TILE(3, 1, mask_, p_);                         \
    if ((NV) >= 4 && nv_ == 4) TILE(4, 1, mask_, p_);                         \
  } while (0)

#endif
