/* The matrix microkernels (spmm, gemm, depthwise), written once over the vector operations of
 * vec/<isa>.h, which isa/<isa>.c includes first: spmm and gemm share one register tile, and
 * depthwise has its own. A new ISA brings a vec header, one isa/<isa>.c and its lines in the
 * lists, not new loops.
 *
 * What a vec header provides (SL_V_WIDTH lanes of float):
 *   sl_v, sl_vm (a lane mask), sl_v_tail (lanes [0, n) of a partial vector), sl_v_tail_of(n)
 *   load/store, load_tail/store_tail (lanes past the tail read as 0, never written), splat(p), dup(f)
 *   add sub mul div, fma(a, b, acc) = acc + a * b (fused where the ISA has it), abs
 *   max(a, b) = a < b ? b : a and min(a, b) = b < a ? b : a: a NaN in a stays, on every ISA
 *   clamp(v, lo, hi) = min(max(v, lo), hi): a NaN in v stays (lo and hi are never NaN)
 *   lt, eq -> sl_vm; select(m, a, b) = m ? a : b; tail_mask(t)
 *   exp2i(t) = 2^n for t = n + 1.5 * 2^23 (integral n in [-126, 127]), by integer adds and shifts
 *   hsum, hmax: the lanes reduced to one float */
#ifndef SL_TEMPLATES_MATRIX_H
#define SL_TEMPLATES_MATRIX_H

#include "../kernels.h"

/* R output rows x NV vectors of pixels, accumulators in registers. Per stored
 * column it loads NV pixel vectors once and reuses each for R FMAs with
 * broadcast weights: the FMA-per-load gain group sparsity buys.
 * w: R biases then R weights per column. Columns are x + x_offset[c] (sparse)
 * or x + c * x_stride (dense). The last vector stops at `tail` when `masked`.
 * Rows j >= valid are computed but not stored (zero rows of a gemm panel). */
SL_V_INLINE void sl_tile(const int R, const int NV, const int dense, const int masked, sl_v_tail tail,
                         const float* w, size_t cols, const float* x, const uint32_t* x_offset, size_t x_stride,
                         float* const* out, size_t valid, const sl_minmax_t* mm) {
  sl_v acc[8][8];
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) {
    sl_v b = sl_v_splat(w + j);
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[j][v] = b;
  }
  w += R;
  const float* xp = x;
  for (size_t c = 0; c < cols; c++, w += R) {
    if (!dense) xp = x + x_offset[c];
    sl_v xv[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      xv[v] = (masked && v == NV - 1) ? sl_v_load_tail(xp + SL_V_WIDTH * v, tail) : sl_v_load(xp + SL_V_WIDTH * v);
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) {
      sl_v wj = sl_v_splat(w + j);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[j][v] = sl_v_fma(wj, xv[v], acc[j][v]);
    }
    if (dense) xp += x_stride;
  }
  const sl_v lo = sl_v_splat(&mm->min), hi = sl_v_splat(&mm->max);
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) {
    if ((size_t)j >= valid) break;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      sl_v o = sl_v_clamp(acc[j][v], lo, hi);
      if (masked && v == NV - 1)
        sl_v_store_tail(out[j] + SL_V_WIDTH * v, o, tail);
      else
        sl_v_store(out[j] + SL_V_WIDTH * v, o);
    }
  }
}

/* Calls TILE(nv, masked, tail, p) over [0, pixels): full NV-vector tiles, then
 * one tile of the remaining vectors with the last one cut at the tail. */
#define SL_PIXEL_LOOP(NV, pixels, TILE)                                             \
  do {                                                                              \
    size_t p_ = 0;                                                                  \
    for (; p_ + SL_V_WIDTH * (NV) <= (pixels); p_ += SL_V_WIDTH * (NV))             \
      TILE(NV, 0, sl_v_tail_of(SL_V_WIDTH), p_);                                    \
    size_t rem_ = (pixels) - p_;                                                    \
    if (rem_ == 0) break;                                                           \
    size_t nv_ = (rem_ + SL_V_WIDTH - 1) / SL_V_WIDTH;                              \
    sl_v_tail tail_ = sl_v_tail_of(rem_ - SL_V_WIDTH * (nv_ - 1));                  \
    if (nv_ == 1) TILE(1, 1, tail_, p_);                                            \
    if ((NV) >= 2 && nv_ == 2) TILE(2, 1, tail_, p_);                               \
    if ((NV) >= 3 && nv_ == 3) TILE(3, 1, tail_, p_);                               \
    if ((NV) >= 4 && nv_ == 4) TILE(4, 1, tail_, p_);                               \
    if ((NV) >= 5 && nv_ == 5) TILE(5, 1, tail_, p_);                               \
    if ((NV) >= 6 && nv_ == 6) TILE(6, 1, tail_, p_);                               \
    if ((NV) >= 7 && nv_ == 7) TILE(7, 1, tail_, p_);                               \
    if ((NV) >= 8 && nv_ == 8) TILE(8, 1, tail_, p_);                               \
  } while (0)

