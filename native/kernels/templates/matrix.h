/* The matrix microkernels (spmm, gemm, depthwise), written once over the vector operations of
 * vec/<isa>.h, which isa/<isa>.c includes first: spmm and gemm share one register tile, and
 * depthwise has its own. A new ISA brings a vec header, one isa/<isa>.c and its lines in the
 * lists, not new loops.
 *
 * What a vec header provides (SL_V_WIDTH lanes of float):
 *   sl_v, sl_vm (a lane mask), sl_v_tail (lanes [0, n) of a partial vector), sl_v_tail_of(n)
 *   load/store, load_tail/store_tail (lanes past the tail read as 0, never written), splat(p), dup(f)
 *   add sub mul div, fma(a, b, acc) = acc + a * b (fused where the ISA has it), abs
 *   sqrt (IEEE, correctly rounded); getexp(a), getmant(a): a's exponent field less 127 as a float, and a
 *   with that field set to 127 (for normal a: floor(log2 |a|), and |a| scaled into [1, 2))
 *   max(a, b) = a < b ? b : a and min(a, b) = b < a ? b : a: a NaN in a stays, on every ISA
 *   clamp(v, lo, hi) = min(max(v, lo), hi): a NaN in v stays (lo and hi are never NaN)
 *   lt, eq -> sl_vm; select(m, a, b) = m ? a : b; tail_mask(t)
 *   exp2i(t) = 2^n for t = n + 1.5 * 2^23 (integral n in [-126, 127]), by integer adds and shifts
 *   unzip_even(a, b), unzip_odd(a, b): the even and the odd floats of the 2 * SL_V_WIDTH in a then b
 *   zip_lo(a, b), zip_hi(a, b): a[0] b[0] a[1] b[1] ..., its first and its second SL_V_WIDTH floats
 *   ext(a, b, k): lanes k .. k + SL_V_WIDTH - 1 of a then b, for a constant 0 <= k < SL_V_WIDTH
 *   tail_range(lo, hi) (16-lane headers): an sl_v_tail of lanes [lo, hi), 0 <= lo <= hi <= SL_V_WIDTH
 *   optional: SL_V_LOOKUP with lookup(t, idx), lane i = lane idx[i] of t (int32 idx, 0 <= idx < SL_V_WIDTH)
 *   hsum, hmax: the lanes reduced to one float */
#ifndef SL_TEMPLATES_MATRIX_H
#define SL_TEMPLATES_MATRIX_H

#include <math.h>
#include <string.h>

#include "../kernels.h"

/* Optional in a vec header: SL_V_TAIL_BACK 1 with sl_v_load_tail_back(p, t), the tail loaded from
 * the floats ending at p + n (those before p must be readable); SL_V_FMA_LANE with
 * sl_v_fma_lane(a, b, l, acc) = acc + a * lane l of b, for a constant l. */
/* sl_e: the element type of x, w and y (float unless the header says otherwise); sl_v_iota(): lanes
 * 0, 1, ... as values. */
#ifndef SL_V_ELEM
typedef float sl_e;
SL_V_INLINE sl_v sl_v_iota(void) {
  static const float lanes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return sl_v_load(lanes);
}
#endif
/* Optional for a kernel file: SL_V_GEMM_TILE(panel, cols, x, x_stride, y, y_stride, mm, accumulate), a
 * hand-scheduled gemm tile of SL_V_GEMM_TILE_PIXELS x SL_V_GEMM_TILE_ROWS that sl_gemm runs for whole
 * tiles of dense columns where every row is stored (isa/neon_inorder.c). */
#ifndef SL_V_TAIL_BACK
#define SL_V_TAIL_BACK 0
#define sl_v_load_tail_back sl_v_load_tail
#endif

/* A tile's pixel vector: the last one cut at `tail` when `masked`, read through the floats
 * before it (lanes past the tail zero) when masked == 2: the tile or the row has them. */
SL_V_INLINE sl_v sl_tile_load(const int masked, sl_v_tail tail, const sl_e* p, int last) {
  if (!masked || !last) return sl_v_load(p);
  return masked == 2 ? sl_v_load_tail_back(p, tail) : sl_v_load_tail(p, tail);
}

/* The fp16 kernels (SL_V_ELEM) take no output stage beyond the clamp: their vec headers lack
 * its ops. */
#ifdef SL_V_ELEM
#define SL_V_STAGES 0
#else
#define SL_V_STAGES 1
#endif
/* PRELU's 0, read where it is used: as a constant, the compiler held it in a vector register
 * over the columns' loop, which then spilled an input vector (AVX-512's 48x8 gemm). */
static const volatile float sl_tile_zero = 0.0f;

/* R output rows x NV vectors of pixels, accumulators in registers. Per stored
 * column it loads NV pixel vectors once and reuses each for R FMAs with
 * broadcast weights: the FMA-per-load gain group sparsity buys.
 * w: R biases then R weights per column. Columns are x + x_offset[c] (sparse)
 * or x + c * x_stride (dense). The last vector stops at `tail` when `masked`.
 * Rows j >= valid are computed but not stored (zero rows of a gemm panel).
 * accumulate: start from what out holds (a gemm's later column chunk) instead of the biases;
 * else with res, from res[j] plus the biases (a residual laid out as out). slopes: row j's PRELU
 * slope slopes[j * slope_step] after the clamp (NULL: none). */
SL_V_INLINE void sl_tile(const int R, const int NV, const int dense, const int masked, sl_v_tail tail,
                         const sl_e* w, size_t cols, const sl_e* x, const uint32_t* x_offset, size_t x_stride,
                         sl_e* const* out, size_t valid, const sl_minmax_t* mm, int accumulate,
                         const sl_e* const* res, const float* slopes, size_t slope_step) {
#if !SL_V_STAGES
  (void)res, (void)slopes, (void)slope_step;
#endif
  sl_v acc[8][8];
  if (accumulate) {
#pragma GCC unroll 8
    for (int j = 0; j < R; j++)
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++)
        acc[j][v] = masked && v == NV - 1 ? sl_v_load_tail(out[j] + SL_V_WIDTH * v, tail)
                                          : sl_v_load(out[j] + SL_V_WIDTH * v);
#if SL_V_STAGES
  } else if (res != NULL) {
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) {
      const sl_v b = sl_v_splat(w + j);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++)
        acc[j][v] = sl_v_add(masked && v == NV - 1 ? sl_v_load_tail(res[j] + SL_V_WIDTH * v, tail)
                                                   : sl_v_load(res[j] + SL_V_WIDTH * v), b);
    }
#endif
  } else {
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) {
      sl_v b = sl_v_splat(w + j);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[j][v] = b;
    }
  }
  w += R;
  const sl_e* xp = x;
  size_t c = 0;
#ifdef SL_V_FMA_LANE
  /* U columns at a time, their U * R weights (two vectors where R allows) loaded whole and used
   * by lane: fewer loads per FMA, and independent work to interleave for in-order cores. */
  const int U = R >= 2 * SL_V_WIDTH ? 1 : 2 * SL_V_WIDTH / R;
  if ((U * R) % SL_V_WIDTH == 0 && U * R <= 2 * SL_V_WIDTH) {
    for (; c + U <= cols; c += U, w += U * R) {
      sl_v wv[2];
      uint32_t off[2 * SL_V_WIDTH]; /* read together: pairs of offsets per load */
#pragma GCC unroll 2
      for (int q = 0; q < U * R / SL_V_WIDTH; q++) wv[q] = sl_v_load(w + SL_V_WIDTH * q);
#pragma GCC unroll 16
      for (int u = 0; u < U; u++) off[u] = dense ? 0 : x_offset[c + u];
#pragma GCC unroll 16
      for (int u = 0; u < U; u++) {
        if (!dense) xp = x + off[u];
        sl_v xv[8];
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) xv[v] = sl_tile_load(masked, tail, xp + SL_V_WIDTH * v, v == NV - 1);
#pragma GCC unroll 8
        for (int j = 0; j < R; j++) {
          const int l = u * R + j;
#pragma GCC unroll 8
          for (int v = 0; v < NV; v++) acc[j][v] = sl_v_fma_lane(xv[v], wv[l / SL_V_WIDTH], l % SL_V_WIDTH, acc[j][v]);
        }
        if (dense) xp += x_stride;
      }
    }
  }
#endif
  for (; c < cols; c++, w += R) {
    if (!dense) xp = x + x_offset[c];
    sl_v xv[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) xv[v] = sl_tile_load(masked, tail, xp + SL_V_WIDTH * v, v == NV - 1);
#pragma GCC unroll 8
    for (int j = 0; j < R; j++) {
      sl_v wj = sl_v_splat(w + j);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[j][v] = sl_v_fma(wj, xv[v], acc[j][v]);
    }
    if (dense) xp += x_stride;
  }
  const sl_v lo = sl_v_dup(mm->min), hi = sl_v_dup(mm->max);
#pragma GCC unroll 8
  for (int j = 0; j < R; j++) {
    if ((size_t)j >= valid) break;
#if SL_V_STAGES
    const sl_v zero = sl_v_dup(slopes != NULL ? sl_tile_zero : 0.0f);
    const sl_v slope = sl_v_dup(slopes != NULL ? slopes[j * slope_step] : 0.0f);
#endif
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      sl_v o = sl_v_clamp(acc[j][v], lo, hi);
#if SL_V_STAGES
      if (slopes != NULL) o = sl_v_select(sl_v_lt(zero, o), o, sl_v_mul(o, slope)); /* sl_vbinary's PRELU */
#endif
      if (masked && v == NV - 1)
        sl_v_store_tail(out[j] + SL_V_WIDTH * v, o, tail);
      else
        sl_v_store(out[j] + SL_V_WIDTH * v, o);
    }
  }
}

/* Calls TILE(nv, masked, tail, p) over [0, pixels): full NV-vector tiles, then
 * one tile of the remaining vectors with the last one cut at the tail, loaded through the
 * floats before it (masked 2) where the ISA can and there are some. */
#define SL_PIXEL_LOOP(NV, pixels, TILE)                                             \
  do {                                                                              \
    size_t p_ = 0;                                                                  \
    for (; p_ + SL_V_WIDTH * (NV) <= (pixels); p_ += SL_V_WIDTH * (NV))             \
      TILE(NV, 0, sl_v_tail_of(SL_V_WIDTH), p_);                                    \
    size_t rem_ = (pixels) - p_;                                                    \
    if (rem_ == 0) break;                                                           \
    size_t nv_ = (rem_ + SL_V_WIDTH - 1) / SL_V_WIDTH;                              \
    sl_v_tail tail_ = sl_v_tail_of(rem_ - SL_V_WIDTH * (nv_ - 1));                  \
    if (nv_ == 1 && SL_V_TAIL_BACK && (pixels) >= SL_V_WIDTH) TILE(1, 2, tail_, p_); \
    else if (nv_ == 1) TILE(1, 1, tail_, p_);                                       \
    if ((NV) >= 2 && nv_ == 2) TILE(2, 1 + SL_V_TAIL_BACK, tail_, p_);              \
    if ((NV) >= 3 && nv_ == 3) TILE(3, 1 + SL_V_TAIL_BACK, tail_, p_);              \
    if ((NV) >= 4 && nv_ == 4) TILE(4, 1 + SL_V_TAIL_BACK, tail_, p_);              \
    if ((NV) >= 5 && nv_ == 5) TILE(5, 1 + SL_V_TAIL_BACK, tail_, p_);              \
    if ((NV) >= 6 && nv_ == 6) TILE(6, 1 + SL_V_TAIL_BACK, tail_, p_);              \
    if ((NV) >= 7 && nv_ == 7) TILE(7, 1 + SL_V_TAIL_BACK, tail_, p_);              \
    if ((NV) >= 8 && nv_ == 8) TILE(8, 1 + SL_V_TAIL_BACK, tail_, p_);              \
  } while (0)

