/* Winograd F(M x M, 3x3) transforms (M = 2 or 4, alpha = M + 2), written once over the vector
 * operations of vec/<isa>.h (listed in templates/matrix.h) with a vector's lanes along a row of
 * tiles. Tile t starts M floats after tile t - 1, so a row of the padded input is split into its M
 * column phases in registers (one or two rounds of unzip), and the last two columns of each tile
 * are the first two phases shifted by one tile; outputs are interleaved back (zip) before they
 * are stored. Each 2-D transform is a 1-D one over rows, then over columns, through a small
 * array; 1-D transforms add only the nonzero terms of their matrices (f32-winograd_in/matrices.h),
 * as the references do, so NaN lands where theirs does. */
#ifndef SL_TEMPLATES_WINOGRAD_H
#define SL_TEMPLATES_WINOGRAD_H

#include "../f32-winograd_in/matrices.h"
#include "../kernels.h"

/* r = T d for a matrix T of n rows and k columns (B^T or A^T): per row, its nonzero terms in
 * order (the tables are constants, so each term compiles to one add, sub or FMA). */
SL_V_INLINE void sl_wino_apply(const int n, const int k, const double* t, const sl_v* d, sl_v* r) {
#pragma GCC unroll 6
  for (int i = 0; i < n; i++) {
    sl_v acc = sl_v_dup(0.0f);
    int first = 1;
#pragma GCC unroll 6
    for (int j = 0; j < k; j++) {
      const float c = (float)t[i * k + j];
      if (c == 0.0f) continue;
      if (first) acc = c == 1.0f ? d[j] : sl_v_mul(sl_v_dup(c), d[j]);
      else if (c == 1.0f) acc = sl_v_add(acc, d[j]);
      else if (c == -1.0f) acc = sl_v_sub(acc, d[j]);
      else acc = sl_v_fma(sl_v_dup(c), d[j], acc);
      first = 0;
    }
    r[i] = acc;
  }
}

/* r = B^T d over alpha values. */
SL_V_INLINE void sl_wino_bt(const int M, const sl_v* d, sl_v* r) {
  sl_wino_apply(M + 2, M + 2, M == 2 ? &sl_wino_bt2[0][0] : &sl_wino_bt4[0][0], d, r);
}

/* r = A^T s: M values from alpha. */
SL_V_INLINE void sl_wino_at(const int M, const sl_v* s, sl_v* r) {
  sl_wino_apply(M, M + 2, M == 2 ? &sl_wino_at2[0][0] : &sl_wino_at4[0][0], s, r);
}

/* The vector of `need` floats from p that starts k vectors in: whole, partial or none. */
SL_V_INLINE sl_v sl_wino_load(const int tail, const float* p, int k, size_t need) {
  const size_t at = (size_t)SL_V_WIDTH * k;
  if (!tail || need >= at + SL_V_WIDTH) return sl_v_load(p + at);
  return need > at ? sl_v_load_tail(p + at, sl_v_tail_of(need - at)) : sl_v_dup(0.0f);
}