/* spmm: pixel tiles outermost, so a tile's input columns stay in L1 while every
 * block's weights stream past them. */
SL_V_INLINE void sl_spmm(const int R, const int NV, size_t pixels, size_t blocks, const float* x, const float* w,
                         const uint32_t* x_offset, const uint32_t* nz_start, const uint32_t* out_row, float* y,
                         size_t y_stride, const sl_minmax_t* mm) {
#define SPMM_TILE(nv, masked, tail, p)                                                                  \
  do {                                                                                                  \
    const float* w_ = w;                                                                                \
    for (size_t b = 0; b < blocks; b++) {                                                               \
      float* out[8];                                                                                    \
      for (int j = 0; j < R; j++) out[j] = y + (size_t)out_row[b * R + j] * y_stride + (p);             \
      size_t cols = nz_start[b + 1] - nz_start[b];                                                      \
      sl_tile(R, nv, 0, masked, tail, w_, cols, x + (p), x_offset + (nz_start[b] - nz_start[0]), 0, out, R, \
              mm);                                                                                      \
      w_ += R + cols * R;                                                                               \
    }                                                                                                   \
  } while (0)
  SL_PIXEL_LOOP(NV, pixels, SPMM_TILE);
#undef SPMM_TILE
}

/* The definitions the lists' lines expand to (isa/<isa>.c): tiles of PIXELS x ROWS. */
#define SL_DEFINE_spmm(name, PIXELS, ROWS)                                                                   \
  SL_V_TARGET void name(size_t pixels, size_t blocks, const float* x, const float* w, const uint32_t* x_offset, \
                        const uint32_t* nz_start, const uint32_t* out_row, float* y, size_t y_stride,        \
                        const sl_minmax_t* mm) {                                                            \
    sl_spmm(ROWS, (PIXELS) / SL_V_WIDTH, pixels, blocks, x, w, x_offset, nz_start, out_row, y, y_stride, mm); \
  }

/* gemm over panels of ROWS rows: the same tile, columns at a fixed stride, or at x_offset[c]
 * (an implicit convolution's taps over padded planes). Pixels go in blocks whose k input rows
 * fit in L2; within a block each weight panel stays in L1 while it sweeps the block's tiles, so
 * wide layers (transformer FCs, k up to 1536) do not stream their weights from memory once per
 * pixel tile. */
#define SL_GEMM_L2_BYTES (192 * 1024)
SL_V_INLINE void sl_gemm(const int ROWS, const int NV, const int dense, size_t pixels, size_t rows, size_t k,
                         const float* x, size_t x_stride, const uint32_t* x_offset, const float* panels, float* y,
                         size_t y_stride, const sl_minmax_t* mm) {
  const size_t tile = (size_t)SL_V_WIDTH * NV;
  size_t block = SL_GEMM_L2_BYTES / (sizeof(float) * (k + 1)) / tile * tile;
  if (block < tile) block = tile;
  for (size_t p0 = 0; p0 < pixels; p0 += block) {
    size_t n = pixels - p0 < block ? pixels - p0 : block;
    const float* panel = panels;
    for (size_t r0 = 0; r0 < rows; r0 += ROWS, panel += ROWS * (k + 1)) {
#define GEMM_TILE(nv, masked, tail, p)                                                        \
  do {                                                                                        \
    float* out[8];                                                                            \
    for (int j = 0; j < ROWS; j++) out[j] = y + (r0 + j < rows ? r0 + j : r0) * y_stride + p0 + (p); \
    sl_tile(ROWS, nv, dense, masked, tail, panel, k, x + p0 + (p), x_offset, x_stride, out, rows - r0, mm); \
  } while (0)
      SL_PIXEL_LOOP(NV, n, GEMM_TILE);
#undef GEMM_TILE
    }
  }
}