/* spmm: pixel tiles outermost, so a tile's input columns stay in L1 while every
 * block's weights stream past them. STAGE 0 ignores o's residual and slopes: a kernel without
 * them keeps every vector register for its tile (with them in the same loop, AVX-512's 48x8 gemm
 * spilled an input vector and ran 1.4x slower). */
SL_V_INLINE void sl_spmm(const int R, const int NV, const int STAGE, size_t pixels, size_t blocks, const sl_e* x,
                         const sl_e* w, const uint32_t* x_offset, const uint32_t* nz_start, const uint32_t* out_row,
                         sl_e* y, size_t y_stride, const sl_matrix_out_t* o) {
  const sl_minmax_t* mm = &o->mm;
  const sl_e* residual = STAGE ? (const sl_e*)o->residual : NULL;
  const float* all_slopes = STAGE ? o->slopes : NULL;
#if !defined(SL_V_ELEM) && SL_V_WIDTH >= 8
  /* One pixel (an FC layer over one token, MobileNet's classifier): a tile would use one lane of
   * each vector for R FMAs per column. Scalar FMAs on each block's R rows instead (the compiler
   * vectorizes across the rows), columns in 4 interleaved sums so the FMA latency overlaps. ISAs
   * of 8+ lanes have FMA. */
  if (pixels == 1) {
    const sl_e* wb = w;
    const uint32_t* off = x_offset;
    for (size_t b = 0; b < blocks; b++) {
      float acc[4][8] = {{0.0f}};
#pragma GCC unroll 8
      for (int j = 0; j < R; j++)
        acc[0][j] = residual != NULL ? residual[(size_t)out_row[b * R + j] * y_stride] + wb[j] : wb[j];
      wb += R;
      const size_t cols = nz_start[b + 1] - nz_start[b];
      size_t c = 0;
      for (; c + 4 <= cols; c += 4, wb += 4 * R)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
          const float xv = x[off[c + u]];
#pragma GCC unroll 8
          for (int j = 0; j < R; j++) acc[u][j] = __builtin_fmaf(wb[u * R + j], xv, acc[u][j]);
        }
      for (; c < cols; c++, wb += R) {
        const float xv = x[off[c]];
#pragma GCC unroll 8
        for (int j = 0; j < R; j++) acc[0][j] = __builtin_fmaf(wb[j], xv, acc[0][j]);
      }
      off += cols;
#pragma GCC unroll 8
      for (int j = 0; j < R; j++) { /* sl_v_clamp: a NaN stays */
        const size_t row = out_row[b * R + j];
        const float sum = (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]), low = sum < mm->min ? mm->min : sum;
        float v = mm->max < low ? mm->max : low;
        if (all_slopes != NULL && !(0 < v)) v = v * all_slopes[row * o->slope_step]; /* sl_vbinary's PRELU */
        y[row * y_stride] = v;
      }
    }
    return;
  }
#endif
#define SPMM_TILE(nv, masked, tail, p)                                                                  \
  do {                                                                                                  \
    const sl_e* w_ = w;                                                                                \
    for (size_t b = 0; b < blocks; b++) {                                                               \
      sl_e* out[8];                                                                                    \
      const sl_e* res[8];                                                                              \
      float slopes[8]; /* the block's rows' slopes, in its order */                                    \
      for (int j = 0; j < R; j++) {                                                                     \
        const size_t row = out_row[b * R + j];                                                          \
        out[j] = y + row * y_stride + (p);                                                              \
        res[j] = residual != NULL ? residual + row * y_stride + (p) : NULL;                             \
        slopes[j] = all_slopes != NULL ? all_slopes[row * o->slope_step] : 0.0f;                        \
      }                                                                                                 \
      size_t cols = nz_start[b + 1] - nz_start[b];                                                      \
      sl_tile(R, nv, 0, masked, tail, w_, cols, x + (p), x_offset + (nz_start[b] - nz_start[0]), 0, out, R, \
              mm, 0, residual != NULL ? res : NULL, all_slopes != NULL ? slopes : NULL, 1);             \
      w_ += R + cols * R;                                                                               \
    }                                                                                                   \
  } while (0)
  SL_PIXEL_LOOP(NV, pixels, SPMM_TILE);
#undef SPMM_TILE
}

/* The definitions the lists' lines expand to (isa/<isa>.c): tiles of PIXELS x ROWS. */
#define SL_DEFINE_spmm(name, PIXELS, ROWS)                                                                   \
  static SL_V_TARGET __attribute__((noinline)) void name##_staged(                                            \
      size_t pixels, size_t blocks, const sl_e* x, const sl_e* w, const uint32_t* x_offset,                   \
      const uint32_t* nz_start, const uint32_t* out_row, sl_e* y, size_t y_stride, const sl_matrix_out_t* out) { \
    sl_spmm(ROWS, (PIXELS) / SL_V_WIDTH, 1, pixels, blocks, x, w, x_offset, nz_start, out_row, y, y_stride, out); \
  }                                                                                                           \
  SL_V_TARGET void name(size_t pixels, size_t blocks, const sl_e* x, const sl_e* w, const uint32_t* x_offset, \
                        const uint32_t* nz_start, const uint32_t* out_row, sl_e* y, size_t y_stride,        \
                        const sl_matrix_out_t* out) {                                                       \
    if (SL_V_STAGES && (out->residual != NULL || out->slopes != NULL))                                      \
      name##_staged(pixels, blocks, x, w, x_offset, nz_start, out_row, y, y_stride, out);                   \
    else                                                                                                    \
      sl_spmm(ROWS, (PIXELS) / SL_V_WIDTH, 0, pixels, blocks, x, w, x_offset, nz_start, out_row, y, y_stride, out); \
  }

/* gemm over panels of ROWS rows: the same tile, columns at a fixed stride, or at x_offset[c]
 * (an implicit convolution's taps over padded planes). Columns go in chunks whose share of a
 * tile fits in L1 (later chunks add to the partial sums in y, clamped after the last; the sums
 * are the same floats in the same order), and pixels in blocks whose chunk of input rows fits in
 * L2; within a block each panel's chunk stays in L1 while it sweeps the block's tiles. Wide
 * layers (3x3 convolutions over 64+ channels, transformer FCs) so neither stream their weights
 * from memory once per pixel tile nor touch more pages per tile than a TLB holds (the input
 * rows of one column are a whole plane apart). A third of L1 rather than all of it: shorter
 * panel chunks reach the prefetch sooner and leave room for the inputs (dense ResNet-50 on the
 * EPYC, 48 KiB L1: 36.2 ms at 32 KiB, 35.6 at 16, 36.7 at 8; MobileNetV2 unchanged). */
#define SL_GEMM_L1_BYTES (16 * 1024)
#define SL_GEMM_L2_BYTES (192 * 1024)
/* Whether an ISA's gemm packs tiles whose columns share an L1 set (sl_gemm_packed): where measured. */
#ifndef SL_V_GEMM_PACK
#define SL_V_GEMM_PACK 0
#endif
#ifdef SL_V_GEMM_TILE
#define SL_GEMM_WHOLE_TILE(nv, masked)                                                                        \
  (dense && plain && !(masked) && ROWS == SL_V_GEMM_TILE_ROWS && SL_V_WIDTH * (nv) == SL_V_GEMM_TILE_PIXELS && \
   rows - r0 >= (size_t)ROWS)
#else
#define SL_GEMM_WHOLE_TILE(nv, masked) ((void)plain, 0)
#define SL_V_GEMM_TILE(panel, cols, x, x_stride, y, y_stride, mm, accumulate) ((void)0)
#endif
/* [p, p + bytes) toward the cache, a 64-byte line at a time (the line size of every target). */
SL_V_INLINE void sl_prefetch(const void* p, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch((const char*)p + b);
}
/* Dense columns whose rows lie a multiple of 4 KB apart, give or take 256 bytes (MediaPipe's 32x32
 * and 64x64 maps), all fall in one L1 set, so a tile's columns, read again by each panel, come from
 * L2 every time. There, with many panels and weights small enough to re-read per tile, pixel tiles
 * go outer and each tile's columns are copied once into a contiguous buffer that every panel reads
 * from L1. Returns the pixels done: the whole tiles. The panel loop is sl_gemm's without its
 * prefetches and blocks: running sl_gemm on the one-tile buffer was 3-20% slower (Zen 3). */
#define SL_GEMM_PACK_FLOATS (32 * 1024 / sizeof(sl_e))
SL_V_INLINE bool sl_gemm_packs(const int ROWS, const int NV, size_t pixels, size_t rows, size_t k, size_t x_stride) {
  const size_t tile = (size_t)SL_V_WIDTH * NV, bytes = x_stride * sizeof(sl_e) % 4096;
  return SL_V_GEMM_PACK && (bytes < 256 || bytes > 4096 - 256) && pixels >= tile && rows >= 8 * (size_t)ROWS &&
         k >= 32 && k * tile <= SL_GEMM_PACK_FLOATS && rows * (k + 1) * sizeof(sl_e) <= SL_GEMM_L2_BYTES / 2;
}
SL_V_INLINE size_t sl_gemm_packed(const int ROWS, const int NV, const int STAGE, size_t pixels, size_t rows, size_t k,
                                  const sl_e* x, size_t x_stride, const sl_e* panels, sl_e* y, size_t y_stride,
                                  const sl_matrix_out_t* o) {
  const size_t tile = (size_t)SL_V_WIDTH * NV, whole = pixels / tile * tile;
  const sl_e* residual = STAGE ? (const sl_e*)o->residual : NULL; /* STAGE: as sl_spmm's */
  const float* all_slopes = STAGE ? o->slopes : NULL;
  sl_e packed[SL_GEMM_PACK_FLOATS];
  for (size_t p = 0; p < whole; p += tile) {
    for (size_t c = 0; c < k; c++) memcpy(packed + c * tile, x + c * x_stride + p, tile * sizeof(sl_e));
    const sl_e* panel = panels;
    for (size_t r0 = 0; r0 < rows; r0 += ROWS, panel += ROWS * (k + 1)) {
      sl_e* out[8];
      for (int j = 0; j < ROWS; j++) out[j] = y + (r0 + j < rows ? r0 + j : r0) * y_stride + p;
      const sl_e* res[8];
      for (int j = 0; j < ROWS; j++) res[j] = residual != NULL ? residual + (out[j] - y) : NULL;
      sl_tile(ROWS, NV, 1, 0, sl_v_tail_of(SL_V_WIDTH), panel, k, packed, NULL, tile, out, rows - r0, &o->mm, 0,
              residual != NULL ? res : NULL, all_slopes != NULL ? all_slopes + r0 * o->slope_step : NULL,
              o->slope_step);
    }
  }
  return whole;
}
#if SL_V_GEMM_PACK && defined(SL_V_GEMM_TILE_ROWS)
#error "sl_gemm_packed runs sl_tile: give it the hand-scheduled tile first"
#endif

/* A gemm's last few pixels (up to SL_GEMM_ROW_TAIL, a 14x14 map's 4), where the vec header has
 * sl_v_load_halves(lo, hi) (lanes [0, W/2) from lo, the rest from hi) and a vector holds two
 * panels' rows: vectors along the rows, one accumulator per pixel fed by broadcast inputs, two
 * sets over alternate columns for the FMA latency. A masked one-vector tile would waste most of
 * its lanes and wait on its R broadcast weights a column: the Intel Xeon's AVX-512 8-row one took
 * 55% of a 3-vector tile's time for 4 pixels, 12% of a 14x14 1x1 layer. w1 may repeat w0 (a last
 * panel alone): each row's sum is the same either way, so results do not depend on how the panels
 * fall into pairs (threads). Rows j >= valid (of 2R, from w0's first) are not stored. */