/* One vector of n tiles (n = SL_V_WIDTH unless tail) of one channel. */
SL_V_INLINE void sl_wino_in_tiles(const int M, const int tail, size_t n, const float* x, size_t x_row_stride,
                                  float* v, size_t v_point_stride) {
  const int A = M + 2;
  const size_t need = (size_t)M * n + 2; /* floats of each input row the tiles read */
  sl_v rows[6][6];
#pragma GCC unroll 6
  for (int k = 0; k < A; k++) {
    const float* p = x + (size_t)k * x_row_stride;
    sl_v d[6];
    if (M == 2) {
      const sl_v a = sl_wino_load(tail, p, 0, need), b = sl_wino_load(tail, p, 1, need);
      d[0] = sl_v_unzip_even(a, b);
      d[1] = sl_v_unzip_odd(a, b);
    } else {
      const sl_v a = sl_wino_load(tail, p, 0, need), b = sl_wino_load(tail, p, 1, need);
      const sl_v c = sl_wino_load(tail, p, 2, need), e = sl_wino_load(tail, p, 3, need);
      const sl_v even_lo = sl_v_unzip_even(a, b), odd_lo = sl_v_unzip_odd(a, b);
      const sl_v even_hi = sl_v_unzip_even(c, e), odd_hi = sl_v_unzip_odd(c, e);
      d[0] = sl_v_unzip_even(even_lo, even_hi);
      d[1] = sl_v_unzip_even(odd_lo, odd_hi);
      d[2] = sl_v_unzip_odd(even_lo, even_hi);
      d[3] = sl_v_unzip_odd(odd_lo, odd_hi);
    }
    /* Columns M and M + 1: phases 0 and 1 of the next tile; the last lane's come from past the
     * vector (a partial vector's last tile finds them in its next lane). */
    const size_t past = (size_t)M * SL_V_WIDTH;
#pragma GCC unroll 2
    for (int e = 0; e < 2; e++) {
      const sl_v next = tail ? sl_v_dup(0.0f) : sl_v_splat(p + past + e);
      d[M + e] = SL_V_WIDTH == 1 ? next : sl_v_ext(d[e], next, 1);
    }
    sl_wino_bt(M, d, rows[k]);
  }
#pragma GCC unroll 6
  for (int j = 0; j < A; j++) {
    sl_v col[6], r[6];
#pragma GCC unroll 6
    for (int k = 0; k < A; k++) col[k] = rows[k][j];
    sl_wino_bt(M, col, r);
#pragma GCC unroll 6
    for (int i = 0; i < A; i++) {
      float* out = v + (size_t)(i * A + j) * v_point_stride;
      if (tail)
        sl_v_store_tail(out, r[i], sl_v_tail_of(n));
      else
        sl_v_store(out, r[i]);
    }
  }
}

SL_V_INLINE void sl_winograd_in(const int M, size_t tiles, size_t channels, const float* x, size_t x_row_stride,
                                size_t x_channel_stride, float* v, size_t v_point_stride, size_t v_channel_stride) {
  for (size_t c = 0; c < channels; c++) {
    const float* xc = x + c * x_channel_stride;
    float* vc = v + c * v_channel_stride;
    size_t t = 0;
    for (; t + SL_V_WIDTH <= tiles; t += SL_V_WIDTH)
      sl_wino_in_tiles(M, 0, SL_V_WIDTH, xc + (size_t)M * t, x_row_stride, vc + t, v_point_stride);
    if (t < tiles) sl_wino_in_tiles(M, 1, tiles - t, xc + (size_t)M * t, x_row_stride, vc + t, v_point_stride);
  }
}

#define SL_DEFINE_winograd_in(name, PIXELS, ROWS)                                                           \
  SL_V_TARGET void name(size_t tiles, size_t channels, const float* x, size_t x_row_stride,                  \
                        size_t x_channel_stride, float* v, size_t v_point_stride, size_t v_channel_stride) { \
    sl_winograd_in(ROWS, tiles, channels, x, x_row_stride, x_channel_stride, v, v_point_stride,             \
                   v_channel_stride);                                                                        \
  }