#define SL_DEFINE_gemm(name, PIXELS, ROWS)                                                                   \
  SL_V_TARGET void name(size_t pixels, size_t rows, size_t k, const float* x, size_t x_stride,                \
                        const uint32_t* x_offset, const float* panels, float* y, size_t y_stride,             \
                        const sl_minmax_t* mm) {                                                              \
    if (x_offset == NULL)                                                                                     \
      sl_gemm(ROWS, (PIXELS) / SL_V_WIDTH, 1, pixels, rows, k, x, x_stride, NULL, panels, y, y_stride, mm);   \
    else                                                                                                      \
      sl_gemm(ROWS, (PIXELS) / SL_V_WIDTH, 0, pixels, rows, k, x, 0, x_offset, panels, y, y_stride, mm);      \
  }

/* gemm_nc: output channels along the vectors, pixels (or tokens) along the tile's MR rows. One
 * broadcast input per pixel and column feeds NV FMAs, and no lane idles however few the pixels
 * (a classifier's one, a 7x7 layer's 49). x[p * x_pixel_stride + c * x_k_stride] reads
 * token-major rows and channel-major planes alike; y[p * y_pixel_stride + o * y_channel_stride]
 * is stored as vectors when channels are contiguous, else through a buffer the tile scatters
 * (a channel-major output: MR pixels of each channel are contiguous there). Panels are gemm's,
 * of SL_V_WIDTH * NV rows. */
typedef struct {
  size_t x_pixel_stride, x_k_stride, panel_rows, y_pixel_stride, y_channel_stride;
  const sl_minmax_t* mm;
} sl_nc_args_t;

/* Columns [k0, k0 + k) of one tile. The first chunk starts from the biases, a later one from the
 * partial sums it left in y; only the last clamps. */
SL_V_INLINE void sl_nc_tile(const int MR, const int NV, const int masked, sl_v_tail tail, size_t valid,
                            const sl_nc_args_t* a, size_t k0, size_t k, bool last, const float* x,
                            const float* panel, float* y) {
  const size_t panel_rows = a->panel_rows, x_k_stride = a->x_k_stride, y_pixel_stride = a->y_pixel_stride;
  const bool scatter = a->y_channel_stride != 1;
  sl_v acc[8][4];
  sl_v buf[8][4]; /* the scattered outputs, assigned whole and read as floats (GCC vectors alias their lanes) */
  if (k0 == 0) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
      const sl_v b = sl_v_load(panel + SL_V_WIDTH * v);
#pragma GCC unroll 8
      for (int i = 0; i < MR; i++) acc[i][v] = b;
    }
  } else if (!scatter) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++)
        acc[i][v] = masked && v == NV - 1 ? sl_v_load_tail(y + i * y_pixel_stride + SL_V_WIDTH * v, tail)
                                          : sl_v_load(y + i * y_pixel_stride + SL_V_WIDTH * v);
    }
  } else {
    for (int v = 0; v < NV; v++)
      for (int l = 0; l < SL_V_WIDTH; l++) {
        const size_t o = (size_t)(SL_V_WIDTH * v + l) < valid ? (size_t)(SL_V_WIDTH * v + l) : 0;
        const float* in = y + o * a->y_channel_stride;
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) ((float*)&buf[i][v])[l] = in[i * y_pixel_stride];
      }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = buf[i][v];
    }
  }
  const float* w = panel + panel_rows * (1 + k0);
  x += k0 * x_k_stride;
  size_t c = 0;
  if (MR == 1) {
    /* One pixel (a classifier) streams the weights once: four partial sums over the columns keep
     * enough FMAs in flight where NV chains alone would wait on their latency. */
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[1][v] = acc[2][v] = acc[3][v] = sl_v_dup(0.0f);
    for (; c + 4 <= k; c += 4, w += 4 * panel_rows, x += 4 * x_k_stride) {
#pragma GCC unroll 4
      for (int s = 0; s < 4; s++) {
        const sl_v xs = sl_v_splat(x + s * x_k_stride);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[s][v] = sl_v_fma(sl_v_load(w + s * panel_rows + SL_V_WIDTH * v), xs, acc[s][v]);
      }
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[0][v] = sl_v_add(sl_v_add(acc[0][v], acc[1][v]), sl_v_add(acc[2][v], acc[3][v]));
  }
  for (; c < k; c++, w += panel_rows, x += x_k_stride) {
    sl_v wv[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) wv[v] = sl_v_load(w + SL_V_WIDTH * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const sl_v xi = sl_v_splat(x + i * a->x_pixel_stride);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = sl_v_fma(wv[v], xi, acc[i][v]);
    }
  }
  if (last) {
    const sl_v lo = sl_v_splat(&a->mm->min), hi = sl_v_splat(&a->mm->max);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = sl_v_clamp(acc[i][v], lo, hi);
    }
  }
  if (!scatter) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        if (masked && v == NV - 1)
          sl_v_store_tail(y + i * y_pixel_stride + SL_V_WIDTH * v, acc[i][v], tail);
        else
          sl_v_store(y + i * y_pixel_stride + SL_V_WIDTH * v, acc[i][v]);
      }
    }
    return;
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) buf[i][v] = acc[i][v];
  }
  for (int v = 0; v < NV; v++)
    for (int l = 0; l < SL_V_WIDTH && (size_t)(SL_V_WIDTH * v + l) < valid; l++) {
      float* out = y + (size_t)(SL_V_WIDTH * v + l) * a->y_channel_stride;
#pragma GCC unroll 8
      for (int i = 0; i < MR; i++) out[i * y_pixel_stride] = ((const float*)&buf[i][v])[l];
    }
}