#define SL_GEMM_ROW_TAIL 4
#ifdef SL_V_GEMM_ROW_TAIL
SL_V_INLINE void sl_gemm_row_tail(const int R, const int REM, const int dense, const sl_e* w0, const sl_e* w1,
                                  size_t cols, const sl_e* x, const uint32_t* x_offset, size_t x_stride,
                                  sl_e* const* out, size_t valid, const sl_minmax_t* mm, int accumulate,
                                  const sl_e* const* res, const float* slopes, size_t slope_step) {
  sl_e buf[SL_GEMM_ROW_TAIL][SL_V_WIDTH];
  sl_v acc[2][SL_GEMM_ROW_TAIL];
  if (valid > (size_t)(2 * R)) valid = 2 * R;
  if (accumulate || res != NULL) {
    for (int p = 0; p < REM; p++)
      for (int j = 0; j < 2 * R; j++) buf[p][j] = (size_t)j >= valid ? 0 : accumulate ? out[j][p] : res[j][p];
  }
  const sl_v bias = sl_v_load_halves(w0, w1);
#pragma GCC unroll 4
  for (int p = 0; p < REM; p++) {
    acc[0][p] = accumulate ? sl_v_load(buf[p]) : res != NULL ? sl_v_add(sl_v_load(buf[p]), bias) : bias;
    acc[1][p] = sl_v_dup(0);
  }
  w0 += R;
  w1 += R;
  size_t c = 0;
  for (; c + 2 <= cols; c += 2) {
#pragma GCC unroll 2
    for (int u = 0; u < 2; u++) {
      const sl_e* xc = dense ? x + (c + u) * x_stride : x + x_offset[c + u];
      const sl_v wv = sl_v_load_halves(w0 + (c + u) * R, w1 + (c + u) * R);
#pragma GCC unroll 4
      for (int p = 0; p < REM; p++) acc[u][p] = sl_v_fma(wv, sl_v_splat(xc + p), acc[u][p]);
    }
  }
  if (c < cols) {
    const sl_e* xc = dense ? x + c * x_stride : x + x_offset[c];
    const sl_v wv = sl_v_load_halves(w0 + c * R, w1 + c * R);
#pragma GCC unroll 4
    for (int p = 0; p < REM; p++) acc[0][p] = sl_v_fma(wv, sl_v_splat(xc + p), acc[0][p]);
  }
  const sl_v lo = sl_v_dup(mm->min), hi = sl_v_dup(mm->max);
#pragma GCC unroll 4
  for (int p = 0; p < REM; p++) sl_v_store(buf[p], sl_v_clamp(sl_v_add(acc[0][p], acc[1][p]), lo, hi));
  for (size_t j = 0; j < valid; j++)
    for (int p = 0; p < REM; p++) {
      sl_e v = buf[p][j];
      if (slopes != NULL && !(0 < v)) v = v * slopes[j * slope_step]; /* sl_vbinary's PRELU */
      out[j][p] = v;
    }
}
#endif

SL_V_INLINE void sl_gemm(const int ROWS, const int NV, const int dense, const int STAGE, size_t pixels, size_t rows,
                         size_t k, const sl_e* x, size_t x_stride, const uint32_t* x_offset, const sl_e* panels,
                         sl_e* y, size_t y_stride, const sl_matrix_out_t* o) {
  static const sl_minmax_t unclamped = {-INFINITY, INFINITY};
  const sl_minmax_t* mm = &o->mm;
  const sl_e* residual = STAGE ? (const sl_e*)o->residual : NULL; /* STAGE: as sl_spmm's */
  const float* all_slopes = STAGE ? o->slopes : NULL;
  const bool plain = residual == NULL && all_slopes == NULL; /* what a hand-scheduled tile does */
  const size_t tile = (size_t)SL_V_WIDTH * NV, max_chunk = SL_GEMM_L1_BYTES / (sizeof(sl_e) * tile);
  /* Up to two chunks' worth runs whole: a second pass over the partial sums costs more than
   * the misses it saves (ResNet-50's 28x28 Winograd products, 128 columns: 0.47 -> 0.52 ms split). */
  const size_t chunks = k > 2 * max_chunk ? (k + max_chunk - 1) / max_chunk : 1;
  const size_t chunk = chunks > 1 ? (k + chunks - 1) / chunks : k;
  size_t block = SL_GEMM_L2_BYTES / (sizeof(sl_e) * (chunk + 1)) / tile * tile;
  if (block < tile) block = tile;
  for (size_t p0 = 0; p0 < pixels; p0 += block) {
    size_t n = pixels - p0 < block ? pixels - p0 : block;
#ifdef SL_V_GEMM_ROW_TAIL
    const size_t rem = n % tile;
    const bool row_tail = SL_V_WIDTH == 2 * ROWS && rem > 0 && rem <= SL_GEMM_ROW_TAIL;
#endif
    for (size_t c0 = 0; c0 < k || c0 == 0; c0 += chunk) {
      const size_t cols = k - c0 < chunk ? k - c0 : chunk;
      const int first = c0 == 0, last = c0 + cols >= k, with_residual = first && residual != NULL;
      /* each tile's share of the next panel's chunk, whole lines */
      const size_t share = (ROWS * (cols + 1) * sizeof(sl_e) / ((n + tile - 1) / tile) + 63) / 64 * 64;
      const sl_e* xc = dense ? x + c0 * x_stride : x;
      const uint32_t* oc = dense ? NULL : x_offset + c0;
      const sl_e* panel = panels + ROWS * c0; /* skips the chunk's earlier columns; biases unread after the first */
      for (size_t r0 = 0; r0 < rows; r0 += ROWS, panel += ROWS * (k + 1)) {
        const float* slopes = last && all_slopes != NULL ? all_slopes + r0 * o->slope_step : NULL;
        /* The next panel's chunk is a new stream that the hardware prefetcher finds only after
         * its first misses; cold weights (read once per run) are fetched, a 64-byte line at a
         * time, while this one runs: a share before each tile, not all at once (sl_nc_ahead). */
        const sl_e* next = r0 + ROWS < rows ? panel + ROWS * (k + 1) : !last ? panels + ROWS * (c0 + cols) : NULL;
        const size_t ahead_bytes = next != NULL ? ROWS * (cols + 1) * sizeof(sl_e) : 0;
        size_t ahead = 0;
#define GEMM_TILE(nv, masked, tail, p)                                                                  \
  do {                                                                                                  \
    if (ahead < ahead_bytes) {                                                                          \
      sl_prefetch((const char*)next + ahead, ahead_bytes - ahead < share ? ahead_bytes - ahead : share); \
      ahead += share;                                                                                   \
    }                                                                                                   \
    if (SL_GEMM_WHOLE_TILE(nv, masked)) {                                                               \
      SL_V_GEMM_TILE(panel, cols, xc + p0 + (p), x_stride, y + r0 * y_stride + p0 + (p), y_stride,      \
                     last ? mm : &unclamped, !first);                                                   \
      break;                                                                                            \
    }                                                                                                   \
    sl_e* out[8];                                                                                      \
    const sl_e* res[8];                                                                                \
    for (int j = 0; j < ROWS; j++) {                                                                    \
      out[j] = y + (r0 + j < rows ? r0 + j : r0) * y_stride + p0 + (p);                                \
      res[j] = with_residual ? residual + (out[j] - y) : NULL;                                         \
    }                                                                                                   \
    sl_tile(ROWS, nv, dense, masked, tail, panel, cols, xc + p0 + (p), oc, x_stride, out, rows - r0,    \
            last ? mm : &unclamped, !first, with_residual ? res : NULL, slopes, o->slope_step);         \
  } while (0)
#ifdef SL_V_GEMM_ROW_TAIL
        if (row_tail) {
          SL_PIXEL_LOOP(NV, n - rem, GEMM_TILE);
          /* the last pixels, over this panel and the one before it, or alone where it has no partner */
          if (r0 / ROWS % 2 == 0 && r0 + ROWS < rows) continue;
          const size_t r = r0 / ROWS % 2 == 1 ? r0 - ROWS : r0;
          const sl_e* w0 = r == r0 ? panel : panel - ROWS * (k + 1);
          const size_t p = p0 + n - rem;
          sl_e* out[2 * 8];
          const sl_e* res_rows[2 * 8];
          for (size_t j = 0; j < 2 * (size_t)ROWS; j++) {
            out[j] = y + (r + j < rows ? r + j : r) * y_stride + p;
            res_rows[j] = with_residual ? residual + (out[j] - y) : NULL;
          }
          const sl_e* const* res = with_residual ? res_rows : NULL;
          const sl_e* xt = xc + p;
          const sl_minmax_t* clamp = last ? mm : &unclamped;
          const float* tail_slopes = slopes != NULL && r != r0 ? slopes - ROWS * o->slope_step : slopes;
          const size_t valid = r == r0 ? (rows - r < (size_t)ROWS ? rows - r : (size_t)ROWS) : rows - r;
#define ROW_TAIL(REM)                                                                                     \
  sl_gemm_row_tail(ROWS, REM, dense, w0, panel, cols, xt, oc, x_stride, out, valid, clamp, !first, res, tail_slopes, \
                   o->slope_step)
          if (rem == 1) ROW_TAIL(1);
          if (rem == 2) ROW_TAIL(2);
          if (rem == 3) ROW_TAIL(3);
          if (rem == 4) ROW_TAIL(4);
#undef ROW_TAIL
          continue;
        }
#endif
        SL_PIXEL_LOOP(NV, n, GEMM_TILE);
#undef GEMM_TILE
      }
      if (k == 0) break;
    }
  }
}

