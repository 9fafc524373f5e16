/* Depthwise convolution with the channels along the vectors (dwconv_nc), written once over the
 * vector operations of vec/<isa>.h. A group of SL_V_WIDTH channels is transposed into a window of
 * pixel-major input rows in scratch, with zero columns and rows where the padding is; every tap of
 * an output pixel is then one vector load and one FMA, whatever the stride, and each band of output
 * rows is transposed back into the channels' planes. Two transposes replace the plane path's unzips,
 * lane masks and partly filled vectors, which is what stride-2 layers and small maps pay for. Each
 * input row is transposed once. */
#ifndef SL_TEMPLATES_DWCONV_NC_H
#define SL_TEMPLATES_DWCONV_NC_H

#include <string.h>

#include "matrix.h"

/* Optional in a vec header: SL_V_TRANSPOSE with sl_v_transpose(r), which turns SL_V_WIDTH rows into
 * columns in place (r[j] lane i becomes r[i] lane j). Otherwise: log2(SL_V_WIDTH) rounds of zips,
 * each a perfect shuffle that moves a lane's (row, column) bits one place. */
#ifndef SL_V_TRANSPOSE
SL_V_INLINE void sl_v_transpose(sl_v* r) {
#pragma GCC unroll 4
  for (int round = 1; round < SL_V_WIDTH; round *= 2) {
    sl_v t[SL_V_WIDTH];
#pragma GCC unroll 16
    for (int i = 0; i < SL_V_WIDTH / 2; i++) {
      t[2 * i] = sl_v_zip_lo(r[i], r[i + SL_V_WIDTH / 2]);
      t[2 * i + 1] = sl_v_zip_hi(r[i], r[i + SL_V_WIDTH / 2]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < SL_V_WIDTH; i++) r[i] = t[i];
  }
}
#endif

/* Input rows: the n = rows * in_w floats at each src[i] (a run of whole rows of the group's planes)
 * into pixel-major window rows, row floats apart from dst: pixel p of the run goes to dst + (p / in_w) * row
 * + (p % in_w) * SL_V_WIDTH. Blocks of a vector of pixels may span rows (narrow maps fill them too),
 * the last one moved back to end at n (it rewrites a few pixels with the same values); fewer than a
 * vector of pixels in all: lane tails. */
SL_V_INLINE void sl_dwnc_transpose_in(const sl_e* const* src, size_t rows, size_t in_w, sl_e* dst, size_t row) {
  const size_t n = rows * in_w;
  sl_v r[SL_V_WIDTH];
  if (n < SL_V_WIDTH) {
#pragma GCC unroll 16
    for (int i = 0; i < SL_V_WIDTH; i++) r[i] = sl_v_load_tail(src[i], sl_v_tail_of(n));
    sl_v_transpose(r);
    for (size_t j = 0, y = 0, x = 0; j < n; j++) {
      sl_v_store(dst + y * row + x * SL_V_WIDTH, r[j]);
      if (++x == in_w) x = 0, y++;
    }
    return;
  }
  size_t y = 0, x = 0; /* pixel c's row and column */
  for (size_t c = 0;; c += SL_V_WIDTH) {
    if (c + SL_V_WIDTH > n) {
      c = n - SL_V_WIDTH;
      y = c / in_w;
      x = c % in_w;
    }
#pragma GCC unroll 16
    for (int i = 0; i < SL_V_WIDTH; i++) r[i] = sl_v_load(src[i] + c);
    sl_v_transpose(r);
#pragma GCC unroll 16
    for (int j = 0; j < SL_V_WIDTH; j++) {
      sl_v_store(dst + y * row + x * SL_V_WIDTH, r[j]);
      if (++x == in_w) x = 0, y++;
    }
    if (c + SL_V_WIDTH == n) return;
  }
}

/* The converse: pixel-major src (n pixels) into the rows dst[i]: dst[i][j] = src[j * SL_V_WIDTH + i]. */
SL_V_INLINE void sl_dwnc_transpose_out(const sl_e* src, size_t n, sl_e* const* dst) {
  if (n < SL_V_WIDTH) {
    sl_v r[SL_V_WIDTH];
#pragma GCC unroll 16
    for (int j = 0; j < SL_V_WIDTH; j++) r[j] = (size_t)j < n ? sl_v_load(src + (size_t)j * SL_V_WIDTH) : sl_v_dup(0.0f);
    sl_v_transpose(r);
#pragma GCC unroll 16
    for (int i = 0; i < SL_V_WIDTH; i++) sl_v_store_tail(dst[i], r[i], sl_v_tail_of(n));
    return;
  }
  for (size_t c = 0;; c += SL_V_WIDTH) {
    if (c + SL_V_WIDTH > n) c = n - SL_V_WIDTH;
    sl_v r[SL_V_WIDTH];
#pragma GCC unroll 16
    for (int j = 0; j < SL_V_WIDTH; j++) r[j] = sl_v_load(src + (c + (size_t)j) * SL_V_WIDTH);
    sl_v_transpose(r);
#pragma GCC unroll 16
    for (int i = 0; i < SL_V_WIDTH; i++) sl_v_store(dst[i] + c, r[i]);
    if (c + SL_V_WIDTH == n) return;
  }
}

/* 8 outputs of one row from `base` on (the first's tap (0, 0)), SW vectors apart: one pointer with
 * constant offsets. Taps `row` floats apart down and a vector across; every tap one load and one
 * FMA per output. Clamped into out, a vector per output. */
SL_V_INLINE void sl_dwnc_tile_row(const int SW, size_t kh, size_t kw, size_t row, const sl_e* base, const sl_e* w,
                                  sl_v bias, sl_v lo, sl_v hi, sl_e* out) {
  sl_v acc[8];
#pragma GCC unroll 8
  for (int u = 0; u < 8; u++) acc[u] = bias;
  for (size_t ky = 0; ky < kh; ky++) {
    const sl_e* p = base + ky * row;
    for (size_t kx = 0; kx < kw; kx++, p += SL_V_WIDTH, w += SL_V_WIDTH) {
      const sl_v wv = sl_v_load(w);
#pragma GCC unroll 8
      for (int u = 0; u < 8; u++) acc[u] = sl_v_fma(wv, sl_v_load(p + u * SW * SL_V_WIDTH), acc[u]);
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < 8; u++) sl_v_store(out + (size_t)u * SL_V_WIDTH, sl_v_clamp(acc[u], lo, hi));
}

/* The same at stride 1 for a kernel KW wide: each input vector of a tap row is loaded once and
 * feeds the up to KW outputs that read it, the row's KW weights held in registers (8 + KW - 1
 * loads per 8 * KW FMAs instead of a load each). */
SL_V_INLINE void sl_dwnc_tile_row_s1(const int KW, size_t kh, size_t row, const sl_e* base, const sl_e* w, sl_v bias,
                                     sl_v lo, sl_v hi, sl_e* out) {
  sl_v acc[8];
#pragma GCC unroll 8
  for (int u = 0; u < 8; u++) acc[u] = bias;
  for (size_t ky = 0; ky < kh; ky++, w += KW * SL_V_WIDTH) {
    const sl_e* p = base + ky * row;
    sl_v wk[5];
#pragma GCC unroll 5
    for (int k = 0; k < KW; k++) wk[k] = sl_v_load(w + k * SL_V_WIDTH);
#pragma GCC unroll 12
    for (int c = 0; c < 8 + KW - 1; c++) {
      const sl_v xv = sl_v_load(p + c * SL_V_WIDTH);
#pragma GCC unroll 5
      for (int k = 0; k < KW; k++)
        if (c - k >= 0 && c - k < 8) acc[c - k] = sl_v_fma(wk[k], xv, acc[c - k]);
    }
  }
#pragma GCC unroll 8
  for (int u = 0; u < 8; u++) sl_v_store(out + (size_t)u * SL_V_WIDTH, sl_v_clamp(acc[u], lo, hi));
}

/* The same for U outputs anywhere (base[u] each), for tiles that span output rows. */
SL_V_INLINE void sl_dwnc_tile(const int U, size_t kh, size_t kw, size_t row, const sl_e* const* base, const sl_e* w,
                              sl_v bias, sl_v lo, sl_v hi, sl_e* out) {
  sl_v acc[8];
#pragma GCC unroll 8
  for (int u = 0; u < U; u++) acc[u] = bias;
  for (size_t ky = 0; ky < kh; ky++)
    for (size_t kx = 0, off = ky * row; kx < kw; kx++, off += SL_V_WIDTH, w += SL_V_WIDTH) {
      const sl_v wv = sl_v_load(w);
#pragma GCC unroll 8
      for (int u = 0; u < U; u++) acc[u] = sl_v_fma(wv, sl_v_load(base[u] + off), acc[u]);
    }
#pragma GCC unroll 8
  for (int u = 0; u < U; u++) sl_v_store(out + (size_t)u * SL_V_WIDTH, sl_v_clamp(acc[u], lo, hi));
}

/* A band's `count` outputs: output (r, ox) of the band reads the window from row r * stride_h,
 * column ox * stride_w. Rows of 8 or more at stride 1 or 2 go in tiles of 8 within a row (3 and 5
 * wide kernels at stride 1 reusing each loaded input vector), the last
 * moved back to end at the row's end (it recomputes a few outputs: the same values); the rest
 * flattened, so a tile spans rows and narrow maps fill it too. */
SL_V_INLINE void sl_dwnc_band(const sl_conv2d_shape_t* s, size_t count, const sl_e* win, size_t row, const sl_e* w,
                              sl_v bias, sl_v lo, sl_v hi, sl_e* out) {
  const size_t ow = s->out_w, kh = s->kernel_h, kw = s->kernel_w;
  const size_t down = (size_t)s->stride_h * row, step = (size_t)s->stride_w * SL_V_WIDTH;
  const sl_e* line = win;
  if (ow >= 8 && s->stride_w <= 2) {
    for (size_t r = 0; r < count; r += ow, line += down)
      for (size_t ox = 0;; ox += 8) {
        if (ox + 8 > ow) ox = ow - 8;
        sl_e* o = out + (r + ox) * SL_V_WIDTH;
        if (s->stride_w == 1 && kw == 3) sl_dwnc_tile_row_s1(3, kh, row, line + ox * step, w, bias, lo, hi, o);
        else if (s->stride_w == 1 && kw == 5) sl_dwnc_tile_row_s1(5, kh, row, line + ox * step, w, bias, lo, hi, o);
        else if (s->stride_w == 1) sl_dwnc_tile_row(1, kh, kw, row, line + ox * step, w, bias, lo, hi, o);
        else sl_dwnc_tile_row(2, kh, kw, row, line + ox * step, w, bias, lo, hi, o);
        if (ox + 8 == ow) break;
      }
    return;
  }
  const sl_e* base[8];
  size_t ox = 0;
  for (size_t p = 0; p < count;) {
    const size_t left = count - p;
    const int U = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    for (int u = 0; u < U; u++) {
      base[u] = line + ox * step;
      if (++ox == ow) {
        ox = 0;
        line += down;
      }
    }
    sl_e* o = out + p * SL_V_WIDTH;
    if (U == 8) sl_dwnc_tile(8, kh, kw, row, base, w, bias, lo, hi, o);
    else if (U == 4) sl_dwnc_tile(4, kh, kw, row, base, w, bias, lo, hi, o);
    else if (U == 2) sl_dwnc_tile(2, kh, kw, row, base, w, bias, lo, hi, o);
    else sl_dwnc_tile(1, kh, kw, row, base, w, bias, lo, hi, o);
    p += (size_t)U;
  }
}

/* Per group: bands of output rows; the window holds padded input rows [ws, ws + filled), each
 * transposed once (zero rows for the padding), and slides to a band's first row only when the
 * band would overrun it (keeping the rows the two share). */
SL_V_INLINE void sl_dwconv_nc(size_t channels, const sl_conv2d_shape_t* s, const sl_e* x, size_t x_stride,
                              const sl_e* w, sl_e* y, size_t y_stride, sl_e* scratch, const sl_minmax_t* mm) {
  sl_dwconv_nc_layout_t l = {0, 0, 0, 0};
  if (!sl_dwconv_nc_layout(s, SL_V_WIDTH, &l)) return; /* the op has checked it */
  const size_t kh = s->kernel_h, sh = s->stride_h, in_w = s->in_w, oh = s->out_h, ow = s->out_w;
  const size_t top = s->pad_top, bottom = top + s->in_h;
  const size_t row = l.columns * SL_V_WIDTH, left = (size_t)s->pad_left * SL_V_WIDTH, right = row - left - in_w * SL_V_WIDTH;
  const size_t w_group = (kh * s->kernel_w + 1) * SL_V_WIDTH;
  sl_e* win = scratch;
  sl_e* out = win + l.window * row;
  sl_e* spare = out + l.band * ow * SL_V_WIDTH; /* the output rows of a short group's missing channels */
  for (size_t r = 0; r < l.window; r++) { /* the padding columns; rows move whole, so they stay zero */
    memset(win + r * row, 0, left * sizeof(sl_e));
    memset(win + r * row + left + in_w * SL_V_WIDTH, 0, right * sizeof(sl_e));
  }
  const sl_v lo = sl_v_dup(mm->min), hi = sl_v_dup(mm->max);
  for (size_t g = 0; g < channels; g += SL_V_WIDTH, w += w_group) {
    const size_t n = channels - g < SL_V_WIDTH ? channels - g : SL_V_WIDTH;
    const sl_e* src[SL_V_WIDTH];
    sl_e* dst[SL_V_WIDTH];
    for (size_t i = 0; i < SL_V_WIDTH; i++) { /* missing channels read the group's first, write spare */
      src[i] = x + (g + (i < n ? i : 0)) * x_stride;
      dst[i] = i < n ? y + (g + i) * y_stride : spare;
    }
    const sl_v bias = sl_v_load(w + kh * s->kernel_w * SL_V_WIDTH);
    size_t ws = 0, filled = 0;
    for (size_t oy = 0; oy < oh; oy += l.band) {
      const size_t m = oh - oy < l.band ? oh - oy : l.band, first = oy * sh, end = (oy + m - 1) * sh + kh;
      if (end - ws > l.window) {
        const size_t keep = ws + filled > first ? ws + filled - first : 0;
        if (keep > 0) memmove(win, win + (first - ws) * row, keep * row * sizeof(sl_e));
        ws = first;
        filled = keep;
      }
      /* padded rows [top, bottom) hold the input; the rest are zero rows */
      size_t py = ws + filled;
      for (; py < end && py < top; py++) memset(win + (py - ws) * row, 0, row * sizeof(sl_e));
      if (py < end && py < bottom) {
        const size_t stop = end < bottom ? end : bottom;
        const sl_e* in[SL_V_WIDTH];
        for (size_t i = 0; i < SL_V_WIDTH; i++) in[i] = src[i] + (py - top) * in_w;
        sl_dwnc_transpose_in(in, stop - py, in_w, win + (py - ws) * row + left, row);
        py = stop;
      }
      for (; py < end; py++) memset(win + (py - ws) * row, 0, row * sizeof(sl_e));
      filled = end - ws;
      sl_dwnc_band(s, m * ow, win + (first - ws) * row, row, w, bias, lo, hi, out);
      sl_e* o[SL_V_WIDTH];
      for (size_t i = 0; i < SL_V_WIDTH; i++) o[i] = dst[i] == spare ? spare : dst[i] + oy * ow;
      sl_dwnc_transpose_out(out, m * ow, o);
    }
  }
}

#define SL_DEFINE_dwconv_nc(name, PIXELS, ROWS)                                                               \
  SL_V_TARGET void name(size_t channels, const sl_conv2d_shape_t* s, const sl_e* x, size_t x_stride,          \
                        const sl_e* w, sl_e* y, size_t y_stride, sl_e* scratch, const sl_minmax_t* mm) {      \
    sl_dwconv_nc(channels, s, x, x_stride, w, y, y_stride, scratch, mm);                                      \
  }

#endif