/* One vector of n tiles of one channel: the tiles' `rows` output rows of `cols` floats from y. */
SL_V_INLINE void sl_wino_out_tiles(const int M, const int tail, size_t n, const float* mt, size_t m_point_stride,
                                   sl_v bias, float* y, size_t y_row_stride, size_t rows, size_t cols, sl_v lo,
                                   sl_v hi) {
  const int A = M + 2;
  sl_v s[6][4];
#pragma GCC unroll 6
  for (int k = 0; k < A; k++) {
    sl_v in[6];
#pragma GCC unroll 6
    for (int l = 0; l < A; l++) {
      const float* p = mt + (size_t)(k * A + l) * m_point_stride;
      in[l] = tail ? sl_v_load_tail(p, sl_v_tail_of(n)) : sl_v_load(p);
    }
    sl_wino_at(M, in, s[k]);
  }
  sl_v out[4][4];
#pragma GCC unroll 4
  for (int j = 0; j < M; j++) {
    sl_v col[6], r[4];
#pragma GCC unroll 6
    for (int k = 0; k < A; k++) col[k] = s[k][j];
    sl_wino_at(M, col, r);
#pragma GCC unroll 4
    for (int i = 0; i < M; i++) out[i][j] = sl_v_clamp(sl_v_add(r[i], bias), lo, hi);
  }
  for (int i = 0; i < M && (size_t)i < rows; i++) {
    sl_v z[4];
    if (M == 2) {
      z[0] = sl_v_zip_lo(out[i][0], out[i][1]);
      z[1] = sl_v_zip_hi(out[i][0], out[i][1]);
    } else {
      const sl_v a_lo = sl_v_zip_lo(out[i][0], out[i][2]), a_hi = sl_v_zip_hi(out[i][0], out[i][2]);
      const sl_v b_lo = sl_v_zip_lo(out[i][1], out[i][3]), b_hi = sl_v_zip_hi(out[i][1], out[i][3]);
      z[0] = sl_v_zip_lo(a_lo, b_lo);
      z[1] = sl_v_zip_hi(a_lo, b_lo);
      z[2] = sl_v_zip_lo(a_hi, b_hi);
      z[3] = sl_v_zip_hi(a_hi, b_hi);
    }
    float* row = y + (size_t)i * y_row_stride;
#pragma GCC unroll 4
    for (int k = 0; k < M; k++) {
      const size_t at = (size_t)SL_V_WIDTH * k;
      if (!tail || cols >= at + SL_V_WIDTH)
        sl_v_store(row + at, z[k]);
      else if (cols > at)
        sl_v_store_tail(row + at, z[k], sl_v_tail_of(cols - at));
    }
  }
}

SL_V_INLINE void sl_winograd_out(const int M, size_t tiles, size_t channels, const float* mt, size_t m_point_stride,
                                 size_t m_channel_stride, const float* bias, float* y, size_t y_row_stride,
                                 size_t y_channel_stride, size_t rows, size_t cols, const sl_minmax_t* mm) {
  const sl_v lo = sl_v_splat(&mm->min), hi = sl_v_splat(&mm->max);
  const size_t width = (size_t)M * SL_V_WIDTH; /* output columns per vector of tiles */
  for (size_t c = 0; c < channels; c++) {
    const sl_v b = sl_v_splat(bias + c);
    const float* mc = mt + c * m_channel_stride;
    float* yc = y + c * y_channel_stride;
    size_t t = 0;
    /* Whole vectors while their columns are all inside; the rest as a tail. */
    for (; t + SL_V_WIDTH <= tiles && (size_t)M * t + width <= cols; t += SL_V_WIDTH)
      sl_wino_out_tiles(M, 0, SL_V_WIDTH, mc + t, m_point_stride, b, yc + (size_t)M * t, y_row_stride, rows, width,
                        lo, hi);
    for (; t < tiles && (size_t)M * t < cols; t += SL_V_WIDTH) {
      const size_t n = tiles - t < SL_V_WIDTH ? tiles - t : SL_V_WIDTH;
      sl_wino_out_tiles(M, 1, n, mc + t, m_point_stride, b, yc + (size_t)M * t, y_row_stride, rows,
                        cols - (size_t)M * t, lo, hi);
    }
  }
}

#define SL_DEFINE_winograd_out(name, PIXELS, ROWS)                                                           \
  SL_V_TARGET void name(size_t tiles, size_t channels, const float* mt, size_t m_point_stride,                 \
                        size_t m_channel_stride, const float* bias, float* y, size_t y_row_stride,            \
                        size_t y_channel_stride, size_t rows, size_t cols, const sl_minmax_t* mm) {          \
    sl_winograd_out(ROWS, tiles, channels, mt, m_point_stride, m_channel_stride, bias, y, y_row_stride,       \
                    y_channel_stride, rows, cols, mm);                                                       \
  }

#endif