#define SL_DEFINE_gemm(name, PIXELS, ROWS)                                                                  \
  static SL_V_TARGET __attribute__((noinline)) size_t name##_packed(                                         \
      size_t pixels, size_t rows, size_t k, const sl_e* x, size_t x_stride, const sl_e* panels, sl_e* y,      \
      size_t y_stride, const sl_matrix_out_t* out) {                                                          \
    if (!SL_V_STAGES || (out->residual == NULL && out->slopes == NULL))                                      \
      return sl_gemm_packed(ROWS, (PIXELS) / SL_V_WIDTH, 0, pixels, rows, k, x, x_stride, panels, y, y_stride, \
                            out);                                                                            \
    return sl_gemm_packed(ROWS, (PIXELS) / SL_V_WIDTH, 1, pixels, rows, k, x, x_stride, panels, y, y_stride, out); \
  }                                                                                                          \
  static SL_V_TARGET __attribute__((noinline)) void name##_staged(                                           \
      size_t pixels, size_t rows, size_t k, const sl_e* x, size_t x_stride, const uint32_t* x_offset,         \
      const sl_e* panels, sl_e* y, size_t y_stride, const sl_matrix_out_t* out) {                             \
    if (x_offset == NULL)                                                                                    \
      sl_gemm(ROWS, (PIXELS) / SL_V_WIDTH, 1, 1, pixels, rows, k, x, x_stride, NULL, panels, y, y_stride, out); \
    else                                                                                                     \
      sl_gemm(ROWS, (PIXELS) / SL_V_WIDTH, 0, 1, pixels, rows, k, x, 0, x_offset, panels, y, y_stride, out);  \
  }                                                                                                          \
  SL_V_TARGET void name(size_t pixels, size_t rows, size_t k, const sl_e* x, size_t x_stride,               \
                        const uint32_t* x_offset, const sl_e* panels, sl_e* y, size_t y_stride,            \
                        const sl_matrix_out_t* out) {                                                        \
    size_t done = x_offset == NULL && sl_gemm_packs(ROWS, (PIXELS) / SL_V_WIDTH, pixels, rows, k, x_stride)  \
                      ? name##_packed(pixels, rows, k, x, x_stride, panels, y, y_stride, out)                 \
                      : 0;                                                                                   \
    sl_matrix_out_t rest = *out; /* its residual from the same pixel on as y */                              \
    if (rest.residual != NULL) rest.residual += done;                                                        \
    if (SL_V_STAGES && (rest.residual != NULL || rest.slopes != NULL))                                       \
      name##_staged(pixels - done, rows, k, x + done, x_stride, x_offset, panels, y + done, y_stride, &rest); \
    else if (x_offset == NULL)                                                                               \
      sl_gemm(ROWS, (PIXELS) / SL_V_WIDTH, 1, 0, pixels - done, rows, k, x + done, x_stride, NULL, panels,   \
              y + done, y_stride, &rest);                                                                    \
    else                                                                                                     \
      sl_gemm(ROWS, (PIXELS) / SL_V_WIDTH, 0, 0, pixels, rows, k, x, 0, x_offset, panels, y, y_stride, out);  \
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

/* One input broadcast against a tile's weights: where the ISA has FMLA by element, lane 0 of a
 * scalar load (LD1R's broadcast takes a vector pipe on the A76: 6 per column cost the f16 tile a
 * fifth of its FMA slots; compilers fold f32 splats so themselves). SL_NC_X(p) loads, SL_NC_FMA
 * multiplies-adds. Optional in a vec header: SL_V_LOAD_SCALAR with sl_v_load_scalar(p), lane 0 =
 * *p and the others unspecified. */
#ifdef SL_V_FMA_LANE
#define SL_NC_FMA(w, x, acc) sl_v_fma_lane(w, x, 0, acc)
#else
#define SL_NC_FMA(w, x, acc) sl_v_fma(w, x, acc)
#endif
#if defined(SL_V_FMA_LANE) && defined(SL_V_LOAD_SCALAR)
#define SL_NC_X(p) sl_v_load_scalar(p)
#else
#define SL_NC_X(p) sl_v_splat(p)
#endif

/* Weights a few columns ahead, a cache line at a time: the first tile over a chunk of a panel reads
 * it from L2 (or memory), the others from L1 and L2. The next panel's chunk (`ahead`), a new stream
 * the hardware prefetcher would find only after its first misses, is fetched column by column
 * while this one runs: by the first tile, or where the ISA spreads it (SL_V_NC_SPREAD_AHEAD), a
 * share by every tile toward L2, so that cold weights (each layer's, once per run in a whole
 * model) stream from memory all the time rather than in one tile of seven. AVX-512 on the Intel
 * Xeon, weights cold: 49x512x4608 (ResNet-50's 7x7 3x3 layers) 2.24-2.30 -> 1.78-1.79 ms, 1x1 ones
 * 15-20% less; AVX2's 6x16 there 10% less cold but 4% more warm (the bookkeeping per column), so off. */
#define SL_NC_PREFETCH_COLS 8
#ifndef SL_V_NC_SPREAD_AHEAD
#define SL_V_NC_SPREAD_AHEAD 0
#endif
typedef struct {
  const char* p;    /* this tile's share of the next chunk */
  uint64_t step;    /* bytes of it per column, 16.16 fixed point (0: none; 64 bits: wasm32's size_t overflows) */
  uint64_t reached; /* how far the columns so far have got, 16.16 */
  uint64_t line;    /* the next line of the share to fetch */
} sl_nc_ahead_t;
SL_V_INLINE void sl_nc_prefetch(const sl_e* w, bool first, sl_nc_ahead_t* ahead, size_t panel_rows, size_t bytes) {
  if (first) sl_prefetch(w + SL_NC_PREFETCH_COLS * panel_rows, bytes);
  ahead->reached += ahead->step;
  for (; ahead->line < ahead->reached >> 16; ahead->line += 64)
    __builtin_prefetch(ahead->p + ahead->line, 0, SL_V_NC_SPREAD_AHEAD ? 2 : 3);
}

/* Columns [k0, k0 + k) of one tile. The first chunk starts from the biases, a later one from the
 * partial sums it left in y; only the last clamps. */
SL_V_INLINE void sl_nc_tile(const int MR, const int NV, const int unit, const int masked, sl_v_tail tail,
                            size_t valid, const sl_nc_args_t* a, size_t k0, size_t k, bool last, const sl_e* x,
                            const sl_e* panel, sl_e* y, bool first, sl_nc_ahead_t ahead) {
  const size_t x_pixel_stride = unit ? 1 : a->x_pixel_stride; /* unit: channel-major x, immediate offsets */
  const size_t panel_rows = a->panel_rows, x_k_stride = a->x_k_stride, y_pixel_stride = a->y_pixel_stride;
  const bool scatter = a->y_channel_stride != 1;
  sl_v acc[8][4];
  sl_e buf[8][4 * SL_V_WIDTH]; /* the scattered outputs, as elements (halves are not a vector's lane type) */
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
        const sl_e* in = y + o * a->y_channel_stride;
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) buf[i][SL_V_WIDTH * v + l] = in[i * y_pixel_stride];
      }
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = sl_v_load(buf[i] + SL_V_WIDTH * v);
    }
  }
  const sl_e* w = panel + panel_rows * (1 + k0);
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
        sl_nc_prefetch(w + s * panel_rows, first, &ahead, panel_rows, sizeof(sl_e) * SL_V_WIDTH * NV);
        const sl_v xs = SL_NC_X(x + s * x_k_stride);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[s][v] = SL_NC_FMA(sl_v_load(w + s * panel_rows + SL_V_WIDTH * v), xs, acc[s][v]);
      }
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[0][v] = sl_v_add(sl_v_add(acc[0][v], acc[1][v]), sl_v_add(acc[2][v], acc[3][v]));
  }
  for (; c < k; c++, w += panel_rows, x += x_k_stride) {
    sl_v wv[4];
    sl_nc_prefetch(w, first, &ahead, panel_rows, sizeof(sl_e) * SL_V_WIDTH * NV);
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) wv[v] = sl_v_load(w + SL_V_WIDTH * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const sl_v xi = SL_NC_X(x + i * x_pixel_stride);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = SL_NC_FMA(wv[v], xi, acc[i][v]);
    }
  }
  if (last) {
    const sl_v lo = sl_v_dup(a->mm->min), hi = sl_v_dup(a->mm->max);
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
    for (int v = 0; v < NV; v++) sl_v_store(buf[i] + SL_V_WIDTH * v, acc[i][v]);
  }
  for (int v = 0; v < NV; v++)
    for (int l = 0; l < SL_V_WIDTH && (size_t)(SL_V_WIDTH * v + l) < valid; l++) {
      sl_e* out = y + (size_t)(SL_V_WIDTH * v + l) * a->y_channel_stride;
#pragma GCC unroll 8
      for (int i = 0; i < MR; i++) out[i * y_pixel_stride] = buf[i][SL_V_WIDTH * v + l];
    }
}

/* Tile i's share (of `tiles`) of the next chunk's `bytes`, spread over its `cols` columns. */
SL_V_INLINE sl_nc_ahead_t sl_nc_ahead(const sl_e* next, size_t bytes, size_t cols, size_t i, size_t tiles) {
  if (!SL_V_NC_SPREAD_AHEAD) tiles = 1;
  if (next == NULL || cols == 0 || i >= tiles) return (sl_nc_ahead_t){NULL, 0, 0, 0};
  const size_t lo = i * bytes / tiles, hi = (i + 1) * bytes / tiles;
  return (sl_nc_ahead_t){(const char*)next + lo, (((uint64_t)(hi - lo) << 16) + cols - 1) / cols, 0, 0};
}

/* Pixels in groups of MR (the last group smaller) over nv vectors of one panel (fewer than its
 * own in a last panel of fewer rows). */
#define SL_NC_TILE(mr, nv, masked, tail, x_, y_, i_)                                                      \
  sl_nc_tile(mr, nv, UNIT, masked, tail, valid, &a, k0, k1 - k0, k1 == k, x_, panel, y_, (i_) == 0,         \
             sl_nc_ahead(next, next_bytes, k1 - k0, i_, tiles))
#define SL_NC_PIXELS(MR, nv, masked, tail)                                                                  \
  do {                                                                                                      \
    const size_t tiles = (n + (MR) - 1) / (MR);                                                             \
    size_t p_ = 0;                                                                                          \
    for (; p_ + (MR) <= n; p_ += (MR))                                                                      \
      SL_NC_TILE(MR, nv, masked, tail, xb + p_ * a.x_pixel_stride, yb + p_ * a.y_pixel_stride, p_ / (MR)); \
    const size_t left_ = n - p_, i_ = p_ / (MR);                                                            \
    const sl_e* xl_ = xb + p_ * a.x_pixel_stride;                                                           \
    sl_e* yl_ = yb + p_ * a.y_pixel_stride;                                                                 \
    if (left_ == 1) SL_NC_TILE(1, nv, masked, tail, xl_, yl_, i_);                                          \
    if ((MR) > 2 && left_ == 2) SL_NC_TILE(2, nv, masked, tail, xl_, yl_, i_);                              \
    if ((MR) > 3 && left_ == 3) SL_NC_TILE(3, nv, masked, tail, xl_, yl_, i_);                              \
    if ((MR) > 4 && left_ == 4) SL_NC_TILE(4, nv, masked, tail, xl_, yl_, i_);                              \
    if ((MR) > 5 && left_ == 5) SL_NC_TILE(5, nv, masked, tail, xl_, yl_, i_);                              \
    if ((MR) > 6 && left_ == 6) SL_NC_TILE(6, nv, masked, tail, xl_, yl_, i_);                              \
    if ((MR) > 7 && left_ == 7) SL_NC_TILE(7, nv, masked, tail, xl_, yl_, i_);                              \
  } while (0)

/* Columns in chunks whose slice of a panel stays in L2 while the pixel tiles sweep it (a 3x3
 * layer of 512 channels has 4608 columns: a whole panel would stream from memory once per
 * tile), the partial sums waiting in y; pixels in blocks whose inputs fit in L2 beside it, large
 * enough that 128 tokens or a 14x14 map are one block and each weight streams from memory once
 * (blocks of 90 pixels cost the lent Xeon 10-20% on transformer FCs). A last panel of fewer rows
 * runs only the vectors it has. */