/* Pixels in groups of MR (the last group smaller) over nv vectors of one panel (fewer than its
 * own in a last panel of fewer rows). */
#define SL_NC_TILE(mr, nv, masked, tail, x_, y_) \
  sl_nc_tile(mr, nv, masked, tail, valid, &a, k0, k1 - k0, k1 == k, x_, panel, y_)
#define SL_NC_PIXELS(MR, nv, masked, tail)                                                              \
  do {                                                                                                  \
    size_t p_ = 0;                                                                                      \
    for (; p_ + (MR) <= n; p_ += (MR))                                                                  \
      SL_NC_TILE(MR, nv, masked, tail, xb + p_ * a.x_pixel_stride, yb + p_ * a.y_pixel_stride);         \
    const size_t left_ = n - p_;                                                                        \
    const float* xl_ = xb + p_ * a.x_pixel_stride;                                                      \
    float* yl_ = yb + p_ * a.y_pixel_stride;                                                            \
    if (left_ == 1) SL_NC_TILE(1, nv, masked, tail, xl_, yl_);                                          \
    if ((MR) > 2 && left_ == 2) SL_NC_TILE(2, nv, masked, tail, xl_, yl_);                              \
    if ((MR) > 3 && left_ == 3) SL_NC_TILE(3, nv, masked, tail, xl_, yl_);                              \
    if ((MR) > 4 && left_ == 4) SL_NC_TILE(4, nv, masked, tail, xl_, yl_);                              \
    if ((MR) > 5 && left_ == 5) SL_NC_TILE(5, nv, masked, tail, xl_, yl_);                              \
    if ((MR) > 6 && left_ == 6) SL_NC_TILE(6, nv, masked, tail, xl_, yl_);                              \
    if ((MR) > 7 && left_ == 7) SL_NC_TILE(7, nv, masked, tail, xl_, yl_);                              \
  } while (0)

/* Columns in chunks whose slice of a panel stays in L2 while the pixel tiles sweep it (a 3x3
 * layer of 512 channels has 4608 columns: a whole panel would stream from memory once per
 * tile), the partial sums waiting in y; pixels in blocks whose inputs fit in L2 beside it. A
 * last panel of fewer rows runs only the vectors it has. */