#define SL_NC_PANEL_BYTES (128 * 1024)
#define SL_NC_INPUT_BYTES (512 * 1024)
SL_V_INLINE void sl_gemm_nc(const int MR, const int NV, const int UNIT, size_t pixels, size_t rows, size_t k,
                            const sl_e* x, size_t x_pixel_stride, size_t x_k_stride, const sl_e* panels, sl_e* y,
                            size_t y_pixel_stride, size_t y_channel_stride, const sl_minmax_t* mm) {
  const sl_nc_args_t a = {x_pixel_stride, x_k_stride, (size_t)SL_V_WIDTH * NV, y_pixel_stride, y_channel_stride, mm};
  const size_t chunk = SL_NC_PANEL_BYTES / (sizeof(sl_e) * a.panel_rows);
  size_t block = SL_NC_INPUT_BYTES / (sizeof(sl_e) * ((k < chunk ? k : chunk) + 1)) / MR * MR;
  if (block < (size_t)MR) block = MR;
  for (size_t p0 = 0; p0 < pixels; p0 += block) {
    const size_t n = pixels - p0 < block ? pixels - p0 : block;
    const sl_e* xb = x + p0 * x_pixel_stride;
    size_t k0 = 0;
    do {
      const size_t k1 = k - k0 > chunk ? k0 + chunk : k;
      const sl_e* panel = panels;
      for (size_t r0 = 0; r0 < rows; r0 += a.panel_rows, panel += a.panel_rows * (k + 1)) {
        sl_e* yb = y + p0 * y_pixel_stride + r0 * y_channel_stride;
        const size_t valid = rows - r0 < a.panel_rows ? rows - r0 : a.panel_rows;
        /* the next panel's weights at this chunk's columns, or the next chunk's first panel */
        const sl_e* next = r0 + a.panel_rows < rows ? panel + a.panel_rows * (k + 2 + k0)
                           : k1 < k                 ? panels + a.panel_rows * (1 + k1)
                                                    : NULL;
        const size_t next_bytes = sizeof(sl_e) * a.panel_rows * (k1 - k0);
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
#undef SL_NC_FMA
#undef SL_NC_X

#define SL_DEFINE_gemm_nc(name, PIXELS, ROWS)                                                               \
  SL_V_TARGET void name(size_t pixels, size_t rows, size_t k, const sl_e* x, size_t x_pixel_stride,         \
                        size_t x_k_stride, const sl_e* panels, sl_e* y, size_t y_pixel_stride,             \
                        size_t y_channel_stride, const sl_minmax_t* mm) {                                    \
    if (x_pixel_stride == 1)                                                                                 \
      sl_gemm_nc(PIXELS, (ROWS) / SL_V_WIDTH, 1, pixels, rows, k, x, 1, x_k_stride, panels, y, y_pixel_stride, \
                 y_channel_stride, mm);                                                                      \
    else                                                                                                     \
      sl_gemm_nc(PIXELS, (ROWS) / SL_V_WIDTH, 0, pixels, rows, k, x, x_pixel_stride, x_k_stride, panels, y,   \
                 y_pixel_stride, y_channel_stride, mm);                                                      \
  }

/* Depthwise: NV vectors of one channel's outputs. A tap at step e = k - 2 counts where the lane's
 * output column col plus e stays in the row; elsewhere it read the neighbouring row (NaN or not),
 * so it counts only in the lanes where it stays: 16-lane vectors sum each step apart and add it
 * there, narrower ones zero its inputs elsewhere. */
SL_V_INLINE sl_vm sl_dw_step_counts(int k, sl_v col, size_t width) {
  const float bound[5] = {1.0f, 0.0f, 0.0f, (float)width - 1.0f, (float)width - 2.0f};
  return k < 2 ? sl_v_lt(sl_v_dup(bound[k]), col) : sl_v_lt(col, sl_v_dup(bound[k]));
}

#if SL_V_WIDTH < 16
/* Narrow vectors: step k - 2 of every tap row that has it, into acc; with `counts`, its inputs
 * are zero in the lanes where the step leaves the row. Every tile sums in this order, so an output
 * does not depend on where a call's tiles fall (threads' row bands give one thread's bits). */
SL_V_INLINE void sl_dw_step(const int NV, const int tail, size_t last, int k, const sl_dwconv_taps_t* taps,
                            const sl_e* x, const sl_e* w, const sl_vm* counts, sl_v* acc) {
  for (size_t r = 0; r < taps->rows; r++) {
    if (!(taps->row[r].columns & (1u << k))) continue;
    const sl_e* p = x + taps->row[r].offset + k - 2;
    const sl_v wk = sl_v_splat(w + 5 * r + k);
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      sl_v xv = sl_tile_load(tail, sl_v_tail_of(last), p + SL_V_WIDTH * v, v == NV - 1);
      if (counts != NULL) xv = sl_v_select(counts[v], xv, sl_v_dup(0.0f));
      acc[v] = sl_v_fma(wk, xv, acc[v]);
    }
  }
}
#endif

/* Depthwise outputs: NV vectors clamped and stored at y, the last cut to `last` lanes when `tail`. */
SL_V_INLINE void sl_dw_store(const int NV, const sl_v* acc, int tail, size_t last, sl_e* y, const sl_minmax_t* mm) {
  const sl_v lo = sl_v_dup(mm->min), hi = sl_v_dup(mm->max);
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) {
    const sl_v o = sl_v_clamp(acc[v], lo, hi);
    if (tail && v == NV - 1)
      sl_v_store_tail(y + SL_V_WIDTH * v, o, sl_v_tail_of(last));
    else
      sl_v_store(y + SL_V_WIDTH * v, o);
  }
}

/* 16-lane vectors: each tap row is loaded once (NV vectors and the few floats past them) and its
 * steps shifted out of those registers, since unaligned 64-byte loads mostly straddle cache
 * lines; all five steps' sums stay live. Narrower vectors load every step (their loads rarely
 * straddle, and shifts would cost more) one step at a time, so two sums are live and the tile
 * can be wider. `last` lanes of the last vector count (SL_V_WIDTH unless this is the tail);
 * `inside`: no lane is within two columns of a row's end, so every step counts everywhere. */
SL_V_INLINE void sl_dw_tile(const int NV, const int tail, size_t last, const sl_v* col, size_t width, uint32_t steps,
                            int inside, const sl_dwconv_taps_t* taps, const sl_e* x, const sl_e* w, sl_e* y,
                            const sl_minmax_t* mm) {
  sl_v acc[8];
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) acc[v] = sl_v_splat(w);
  w++;
#if SL_V_WIDTH >= 16
  (void)inside; /* always 0 here: a masked add costs what an add does */
  sl_v sums[5][8];
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) sums[0][v] = sums[1][v] = sums[3][v] = sums[4][v] = sl_v_dup(0.0f);
  for (size_t r = 0; r < taps->rows; r++, w += 5) {
    const uint32_t columns = taps->row[r].columns;
    const sl_e* p = x + taps->row[r].offset - 2;
    /* NV vectors and 4 floats: x[i + offset - 2 .. i + offset + 2] of the outputs that count. */
    sl_v in[9];
#pragma GCC unroll 9
    for (int j = 0; j <= NV; j++) {
      size_t need = (size_t)(NV - 1) * SL_V_WIDTH + (tail ? last : SL_V_WIDTH) + 4;
      size_t lanes = need > (size_t)SL_V_WIDTH * j ? need - (size_t)SL_V_WIDTH * j : 0;
      in[j] = lanes >= SL_V_WIDTH ? sl_v_load(p + SL_V_WIDTH * j)
              : lanes > 0         ? sl_v_load_tail(p + SL_V_WIDTH * j, sl_v_tail_of(lanes))
                                  : sl_v_dup(0.0f);
    }
#pragma GCC unroll 5
    for (int k = 0; k < 5; k++) {
      if (!(columns & (1u << k))) continue;
      const sl_v wk = sl_v_splat(w + k);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) {
        const sl_v window = k == 0 ? in[v] : sl_v_ext(in[v], in[v + 1], k);
        if (k == 2)
          acc[v] = sl_v_fma(wk, window, acc[v]);
        else
          sums[k][v] = sl_v_fma(wk, window, sums[k][v]);
      }
    }
  }
#pragma GCC unroll 5
  for (int k = 0; k < 5; k++) {
    if (k == 2 || !(steps & (1u << k))) continue;
    /* One masked add each on AVX-512. */
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
      acc[v] = sl_v_select(sl_dw_step_counts(k, col[v], width), sl_v_add(acc[v], sums[k][v]), acc[v]);
  }
#else
#pragma GCC unroll 5
  for (int k = 0; k < 5; k++) {
    if (!(steps & (1u << k))) continue;
    if (k == 2 || inside) { /* the step counts in every lane */
      sl_dw_step(NV, tail, last, k, taps, x, w, NULL, acc);
      continue;
    }
    sl_vm counts[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) counts[v] = sl_dw_step_counts(k, col[v], width);
    sl_dw_step(NV, tail, last, k, taps, x, w, counts, acc);
  }
#endif
  sl_dw_store(NV, acc, tail, last, y, mm);
}

/* Row reuse (vec headers that define SL_V_DW_ROWS = M, the output rows per tile: NEON's 32
 * registers hold M x NV accumulators; 16-lane vectors below). A chain of tap rows (same columns,
 * offsets one output row apart: a kernel's rows over one plane at vertical stride 1) reads for
 * output row m + 1 and tap row j the input row that output row m reads for tap row j + 1. So the
 * tile takes M output rows at once and walks the chain's L + M - 1 input rows, each step's NV
 * vectors loaded once and fed to every output row that uses them: a 3x3 kernel's 9 FMAs per
 * output vector cost 5 loads for 3 rows instead of 9. Edge tiles zero the inputs of the steps that
 * leave the row (only finite weights multiply them, so the term drops as the reference drops it,
 * NaN input included). The end of the chain that starts at tap row r: */
SL_V_INLINE size_t sl_dw_chain_end(const sl_dwconv_taps_t* taps, size_t r, size_t width) {
  size_t end = r + 1;
  while (end < taps->rows && taps->row[end].columns == taps->row[r].columns &&
         taps->row[end].offset == taps->row[end - 1].offset + width)
    end++;
  return end;
}

/* STEP(lo, hi) with constant bounds: the output rows m = q - hi .. q - lo that input row q feeds
 * (lo <= hi <= 2). */
#define SL_DW_ROWS_SWITCH(lo, hi, STEP) \
  do {                                  \
    switch (3 * (lo) + (hi)) {          \
      case 0: STEP(0, 0); break;        \
      case 1: STEP(0, 1); break;        \
      case 2: STEP(0, 2); break;        \
      case 4: STEP(1, 1); break;        \
      case 5: STEP(1, 2); break;        \
      default: STEP(2, 2); break;       \
    }                                   \
  } while (0)

#ifdef SL_V_DW_ROWS

/* Input row q of a chain (its steps at in + k - 2) into output rows lo..hi, for which it is tap row
 * q - m (weights at wr + 5 * (q - m)): the rows that use it, fixed per call so no lane or row
 * is tested inside. */
SL_V_INLINE void sl_dw_rows_step(const int NV, const int inside, const int lo, const int hi, const sl_v* col,
                                 size_t width, uint32_t columns, const sl_e* in, const sl_e* wr, size_t q,
                                 sl_v (*acc)[8]) {
  const sl_v zero = sl_v_dup(0.0f);
#pragma GCC unroll 5
  for (int k = 0; k < 5; k++) {
    if (!(columns & (1u << k))) continue;
    sl_v xv[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      xv[v] = sl_v_load(in + k + SL_V_WIDTH * v);
      if (!inside && k != 2) xv[v] = sl_v_select(sl_dw_step_counts(k, col[v], width), xv[v], zero);
    }
#pragma GCC unroll 3
    for (int m = lo; m <= hi; m++) {
#if SL_V_WIDTH >= 8
      /* the row's 5 weights from one load, used by lane (it reads 3 past: SL_F16_DWCONV_W_PAST) */
      const sl_v wv = sl_v_load(wr + 5 * (q - (size_t)m));
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[m][v] = sl_v_fma_lane(xv[v], wv, k, acc[m][v]);
#else
      const sl_v wk = sl_v_splat(wr + 5 * (q - (size_t)m) + k);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[m][v] = sl_v_fma(wk, xv[v], acc[m][v]);
#endif
    }
  }
}

/* NV vectors at each of 3 output rows (y, y + width, y + 2 * width), all inside one row each (col:
 * their columns); `inside`: no step leaves the row. */
_Static_assert(SL_V_DW_ROWS == 3 && SL_DWCONV_ROW_TILE == 3, "sl_dw_rows_tile's cases are written for 3 output rows");
SL_V_INLINE void sl_dw_rows_tile(const int NV, const int inside, const sl_v* col, size_t width,
                                 const sl_dwconv_taps_t* taps, const sl_e* x, const sl_e* w, sl_e* y,
                                 const sl_minmax_t* mm) {
  sl_v acc[3][8];
#pragma GCC unroll 3
  for (int m = 0; m < 3; m++)
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[m][v] = sl_v_splat(w);
  w++;
  for (size_t r = 0; r < taps->rows;) {
    const size_t end = sl_dw_chain_end(taps, r, width), rows = end - r;
    const uint32_t columns = taps->row[r].columns;
    const sl_e* in = x + taps->row[r].offset - 2;
    const sl_e* wr = w + 5 * r;
    for (size_t q = 0; q < rows + 2; q++, in += width) {
      /* output rows m with 0 <= q - m < rows */
      const size_t lo = q + 1 > rows ? q + 1 - rows : 0, hi = q < 2 ? q : 2;
#define DW_ROWS_STEP(l, h) sl_dw_rows_step(NV, inside, l, h, col, width, columns, in, wr, q, acc)
      SL_DW_ROWS_SWITCH(lo, hi, DW_ROWS_STEP);
#undef DW_ROWS_STEP
    }
    r = end;
  }
#pragma GCC unroll 3
  for (int m = 0; m < 3; m++) sl_dw_store(NV, acc[m], 0, SL_V_WIDTH, y + m * width, mm);
}

/* Bands of M whole rows in tiles of NV vectors, the last tile of a row moved back to end at the
 * row's end (it recomputes a few outputs: the same values); what is left of count returns for the
 * flat loop. Rows narrower than a tile stay with it. */
SL_V_INLINE size_t sl_dwconv_rows(const int NV, size_t channels, size_t count, size_t width, const sl_e* x,
                                  size_t x_stride, const sl_e* w, const sl_dwconv_taps_t* taps, sl_e* y,
                                  size_t y_stride, const sl_minmax_t* mm) {
  const size_t tile = (size_t)NV * SL_V_WIDTH, band = SL_V_DW_ROWS * width, w_stride = 1 + 5 * (size_t)taps->rows;
  if (width < tile || count < band) return 0;
  size_t b = 0;
  for (; b + band <= count; b += band)
    for (size_t c = 0; c < width; c += tile) {
      const size_t c0 = c + tile <= width ? c : width - tile;
      sl_v col[8];
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) col[v] = sl_v_add(sl_v_iota(), sl_v_dup((float)(c0 + SL_V_WIDTH * (size_t)v)));
      const int inside = c0 >= 2 && c0 + tile + 2 <= width;
      for (size_t ch = 0; ch < channels; ch++) {
        const sl_e* xc = x + ch * x_stride + b + c0;
        sl_e* yc = y + ch * y_stride + b + c0;
        if (inside) sl_dw_rows_tile(NV, 1, col, width, taps, xc, w + ch * w_stride, yc, mm);
        else sl_dw_rows_tile(NV, 0, col, width, taps, xc, w + ch * w_stride, yc, mm);
      }
    }
  return b;
}
#endif

#if SL_V_WIDTH >= 16
/* Row reuse on 16-lane vectors (as SL_V_DW_ROWS above, with this width's shifts): a tile of up to
 * NV vectors across one row at each of 3 output rows. Each input row of a chain is loaded once
 * (its vectors and the few floats past them) and its steps shifted out of those registers for
 * every output row that uses it: a 3x3 kernel's 27 FMAs over 3 rows shift 5 input rows instead
 * of 9. The load starts at step s0 (1 when no tap has step -2: one shift fewer per row). Every
 * output of a tile lies in one row, so loaded float i stands for column c0 + i + s0 - 2 of every
 * tap row: the floats whose column leaves the row are loaded as zeros (lanes masks[j] of vector
 * j), which drops every step that leaves it at once, as the reference drops it. */
/* The loads of a tile of `outputs` outputs from column c0 (floats from column c0 + s0 - 2, the
 * vectors j <= NV): lanes masks[j] stay in the row (the rest load as zeros). */
SL_V_INLINE void sl_dw_rows16_masks(const int NV, size_t s0, size_t c0, size_t outputs, size_t width, sl_v_tail* masks) {
  const size_t lo = c0 + s0 < 2 ? 2 - s0 - c0 : 0, end_col = width + 2 - s0 - c0;
  const size_t hi = outputs + 4 - s0 < end_col ? outputs + 4 - s0 : end_col;
#pragma GCC unroll 5
  for (int j = 0; j <= NV; j++) {
    const size_t a = (size_t)SL_V_WIDTH * j, b = a + SL_V_WIDTH;
    masks[j] = sl_v_tail_range(lo > a ? (lo < b ? lo - a : SL_V_WIDTH) : 0, hi > a ? (hi < b ? hi - a : SL_V_WIDTH) : 0);
  }
}

SL_V_INLINE void sl_dw_rows16_step(const int NV, const int s0, const int lo, const int hi, const sl_v_tail* masks,
                                   uint32_t columns, const sl_e* in, const sl_e* wr, size_t q, sl_v (*acc)[4]) {
  sl_v iv[5];
#pragma GCC unroll 5
  for (int j = 0; j <= NV; j++) iv[j] = sl_v_load_tail(in + SL_V_WIDTH * j, masks[j]);
#pragma GCC unroll 5
  for (int k = s0; k < 5; k++) {
    if (!(columns & (1u << k))) continue;
    sl_v xv[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) xv[v] = k == s0 ? iv[v] : sl_v_ext(iv[v], iv[v + 1], k - s0);
#pragma GCC unroll 3
    for (int m = lo; m <= hi; m++) {
      const sl_v wk = sl_v_splat(wr + 5 * (q - (size_t)m) + k);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[m][v] = sl_v_fma(wk, xv[v], acc[m][v]);
    }
  }
}

/* One chain's input rows (from `in`, its first tap row at step s0) into the 3 output rows; a
 * chain of 3 (a 3x3 kernel's) unrolled. */
SL_V_INLINE void sl_dw_rows16_chain(const int NV, const int s0, const sl_v_tail* masks, size_t width, uint32_t columns,
                                    size_t rows, const sl_e* in, const sl_e* wr, sl_v (*acc)[4]) {
#define DW_ROWS16_STEP(l, h) sl_dw_rows16_step(NV, s0, l, h, masks, columns, in + q * width, wr, q, acc)
  if (rows == 3) {
    size_t q = 0;
    DW_ROWS16_STEP(0, 0);
    q = 1;
    DW_ROWS16_STEP(0, 1);
    q = 2;
    DW_ROWS16_STEP(0, 2);
    q = 3;
    DW_ROWS16_STEP(1, 2);
    q = 4;
    DW_ROWS16_STEP(2, 2);
    return;
  }
  for (size_t q = 0; q < rows + 2; q++) {
    /* output rows m with 0 <= q - m < rows */
    const size_t lo = q + 1 > rows ? q + 1 - rows : 0, hi = q < 2 ? q : 2;
    SL_DW_ROWS_SWITCH(lo, hi, DW_ROWS16_STEP);
  }
#undef DW_ROWS16_STEP
}

/* NV vectors (the last cut to `last` lanes) at each of the 3 output rows y, y + width,
 * y + 2 * width, from column c0 of their rows. */