#define SL_NC_PANEL_BYTES (128 * 1024)
SL_V_INLINE void sl_gemm_nc(const int MR, const int NV, size_t pixels, size_t rows, size_t k, const float* x,
                            size_t x_pixel_stride, size_t x_k_stride, const float* panels, float* y,
                            size_t y_pixel_stride, size_t y_channel_stride, const sl_minmax_t* mm) {
  const sl_nc_args_t a = {x_pixel_stride, x_k_stride, (size_t)SL_V_WIDTH * NV, y_pixel_stride, y_channel_stride, mm};
  const size_t chunk = SL_NC_PANEL_BYTES / (sizeof(float) * a.panel_rows);
  size_t block = SL_GEMM_L2_BYTES / (sizeof(float) * ((k < chunk ? k : chunk) + 1)) / MR * MR;
  if (block < (size_t)MR) block = MR;
  for (size_t p0 = 0; p0 < pixels; p0 += block) {
    const size_t n = pixels - p0 < block ? pixels - p0 : block;
    const float* xb = x + p0 * x_pixel_stride;
    size_t k0 = 0;
    do {
      const size_t k1 = k - k0 > chunk ? k0 + chunk : k;
      const float* panel = panels;
      for (size_t r0 = 0; r0 < rows; r0 += a.panel_rows, panel += a.panel_rows * (k + 1)) {
        float* yb = y + p0 * y_pixel_stride + r0 * y_channel_stride;
        const size_t valid = rows - r0 < a.panel_rows ? rows - r0 : a.panel_rows;
        if (valid == a.panel_rows) {
          SL_NC_PIXELS(MR, NV, 0, sl_v_tail_of(SL_V_WIDTH));
          continue;
        }
        const size_t nv = (valid + SL_V_WIDTH - 1) / SL_V_WIDTH;
        const sl_v_tail tail = sl_v_tail_of(valid - SL_V_WIDTH * (nv - 1));
        if (nv == 1) SL_NC_PIXELS(MR, 1, 1, tail);
        if (NV > 1 && nv == 2) SL_NC_PIXELS(MR, 2, 1, tail);
        if (NV > 2 && nv == 3) SL_NC_PIXELS(MR, 3, 1, tail);
        if (NV > 3 && nv == 4) SL_NC_PIXELS(MR, 4, 1, tail);
      }
      k0 = k1;
    } while (k0 < k);
  }
}
#undef SL_NC_PIXELS
#undef SL_NC_TILE

#define SL_DEFINE_gemm_nc(name, PIXELS, ROWS)                                                               \
  SL_V_TARGET void name(size_t pixels, size_t rows, size_t k, const float* x, size_t x_pixel_stride,         \
                        size_t x_k_stride, const float* panels, float* y, size_t y_pixel_stride,             \
                        size_t y_channel_stride, const sl_minmax_t* mm) {                                    \
    sl_gemm_nc(PIXELS, (ROWS) / SL_V_WIDTH, pixels, rows, k, x, x_pixel_stride, x_k_stride, panels, y,       \
               y_pixel_stride, y_channel_stride, mm);                                                        \
  }

/* Depthwise: up to eight vectors of outputs, every tap one shifted load and FMA each. */
SL_V_INLINE void sl_dw_tile(const int NV, const int masked, sl_v_tail tail, size_t taps, const uint32_t* tap_offset,
                            const float* x, const float* w, float bias, float* y, const sl_minmax_t* mm) {
  sl_v acc[8];
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) acc[v] = sl_v_splat(&bias);
  for (size_t t = 0; t < taps; t++) {
    const float* xp = x + tap_offset[t];
    sl_v wv = sl_v_splat(w + t);
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      sl_v xv = (masked && v == NV - 1) ? sl_v_load_tail(xp + SL_V_WIDTH * v, tail) : sl_v_load(xp + SL_V_WIDTH * v);
      acc[v] = sl_v_fma(wv, xv, acc[v]);
    }
  }
  const sl_v lo = sl_v_splat(&mm->min), hi = sl_v_splat(&mm->max);
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) {
    sl_v o = sl_v_clamp(acc[v], lo, hi);
    if (masked && v == NV - 1)
      sl_v_store_tail(y + SL_V_WIDTH * v, o, tail);
    else
      sl_v_store(y + SL_V_WIDTH * v, o);
  }
}

SL_V_INLINE void sl_dwconv(const int NV, size_t count, size_t taps, const uint32_t* tap_offset, const float* x,
                           const float* w, float bias, float* y, const sl_minmax_t* mm) {
#define DW_TILE(nv, masked, tail, p) sl_dw_tile(nv, masked, tail, taps, tap_offset, x + (p), w, bias, y + (p), mm)
  SL_PIXEL_LOOP(NV, count, DW_TILE);
#undef DW_TILE
}

#define SL_DEFINE_dwconv(name, PIXELS, ROWS)                                                          \
  SL_V_TARGET void name(size_t count, size_t taps, const uint32_t* tap_offset, const float* x,          \
                        const float* w, float bias, float* y, const sl_minmax_t* mm) {                  \
    sl_dwconv((PIXELS) / SL_V_WIDTH, count, taps, tap_offset, x, w, bias, y, mm);                       \
  }

#endif