SL_V_INLINE void sl_dw_rows16_tile(const int NV, size_t last, size_t c0, size_t width, const sl_dwconv_taps_t* taps,
                                   const sl_e* x, const sl_e* w, sl_e* y, const sl_minmax_t* mm) {
  sl_v acc[3][4];
#pragma GCC unroll 3
  for (int m = 0; m < 3; m++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[m][v] = sl_v_splat(w);
  w++;
  const size_t outputs = (size_t)(NV - 1) * SL_V_WIDTH + last;
  for (size_t r = 0; r < taps->rows;) {
    const size_t end = sl_dw_chain_end(taps, r, width);
    const uint32_t columns = taps->row[r].columns;
    const size_t s0 = columns & 1u ? 0 : 1;
    sl_v_tail masks[5];
    sl_dw_rows16_masks(NV, s0, c0, outputs, width, masks);
    const sl_e* in = x + taps->row[r].offset - 2 + s0;
    if (s0 == 0) sl_dw_rows16_chain(NV, 0, masks, width, columns, end - r, in, w + 5 * r, acc);
    else sl_dw_rows16_chain(NV, 1, masks, width, columns, end - r, in, w + 5 * r, acc);
    r = end;
  }
#pragma GCC unroll 3
  for (int m = 0; m < 3; m++) sl_dw_store(NV, acc[m], 1, last, y + m * width, mm);
}

/* Square kernels as wide as their input (3x3 with steps -1..1, 5x5 with -2..2: one chain of K
 * tap rows, every step): a tile of NV vectors at M output rows (up to 3, or SL_DW_TALL for rows of
 * one vector), everything unrolled; a 3x3's bias and 9 weights come in registers (`held`), a
 * 5x5's from w. */
#define SL_DW_TALL 7
SL_V_INLINE void sl_dw_square_tile(const int NV, const int K, const int M, const int left, const int right,
                                   const sl_v_tail* masks, size_t last, size_t width, const sl_e* in, const sl_e* w,
                                   const sl_v* held, sl_e* y, const sl_minmax_t* mm) {
  sl_v acc[SL_DW_TALL][4];
#pragma GCC unroll 7
  for (int m = 0; m < M; m++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[m][v] = K == 3 ? held[0] : sl_v_splat(w);
#pragma GCC unroll 11
  for (int q = 0; q < K + M - 1; q++, in += width) {
    sl_v iv[5];
#pragma GCC unroll 5
    for (int j = 0; j <= NV; j++)
      iv[j] = j == NV || (left && j == 0) || (right && j >= NV - 1) ? sl_v_load_tail(in + SL_V_WIDTH * j, masks[j])
                                                                     : sl_v_load(in + SL_V_WIDTH * j);
#pragma GCC unroll 5
    for (int k = 0; k < K; k++) {
      sl_v xv[4];
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) xv[v] = k == 0 ? iv[v] : sl_v_ext(iv[v], iv[v + 1], k);
#pragma GCC unroll 7
      for (int m = 0; m < M; m++) {
        if (q - m < 0 || q - m >= K) continue;
        const sl_v wk = K == 3 ? held[1 + 3 * (q - m) + k] : sl_v_splat(w + 1 + 5 * (q - m) + k);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[m][v] = sl_v_fma(wk, xv[v], acc[m][v]);
      }
    }
  }
#pragma GCC unroll 7
  for (int m = 0; m < M; m++) sl_dw_store(NV, acc[m], right, last, y + m * width, mm);
}

/* K (3 or 5) when the taps are a square kernel as wide as its input, else 0. */
SL_V_INLINE int sl_dw_square(const sl_dwconv_taps_t* taps, size_t width) {
  const int k = taps->rows == 3 ? 3 : taps->rows == 5 ? 5 : 0;
  if (k == 0 || sl_dw_chain_end(taps, 0, width) != (size_t)k) return 0;
  return taps->row[0].columns == (k == 3 ? 0xEu : 0x1Fu) ? k : 0;
}

/* M output rows from row r of one channel (a square kernel, sl_dw_square: K), in tiles as
 * sl_dwconv_rows16's. */
SL_V_INLINE void sl_dw_square_band(const int K, const int M, size_t r, size_t width, size_t per_tile, size_t wider,
                                   size_t tiles, const sl_e* x, const sl_e* w, const sl_v* held, sl_e* y,
                                   const sl_minmax_t* mm) {
  for (size_t t = 0, c0 = 0; t < tiles; t++) {
    const size_t nv = per_tile + (t < wider);
    const size_t len = t + 1 < tiles ? nv * SL_V_WIDTH : width - c0, last = len - (nv - 1) * SL_V_WIDTH;
    const sl_e* in = x + r * width + c0 - (K - 1) / 2;
    sl_e* yt = y + r * width + c0;
    sl_v_tail masks[5];
    sl_dw_rows16_masks(4, (5 - K) / 2, c0, len, width, masks);
    /* masks only where the tile meets the row's ends */
#define DW_SQUARE_TILE(n, lt, rt) sl_dw_square_tile(n, K, M, lt, rt, masks, last, width, in, w, held, yt, mm)
#define DW_SQUARE_EDGES(n)                                     \
  do {                                                         \
    if (c0 == 0 && c0 + len == width) DW_SQUARE_TILE(n, 1, 1); \
    else if (c0 == 0) DW_SQUARE_TILE(n, 1, 0);                 \
    else if (c0 + len == width) DW_SQUARE_TILE(n, 0, 1);       \
    else DW_SQUARE_TILE(n, 0, 0);                              \
  } while (0)
    if (nv == 4) DW_SQUARE_EDGES(4);
    else if (nv == 3) DW_SQUARE_EDGES(3);
    else if (nv == 2) DW_SQUARE_EDGES(2);
    else DW_SQUARE_EDGES(1);
#undef DW_SQUARE_EDGES
#undef DW_SQUARE_TILE
    c0 += len;
  }
}

/* One channel's `rows` output rows (at least 2) of a square kernel: bands of 3, ending with one or
 * two bands of 2 where 3 does not divide them (a band of one row would leave too few accumulators
 * to cover the FMA latency). */
SL_V_INLINE void sl_dw_square_rows(const int K, size_t rows, size_t width, size_t vectors, size_t tiles,
                                   const sl_e* x, const sl_e* w, sl_e* y, const sl_minmax_t* mm) {
  sl_v held[10];
#pragma GCC unroll 10
  for (int i = 0; i < 10; i++) held[i] = K == 3 ? sl_v_splat(w + (i == 0 ? 0 : 2 + 5 * ((i - 1) / 3) + (i - 1) % 3)) : sl_v_dup(0.0f);
  if (K == 3 && vectors == 1) { /* rows of one vector: bands of up to SL_DW_TALL rows, as even as they go */
    sl_v_tail masks[5];
    sl_dw_rows16_masks(1, (5 - K) / 2, 0, width, width, masks);
    const size_t n = (rows + SL_DW_TALL - 1) / SL_DW_TALL, base = rows / n, extra = rows % n;
    for (size_t i = 0, r = 0, m = 0; i < n; i++, r += m) {
      m = base + (i < extra);
      const sl_e* in = x + r * width - (K - 1) / 2;
#define DW_SQUARE_NARROW(M) sl_dw_square_tile(1, K, M, 1, 1, masks, width, width, in, w, held, y + r * width, mm)
      switch (m) {
        case 2: DW_SQUARE_NARROW(2); break;
        case 3: DW_SQUARE_NARROW(3); break;
        case 4: DW_SQUARE_NARROW(4); break;
        case 5: DW_SQUARE_NARROW(5); break;
        case 6: DW_SQUARE_NARROW(6); break;
        default: DW_SQUARE_NARROW(7); break;
      }
#undef DW_SQUARE_NARROW
    }
    return;
  }
  const size_t per_tile = vectors / tiles, wider = vectors % tiles;
  const size_t threes = rows / 3 - (rows % 3 == 1);
  size_t r = 0;
  for (; r < 3 * threes; r += 3) sl_dw_square_band(K, 3, r, width, per_tile, wider, tiles, x, w, held, y, mm);
  for (; r < rows; r += 2) sl_dw_square_band(K, 2, r, width, per_tile, wider, tiles, x, w, held, y, mm);
}

/* Bands of 3 whole rows of at least SL_DW_ROWS16_MIN_WIDTH columns, each row in tiles of 3 or 4
 * vectors (fewer accumulators than 9 would wait on the FMA latency), the last cut at the row's end;
 * returns the outputs done, the rest is for the flat loop. Narrower rows stay with it: its tiles
 * span rows, so no lane idles. Square kernels go channel by channel (their weights stay in
 * registers, and each plane streams in order), every whole row; other taps tile by tile, whole
 * bands. */
#define SL_DW_ROWS16_MIN_WIDTH 48
/* Square kernels pay off on narrower rows; below these widths (measured on Zen 5) too many of a
 * tile's lanes idle. */
#define SL_DW_SQUARE_MIN_WIDTH(k) ((k) == 3 ? 24 : 28)
/* and 3x3 ones (weights held) on rows of one vector from this width, in tall bands */
#define SL_DW_NARROW_MIN_WIDTH 12
SL_V_INLINE size_t sl_dwconv_rows16(size_t channels, size_t count, size_t width, const sl_e* x, size_t x_stride,
                                    const sl_e* w, const sl_dwconv_taps_t* taps, sl_e* y, size_t y_stride,
                                    const sl_minmax_t* mm) {
  const size_t band = SL_DWCONV_ROW_TILE * width, w_stride = 1 + 5 * (size_t)taps->rows;
  const int square = sl_dw_square(taps, width);
  /* the row's vectors spread evenly over the fewest tiles of at most 4 */
  const size_t vectors = (width + SL_V_WIDTH - 1) / SL_V_WIDTH, tiles = (vectors + 3) / 4, bands = count / band;
  if (square != 0 && (width >= SL_DW_SQUARE_MIN_WIDTH(square) ||
                      (square == 3 && width >= SL_DW_NARROW_MIN_WIDTH && width <= SL_V_WIDTH))) {
    const sl_e* x0 = x + taps->row[0].offset;
    const size_t rows = count / width;
    if (rows < 2) return 0;
    for (size_t ch = 0; ch < channels; ch++) {
      if (square == 3)
        sl_dw_square_rows(3, rows, width, vectors, tiles, x0 + ch * x_stride, w + ch * w_stride, y + ch * y_stride, mm);
      else
        sl_dw_square_rows(5, rows, width, vectors, tiles, x0 + ch * x_stride, w + ch * w_stride, y + ch * y_stride, mm);
    }
    return rows * width;
  }
  if (width < SL_DW_ROWS16_MIN_WIDTH || count < band) return 0;
  for (size_t b = 0; b < bands * band; b += band)
    for (size_t t = 0, c0 = 0; t < tiles; t++) {
      const size_t nv = vectors / tiles + (t < vectors % tiles);
      const size_t len = t + 1 < tiles ? nv * SL_V_WIDTH : width - c0, last = len - (nv - 1) * SL_V_WIDTH;
      for (size_t ch = 0; ch < channels; ch++) {
        const sl_e* xc = x + ch * x_stride + b + c0;
        const sl_e* wc = w + ch * w_stride;
        sl_e* yc = y + ch * y_stride + b + c0;
#define DW_ROWS16_TILE(nv) sl_dw_rows16_tile(nv, last, c0, width, taps, xc, wc, yc, mm)
        if (nv == 4) DW_ROWS16_TILE(4);
        else if (nv == 3) DW_ROWS16_TILE(3);
        else if (nv == 2) DW_ROWS16_TILE(2);
        else DW_ROWS16_TILE(1);
#undef DW_ROWS16_TILE
      }
      c0 += len;
    }
  return bands * band;
}
#endif

/* Tiles run over pixels, channels inside, so the lane columns are worked out once for all the
 * channels of a call. Each vector of the tile keeps its own columns (floats: the op keeps width
 * below 2^23 wherever a step is cut), advanced per tile and wrapped once. */
SL_V_INLINE void sl_dwconv(const int NV, size_t channels, size_t count, size_t width, const sl_e* x,
                           size_t x_stride, const sl_e* w, const sl_dwconv_taps_t* taps, sl_e* y, size_t y_stride,
                           const sl_minmax_t* mm) {
#ifdef SL_V_DW_ROWS
  /* whole bands of rows first, in tiles of up to SL_V_DW_NV vectors; the rest as below */
  const size_t done = sl_dwconv_rows(NV < SL_V_DW_NV ? NV : SL_V_DW_NV, channels, count, width, x, x_stride, w, taps,
                                     y, y_stride, mm);
  x += done;
  y += done;
  count -= done;
#elif SL_V_WIDTH >= 16
  const size_t done = sl_dwconv_rows16(channels, count, width, x, x_stride, w, taps, y, y_stride, mm);
  x += done;
  y += done;
  count -= done;
#endif
  const sl_v fwidth = sl_v_dup((float)width), step = sl_v_dup((float)((size_t)NV * SL_V_WIDTH % width));
  const size_t w_stride = 1 + 5 * (size_t)taps->rows, tile = (size_t)NV * SL_V_WIDTH;
  uint32_t steps = 0; /* the steps any row has */
  for (size_t r = 0; r < taps->rows; r++) steps |= taps->row[r].columns;
#define DW_WRAP(v) sl_v_sub(v, sl_v_select(sl_v_lt(v, fwidth), sl_v_dup(0.0f), fwidth))
  sl_v col[8];
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) {
    col[v] = sl_v_add(sl_v_iota(), sl_v_dup((float)(SL_V_WIDTH * v)));
    for (size_t k = 0; k < tile; k += width) col[v] = DW_WRAP(col[v]);
  }
#define DW_TILE(nv, tail, last, p, inside)                                                                \
  for (size_t ch_ = 0; ch_ < channels; ch_++)                                                             \
    sl_dw_tile(nv, tail, last, col, width, steps, inside, taps, x + ch_ * x_stride + (p), w + ch_ * w_stride, \
               y + ch_ * y_stride + (p), mm)
  /* A tile whose columns all lie in [2, width - 3] has every step count in every lane: narrow
   * vectors skip the masks there (16-lane ones mask at no cost, a masked add). */
  size_t p = 0, first = 0; /* the tile's first column */
  for (; p + tile <= count; p += tile) {
    if (SL_V_WIDTH < 16 && first >= 2 && first + tile + 2 <= width)
      DW_TILE(NV, 0, SL_V_WIDTH, p, 1);
    else
      DW_TILE(NV, 0, SL_V_WIDTH, p, 0);
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) col[v] = DW_WRAP(sl_v_add(col[v], step));
    first += tile % width;
    first -= first >= width ? width : 0;
  }
  if (p == count) return;
  const size_t nv = (count - p + SL_V_WIDTH - 1) / SL_V_WIDTH, last = count - p - (nv - 1) * SL_V_WIDTH;
  /* tail 2: the last vector loads through the outputs before it (sl_tile_load), which the taps
   * read too */
  const int back = 1 + SL_V_TAIL_BACK;
  if (nv == 1 && SL_V_TAIL_BACK && count >= SL_V_WIDTH) DW_TILE(1, 2, last, p, 0);
  else if (nv == 1) DW_TILE(1, 1, last, p, 0);
  if (NV >= 2 && nv == 2) DW_TILE(2, back, last, p, 0);
  if (NV >= 3 && nv == 3) DW_TILE(3, back, last, p, 0);
  if (NV >= 4 && nv == 4) DW_TILE(4, back, last, p, 0);
  if (NV >= 5 && nv == 5) DW_TILE(5, back, last, p, 0);
  if (NV >= 6 && nv == 6) DW_TILE(6, back, last, p, 0);
  if (NV >= 7 && nv == 7) DW_TILE(7, back, last, p, 0);
  if (NV >= 8 && nv == 8) DW_TILE(8, back, last, p, 0);
#undef DW_TILE
#undef DW_WRAP
}

#define SL_DEFINE_dwconv(name, PIXELS, ROWS)                                                                 \
  SL_V_TARGET void name(size_t channels, size_t count, size_t width, const sl_e* x, size_t x_stride,         \
                        const sl_e* w, const sl_dwconv_taps_t* taps, sl_e* y, size_t y_stride,              \
                        const sl_minmax_t* mm) {                                                             \
    sl_dwconv((PIXELS) / SL_V_WIDTH, channels, count, width, x, x_stride, w, taps, y, y_stride, mm);          \
  }

/* Depthwise with a horizontal stride of 2, read in place row by row (XNNPACK's dwconv2d-chw):
 * a row's vector pairs split into their even and odd columns (unzip), and the tap at input
 * column 2 * ox + 2a + b reads the even (b = 0) or odd vector shifted by a (-1..1) lanes. The
 * lane shifted in comes from the neighbouring vector or the row past the tile, and is zero past
 * the row's ends: the left and right padding need no mask; rows outside the input are skipped. */
/* NV vector pairs of an input row from column c0 split into their even and odd columns, zeros past
 * the row's end (in_w). */
SL_V_INLINE void sl_dwconv_s2_split(const int NV, const sl_e* row, size_t c0, size_t in_w, sl_v* even, sl_v* odd) {
  const sl_v zero = sl_v_dup(0.0f);
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) {
    const size_t c = c0 + 2 * SL_V_WIDTH * (size_t)v, n = c < in_w ? in_w - c : 0;
    const sl_v a = n >= SL_V_WIDTH ? sl_v_load(row + c) : n > 0 ? sl_v_load_tail(row + c, sl_v_tail_of(n)) : zero;
    const sl_v b = n >= 2 * SL_V_WIDTH ? sl_v_load(row + c + SL_V_WIDTH)
                   : n > SL_V_WIDTH    ? sl_v_load_tail(row + c + SL_V_WIDTH, sl_v_tail_of(n - SL_V_WIDTH))
                                       : zero;
    even[v] = sl_v_unzip_even(a, b);
    odd[v] = sl_v_unzip_odd(a, b);
  }
}

SL_V_INLINE void sl_dwconv_s2_tile(const int NV, const int tail, size_t last, const sl_conv2d_shape_t* s,
                                   const sl_e* x, const sl_e* w, size_t oy, size_t ox, sl_e* y,
                                   const sl_minmax_t* mm) {
  const size_t in_w = s->in_w, kw = s->kernel_w, c0 = 2 * ox, cn = c0 + 2 * SL_V_WIDTH * (size_t)NV;
  const sl_v zero = sl_v_dup(0.0f);
  sl_v acc[8];
#pragma GCC unroll 8
  for (int v = 0; v < NV; v++) acc[v] = sl_v_splat(w);
  for (size_t ky = 0; ky < s->kernel_h; ky++) {
    const size_t iy = oy * s->stride_h + ky; /* counted from the top padding */
    if (iy < s->pad_top || iy - s->pad_top >= s->in_h) continue;
    const sl_e* row = x + (iy - s->pad_top) * in_w;
    const sl_e* wr = w + 1 + ky * kw;
    sl_v even[8], odd[8];
    sl_dwconv_s2_split(NV, row, c0, in_w, even, odd);
    const sl_v before[2] = {c0 >= 2 && c0 - 2 < in_w ? sl_v_splat(row + c0 - 2) : zero,
                            c0 >= 1 && c0 - 1 < in_w ? sl_v_splat(row + c0 - 1) : zero};
    const sl_v after[2] = {cn < in_w ? sl_v_splat(row + cn) : zero, cn + 1 < in_w ? sl_v_splat(row + cn + 1) : zero};
#pragma GCC unroll 6
    for (int t = 0; t < 6; t++) {
      const int a = t / 2 - 1, b = t % 2;
      const size_t kx = (size_t)(2 * a + b) + s->pad_left; /* wraps past kw when negative */
      if (kx >= kw) continue;
      const sl_v wk = sl_v_splat(wr + kx);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) {
        const sl_v cur = b ? odd[v] : even[v];
        sl_v window = cur;
        if (a < 0) window = sl_v_ext(v > 0 ? (b ? odd[v - 1] : even[v - 1]) : before[b], cur, SL_V_WIDTH - 1);
        if (a > 0) {
          const sl_v nx = v + 1 < NV ? (b ? odd[v + 1] : even[v + 1]) : after[b];
          window = SL_V_WIDTH == 1 ? nx : sl_v_ext(cur, nx, 1);
        }
        acc[v] = sl_v_fma(wk, window, acc[v]);
      }
    }
  }
  sl_dw_store(NV, acc, tail, last, y, mm);
}

#if SL_V_WIDTH >= 16
/* 3x3 kernels with a left padding PL of 0 or 1 (TensorFlow's and PyTorch's): the same tile with
 * its taps fixed and the channel's bias and 9 weights in registers (held); rows[ky]: the input row
 * tap row ky reads, NULL in the padding. */
SL_V_INLINE void sl_dwconv_s2_k3_tile(const int NV, const int PL, const int tail, size_t last, size_t in_w,
                                      const sl_e* const* rows, const sl_v* held, size_t ox, sl_e* y,
                                      const sl_minmax_t* mm) {
  const size_t c0 = 2 * ox, cn = c0 + 2 * SL_V_WIDTH * (size_t)NV;
  const sl_v zero = sl_v_dup(0.0f);
  sl_v out[4], sums[3][4]; /* per tap row: three short FMA chains instead of one of nine */
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) sums[0][v] = held[0], sums[1][v] = sums[2][v] = zero;
#pragma GCC unroll 3
  for (int ky = 0; ky < 3; ky++) {
    const sl_e* row = rows[ky];
    if (row == NULL) continue;
    sl_v even[4], odd[4];
    sl_dwconv_s2_split(NV, row, c0, in_w, even, odd);
    const sl_v* wk = held + 1 + 3 * ky;
    sl_v* acc = sums[ky];
    if (PL == 1) { /* columns 2 * ox - 1, 2 * ox, 2 * ox + 1 */
      const sl_v before = c0 >= 1 ? sl_v_splat(row + c0 - 1) : zero;
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        acc[v] = sl_v_fma(wk[0], sl_v_ext(v > 0 ? odd[v - 1] : before, odd[v], SL_V_WIDTH - 1), acc[v]);
        acc[v] = sl_v_fma(wk[1], even[v], acc[v]);
        acc[v] = sl_v_fma(wk[2], odd[v], acc[v]);
      }
    } else { /* columns 2 * ox .. 2 * ox + 2 */
      const sl_v after = cn < in_w ? sl_v_splat(row + cn) : zero;
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        acc[v] = sl_v_fma(wk[0], even[v], acc[v]);
        acc[v] = sl_v_fma(wk[1], odd[v], acc[v]);
        acc[v] = sl_v_fma(wk[2], sl_v_ext(even[v], v + 1 < NV ? even[v + 1] : after, 1), acc[v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) out[v] = sl_v_add(sl_v_add(sums[0][v], sums[1][v]), sums[2][v]);
  sl_dw_store(NV, out, tail, last, y, mm);
}

/* One channel of a 3x3 kernel (sl_dwconv_s2_k3_tile), in tiles of up to 4 vectors. */
SL_V_INLINE void sl_dwconv_s2_k3(const int PL, const sl_conv2d_shape_t* s, const sl_e* x, const sl_e* w, sl_e* y,
                                 const sl_minmax_t* mm) {
  sl_v held[10];
#pragma GCC unroll 10
  for (int i = 0; i < 10; i++) held[i] = sl_v_splat(w + i);
  const size_t ow = s->out_w, tile = 4 * SL_V_WIDTH;
  for (size_t oy = 0; oy < s->out_h; oy++) {
    const sl_e* rows[3];
    for (size_t ky = 0; ky < 3; ky++) {
      const size_t iy = oy * s->stride_h + ky; /* counted from the top padding */
      rows[ky] = iy < s->pad_top || iy - s->pad_top >= s->in_h ? NULL : x + (iy - s->pad_top) * s->in_w;
    }
    sl_e* yr = y + oy * ow;
    size_t ox = 0;
    for (; ox + tile <= ow; ox += tile) sl_dwconv_s2_k3_tile(4, PL, 0, SL_V_WIDTH, s->in_w, rows, held, ox, yr + ox, mm);
    if (ox == ow) continue;
    const size_t nv = (ow - ox + SL_V_WIDTH - 1) / SL_V_WIDTH, last = ow - ox - (nv - 1) * SL_V_WIDTH;
    if (nv == 1) sl_dwconv_s2_k3_tile(1, PL, 1, last, s->in_w, rows, held, ox, yr + ox, mm);
    else if (nv == 2) sl_dwconv_s2_k3_tile(2, PL, 1, last, s->in_w, rows, held, ox, yr + ox, mm);
    else if (nv == 3) sl_dwconv_s2_k3_tile(3, PL, 1, last, s->in_w, rows, held, ox, yr + ox, mm);
    else sl_dwconv_s2_k3_tile(4, PL, 1, last, s->in_w, rows, held, ox, yr + ox, mm);
  }
}
#endif

SL_V_INLINE void sl_dwconv_s2(const int NV, size_t channels, const sl_conv2d_shape_t* s, const sl_e* x,
                              const sl_e* w, sl_e* y, const sl_minmax_t* mm) {
  const size_t ow = s->out_w, tile = (size_t)NV * SL_V_WIDTH, w_stride = 1 + (size_t)s->kernel_h * s->kernel_w;
  const size_t hw = (size_t)s->in_h * s->in_w, ohw = (size_t)s->out_h * ow;
#if SL_V_WIDTH >= 16
  if (s->kernel_h == 3 && s->kernel_w == 3 && s->pad_left <= 1) {
    for (size_t ch = 0; ch < channels; ch++, x += hw, w += w_stride)
      if (s->pad_left == 1) sl_dwconv_s2_k3(1, s, x, w, y + ch * ohw, mm);
      else sl_dwconv_s2_k3(0, s, x, w, y + ch * ohw, mm);
    return;
  }
#endif
  for (size_t ch = 0; ch < channels; ch++, x += hw, w += w_stride)
    for (size_t oy = 0; oy < s->out_h; oy++) {
      sl_e* yr = y + ch * ohw + oy * ow;
      size_t ox = 0;
      for (; ox + tile <= ow; ox += tile) sl_dwconv_s2_tile(NV, 0, SL_V_WIDTH, s, x, w, oy, ox, yr + ox, mm);
      if (ox == ow) continue;
      const size_t nv = (ow - ox + SL_V_WIDTH - 1) / SL_V_WIDTH, last = ow - ox - (nv - 1) * SL_V_WIDTH;
#define DW2_TAIL(n) \
  if (NV >= (n) && nv == (n)) sl_dwconv_s2_tile((n), 1, last, s, x, w, oy, ox, yr + ox, mm)
      DW2_TAIL(1);
      DW2_TAIL(2);
      DW2_TAIL(3);
      DW2_TAIL(4);
      DW2_TAIL(5);
      DW2_TAIL(6);
      DW2_TAIL(7);
      DW2_TAIL(8);
#undef DW2_TAIL
    }
}

#define SL_DEFINE_dwconv_s2(name, PIXELS, ROWS)                                                          \
  SL_V_TARGET void name(size_t channels, const sl_conv2d_shape_t* s, const sl_e* x, const sl_e* w, sl_e* y, \
                        const sl_minmax_t* mm) {                                                         \
    sl_dwconv_s2((PIXELS) / SL_V_WIDTH, channels, s, x, w, y, mm);                                      \
  }

#endif
