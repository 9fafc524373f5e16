/* Depthwise convolution (groups == channels, no dilation, any kernel size, stride and padding) on
 * NCHW data. Output (oy, ox) and tap (ky, kx) read input row oy * sh + ky - pad_top: with
 * ky - pad_top = ay * sh + qy (0 <= qy < sh), row oy + ay of row phase qy; columns likewise. Each
 * phase goes into a plane whose rows are as wide as the output's, with zero rows above and below,
 * so every tap is one fixed offset from its output's flat index: the kernel runs full vectors
 * across row ends and writes the output in place. Lanes whose column ox + ax leaves the row read
 * the next or previous row instead of the left or right padding; the kernel drops them by step
 * (sl_dwconv_row_t). A phase wider than the output (little padding) or a step past the kernel's
 * reach gets a plane per column shift. At stride 1 with the output as wide as the input, the
 * input is that plane already: only the rows next to the top and bottom padding are copied.
 * A horizontal stride of 2 with a kernel of up to 5 columns (MobileNet's, EfficientNet's) needs no
 * planes where dwconv_s2 is the faster kernel: it reads the input rows in place, splitting even
 * and odd columns in registers. */
#include <stdlib.h>
#include <string.h>

#include "depthwise.h"

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0); } /* b > 0 */
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* A kernel column: its phase q, its plane's shift (in phase columns) and its step e (it reads
 * plane column ox + e); plane is the index of its (q, shift) among the columns'. */
typedef struct {
  uint32_t k, q, plane;
  int64_t shift, e;
} column_t;

static int by_plane(const void* a, const void* b) { /* shift, then phase: unzip twins are adjacent */
  const column_t *x = a, *y = b;
  if (x->shift != y->shift) return x->shift < y->shift ? -1 : 1;
  return (x->q > y->q) - (x->q < y->q);
}

static int by_class(const void* a, const void* b) { /* plane, then step: a tap row's columns in order */
  const column_t *x = a, *y = b;
  if (x->plane != y->plane) return x->plane < y->plane ? -1 : 1;
  return (x->e > y->e) - (x->e < y->e);
}

/* The kernel columns that can count (stored in cols, *count of them) and their planes' column
 * classes (*classes; stride-2 phases come in even/odd twins for unzip). exact: the kernel's
 * column masks are usable, else every column gets its own shift and nothing is cut. */
static void plan_columns(const sl_conv2d_shape_t* s, bool exact, column_t* cols, uint32_t* count,
                         column_t* classes, uint32_t* num_classes) {
  int64_t w = s->in_w, ow = s->out_w, sw = s->stride_w;
  uint32_t n = 0;
  for (uint32_t kx = 0; kx < s->kernel_w; kx++) {
    int64_t dx = (int64_t)kx - s->pad_left, ax = floor_div(dx, sw), q = dx - ax * sw;
    int64_t phase_w = q < w ? (w - q + sw - 1) / sw : 0; /* input columns in phase q */
    /* Output columns that see input: none, and the column only ever multiplies padding. */
    if (max64(0, -ax) >= min64(ow, phase_w - ax)) continue;
    /* Shift 0 unless the phase is wider than the output and this column reads past it; then
     * whatever keeps the step within the kernel's reach (-2..2) and still drops only lanes
     * that see padding (shift between min(ax, phase_w - ow) and max(0, ax)). */
    int64_t shift = exact ? max64(0, min64(ax, phase_w - ow)) : ax;
    if (ax - shift > 2) shift = ax - 2;
    if (ax - shift < -2) shift = ax + 2;
    cols[n++] = (column_t){kx, (uint32_t)q, 0, shift, ax - shift};
  }
  *count = n;
  uint32_t c = 0;
  for (uint32_t i = 0; i < n; i++) {
    classes[c++] = cols[i];
    if (sw == 2 && cols[i].shift == 0) classes[c++] = (column_t){0, 1 - cols[i].q, 0, 0, 0};
  }
  qsort(classes, c, sizeof(column_t), by_plane);
  uint32_t u = 0;
  for (uint32_t i = 0; i < c; i++)
    if (u == 0 || by_plane(&classes[u - 1], &classes[i]) != 0) classes[u++] = classes[i];
  *num_classes = u;
  for (uint32_t i = 0; i < n; i++)
    cols[i].plane = (uint32_t)((const column_t*)bsearch(&cols[i], classes, u, sizeof(column_t), by_plane) - classes);
}

/* A kernel row: its phase q and step a (it reads phase row oy + a); cls indexes its q among the rows'. */
typedef struct {
  uint32_t k, q, cls;
  int64_t a;
} row_t;

static int by_phase(const void* a, const void* b) {
  const row_t *x = a, *y = b;
  return (x->q > y->q) - (x->q < y->q);
}

/* The kernel rows that ever see input (stored in rows, *count of them) and their distinct phases. */
static void plan_rows(const sl_conv2d_shape_t* s, row_t* rows, uint32_t* count, row_t* classes,
                      uint32_t* num_classes) {
  int64_t h = s->in_h, oh = s->out_h, sh = s->stride_h;
  uint32_t n = 0;
  for (uint32_t ky = 0; ky < s->kernel_h; ky++) {
    int64_t dy = (int64_t)ky - s->pad_top, ay = floor_div(dy, sh), q = dy - ay * sh;
    int64_t phase_h = q < h ? (h - q + sh - 1) / sh : 0;
    if (max64(0, -ay) >= min64(oh, phase_h - ay)) continue; /* only ever on padding */
    rows[n++] = (row_t){ky, (uint32_t)q, 0, ay};
  }
  *count = n;
  memcpy(classes, rows, n * sizeof(row_t));
  qsort(classes, n, sizeof(row_t), by_phase);
  uint32_t u = 0;
  for (uint32_t i = 0; i < n; i++)
    if (u == 0 || classes[u - 1].q != classes[i].q) classes[u++] = classes[i];
  *num_classes = u;
  for (uint32_t i = 0; i < n; i++)
    rows[i].cls = (uint32_t)((const row_t*)bsearch(&rows[i], classes, u, sizeof(row_t), by_phase) - classes);
}

/* Where each plane's input goes: rows of row phase qy, columns of the column class. */
static void place_planes(const sl_depthwise_t* d, const row_t* rclasses, uint32_t nr, const column_t* cclasses,
                         uint32_t nc, int64_t rows) {
  const sl_conv2d_shape_t* s = &d->s;
  int64_t h = s->in_h, w = s->in_w, ow = s->out_w, sh = s->stride_h, sw = s->stride_w;
  for (uint32_t i = 0; i < nr; i++) {
    int64_t qy = rclasses[i].q, phase_h = qy < h ? (h - qy + sh - 1) / sh : 0;
    int64_t dr0 = min64(rows, max64(0, -d->row_lo)), dr1 = max64(dr0, min64(rows, phase_h - d->row_lo));
    for (uint32_t j = 0; j < nc; j++) {
      const column_t* c = &cclasses[j];
      int64_t phase_w = c->q < w ? (w - c->q + sw - 1) / sw : 0;
      int64_t c0 = min64(ow, max64(0, -c->shift)), c1 = max64(c0, min64(ow, phase_w - c->shift));
      d->planes[i * nc + j] = (sl_dw_plane_t){(uint32_t)dr0, (uint32_t)dr1, (uint32_t)c0, (uint32_t)c1,
                                               (size_t)((d->row_lo + dr0) * sh + qy), (size_t)((c0 + c->shift) * sw + c->q),
                                               sw == 2 && c->shift == 0 && c->q == 0 && j + 1 < nc &&
                                                   cclasses[j + 1].shift == 0};
    }
  }
}

/* Channels per task: enough work to amortize the calls (and, copying, planes within L1/L2), and
 * about four tasks a thread over the `bands` bands of rows. */
static uint32_t task_channels(const sl_model_t* m, size_t c, size_t work, size_t slot, size_t bands) {
  size_t per_task = work < 32768 ? 32768 / work : 1;
  if (slot > 0 && per_task > 16384 / slot) per_task = 16384 / slot > 0 ? 16384 / slot : 1;
  if (per_task > c) per_task = c > 0 ? c : 1;
  size_t share = 4 * sl_op_threads(m) / bands;
  if (share > 1 && per_task > c / share) per_task = c / share > 0 ? c / share : 1;
  return (uint32_t)per_task;
}

/* dwconv_s2: the weights behind each channel's bias, nothing else. */
static sl_status_t prepare_s2(sl_model_t* m, sl_node_t* n, sl_depthwise_t* d, const sl_ukernel_t* k2,
                              const float* weights, const float* bias) {
  const sl_conv2d_shape_t* s = &d->s;
  size_t c = s->in_c, taps = (size_t)s->kernel_h * s->kernel_w, bytes;
  if (!sl_size_mul(c, taps + 1, &bytes) || !sl_size_mul(bytes, sizeof(float), &bytes))
    return sl_node_fail(m, n, "%zu channels of %zu taps do not fit in memory", c, taps);
  d->packed = sl_model_alloc(m, bytes);
  if (d->packed == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc has said why */
  for (size_t ch = 0; ch < c; ch++) {
    d->packed[ch * (taps + 1)] = bias != NULL ? bias[ch] : 0.0f;
    memcpy(d->packed + ch * (taps + 1) + 1, weights + ch * taps, taps * sizeof(float));
  }
  d->s2 = k2;
  d->channels = task_channels(m, c, (size_t)s->out_h * s->out_w * (taps + 1), 0, 1);
  sl_reserve_scratch(m, n, 0, 0);
  n->kernel = d->s2->name;
  return SL_OK;
}

/* dwconv_nc: per group of k->rows channels, a vector of their weights per tap, then their biases. */
static sl_status_t prepare_nc(sl_model_t* m, sl_node_t* n, sl_depthwise_t* d, const sl_ukernel_t* k,
                              const float* weights, const float* bias, size_t scratch) {
  const sl_conv2d_shape_t* s = &d->s;
  size_t c = s->in_c, lanes = k->rows, taps = (size_t)s->kernel_h * s->kernel_w, bytes;
  if (!sl_size_mul(c / lanes + (c % lanes != 0), lanes, &bytes) || !sl_size_mul(bytes, taps + 1, &bytes) ||
      !sl_size_mul(bytes, sizeof(float), &bytes) ||
      !sl_size_mul(scratch, sizeof(float), &d->nc_scratch))
    return sl_node_fail(m, n, "%zu channels of %zu taps do not fit in memory", c, taps);
  d->packed = sl_model_alloc(m, bytes); /* zeroed: the lanes past the last channel */
  if (d->packed == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc has said why */
  for (size_t ch = 0; ch < c; ch++) {
    float* group = d->packed + ch / lanes * (taps + 1) * lanes + ch % lanes;
    for (size_t t = 0; t < taps; t++) group[t * lanes] = weights[ch * taps + t];
    group[taps * lanes] = bias != NULL ? bias[ch] : 0.0f;
  }
  d->nc = k;
  size_t per_task = task_channels(m, c, (size_t)s->out_h * s->out_w * (taps + 1), 0, 1);
  d->channels = (uint32_t)((per_task + lanes - 1) / lanes * lanes);
  sl_reserve_scratch(m, n, 0, d->nc_scratch);
  n->kernel = k->name;
  return SL_OK;
}

sl_status_t sl_depthwise_prepare(sl_model_t* m, sl_node_t* n, sl_depthwise_t* d, const sl_conv2d_shape_t* s,
                                 const float* weights, const float* bias, const sl_activation_t* act) {
  d->s = *s;
  d->k = sl_op_kernel(m, SL_FAMILY_dwconv, 0);
  d->unzip = sl_op_kernel(m, SL_FAMILY_unzip, 0);
  d->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  d->post = sl_activation_split(act, &d->mm);
  /* dwconv_s2 where it is the faster path and output rows are wide enough: its costs per row grow
   * with the kernel's width, and measured it wins from (kernel_w - 1) / 2 quarter tiles (vectors,
   * on the AVX-512 kernel) on: 28 outputs for 3x3, 56 for 5x5. */
  const sl_ukernel_t* k2 = sl_op_kernel(m, SL_FAMILY_dwconv_s2, 0);
  const sl_ukernel_t* knc = sl_op_kernel(m, SL_FAMILY_dwconv_nc, 0);
  d->s2 = d->nc = NULL;
  d->bands = 1;
  const bool fp16 = sl_op_fp16(m) && s->out_w <= SL_F16_DWCONV_MAX_WIDTH;
  d->k16 = fp16 ? sl_op_kernel(m, SL_FAMILY_f16_dwconv, 0) : NULL;
  d->to16 = fp16 ? sl_op_kernel(m, SL_FAMILY_f16_from_f32, 0) : NULL;
  d->from16 = fp16 ? sl_op_kernel(m, SL_FAMILY_f16_to_f32, 0) : NULL;
  d->packed16 = NULL;
  if (d->k16 == NULL || d->to16 == NULL || d->from16 == NULL) d->k16 = NULL;
  /* dwconv_nc on output rows up to its list's width (half that at stride 1, where the plane path
   * runs whole vectors across rows without unzips). */
  const float nc_width = s->stride_w >= 2 ? knc->efficiency : knc->efficiency / 2;
  sl_dwconv_nc_layout_t layout;
  if (d->k16 == NULL && (float)s->out_w <= nc_width && sl_dwconv_nc_layout(s, knc->rows, &layout))
    return prepare_nc(m, n, d, knc, weights, bias, layout.floats);
  if (d->k16 == NULL && s->stride_w == 2 && s->pad_left <= 2 && s->kernel_w <= 4 + s->pad_left && k2->efficiency > 1.0f &&
      8 * (size_t)s->out_w >= (size_t)k2->pixels * (s->kernel_w - 1))
    return prepare_s2(m, n, d, k2, weights, bias);
  const int64_t h = s->in_h, w = s->in_w, oh = s->out_h, ow = s->out_w;
  /* The kernel counts lane columns in float: exact below 2^23 (2^24 before they wrap). */
  const bool exact = ow < (1 << 23);
  size_t kw = s->kernel_w, kh = s->kernel_h, col_bytes, row_bytes;
  if (!sl_size_mul(kw, 3 * sizeof(column_t), &col_bytes) || !sl_size_mul(kh, 2 * sizeof(row_t), &row_bytes))
    return sl_node_fail(m, n, "a %zu x %zu kernel does not fit in memory", kh, kw);
  column_t* cols = sl_model_alloc(m, col_bytes);
  row_t* rows = cols != NULL ? sl_model_alloc(m, row_bytes) : NULL;
  if (rows == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc has said why */
  column_t* cclasses = cols + kw;
  row_t* rclasses = rows + kh;
  uint32_t ncols, nc, nrows, nr;
  plan_columns(s, exact, cols, &ncols, cclasses, &nc);
  plan_rows(s, rows, &nrows, rclasses, &nr);
  uint32_t taps = ncols * nrows; /* at most kh * kw: below 2^31 */
  if (taps == 0) ncols = nc = nrows = nr = 0;
  /* A tap row reads phase row oy + a, steps -2..2 around its column: the planes hold all of that. */
  int64_t amin = 0, amax = 0;
  for (uint32_t i = 0; i < nrows; i++) {
    amin = i == 0 || rows[i].a < amin ? rows[i].a : amin;
    amax = i == 0 || rows[i].a > amax ? rows[i].a : amax;
  }
  int64_t dmin = amin * ow - 2, dmax = amax * ow + 2;
  d->row_lo = taps > 0 ? floor_div(dmin, ow) : 0;
  int64_t plane_rows = taps > 0 ? floor_div(oh * ow - 1 + dmax, ow) + 1 - d->row_lo : 0;
  d->num_planes = nr * nc;
  size_t slot;
  if (!sl_size_mul((size_t)plane_rows, (size_t)ow, &d->plane) || !sl_size_mul(d->plane, d->num_planes, &slot) ||
      slot > UINT32_MAX) {
    sl_model_release(m, rows);
    sl_model_release(m, cols);
    return sl_node_fail(m, n, "the padded input plane (%u x %u, stride %u x %u) is too large", s->in_h, s->in_w,
                        s->stride_h, s->stride_w);
  }
  d->slot = slot;
  /* Tap rows: per kernel row, the columns of one plane (at most five: steps -2..2). */
  qsort(cols, ncols, sizeof(column_t), by_class);
  uint32_t runs = 0;
  for (uint32_t i = 0; i < ncols; i++) runs += i == 0 || cols[i].plane != cols[i - 1].plane;
  size_t c = s->in_c, nrow = (size_t)runs * nrows, w_stride = 1 + 5 * nrow, packed_bytes;
  if (!sl_size_mul(c, w_stride, &packed_bytes) || !sl_size_mul(packed_bytes, sizeof(float), &packed_bytes)) {
    sl_model_release(m, rows);
    sl_model_release(m, cols);
    return sl_node_fail(m, n, "%zu channels of %zu tap rows do not fit in memory", c, nrow);
  }
  sl_dwconv_row_t* row = sl_model_alloc(m, nrow * sizeof(sl_dwconv_row_t));
  d->planes = row != NULL ? sl_model_alloc(m, d->num_planes * sizeof(sl_dw_plane_t)) : NULL;
  d->packed = d->planes != NULL ? sl_model_alloc(m, packed_bytes) : NULL;
  if (d->packed == NULL) {
    sl_model_release(m, rows);
    sl_model_release(m, cols);
    return SL_ERROR_OUT_OF_MEMORY;
  }
  size_t r = 0;
  for (uint32_t i = 0; i < ncols;) {
    uint32_t end = i + 1;
    while (end < ncols && cols[end].plane == cols[i].plane) end++;
    for (uint32_t j = 0; j < nrows; j++, r++) {
      size_t p = (size_t)rows[j].cls * nc + cols[i].plane;
      row[r] = (sl_dwconv_row_t){(uint32_t)(p * d->plane + (size_t)((rows[j].a - d->row_lo) * ow)), 0};
      for (uint32_t k = i; k < end; k++) {
        size_t at = 1 + 5 * r + (size_t)(cols[k].e + 2);
        row[r].columns |= 1u << (cols[k].e + 2);
        for (size_t ch = 0; ch < c; ch++) d->packed[ch * w_stride + at] = weights[(ch * kh + rows[j].k) * kw + cols[k].k];
      }
    }
    i = end;
  }
  for (size_t ch = 0; ch < c; ch++) d->packed[ch * w_stride] = bias != NULL ? bias[ch] : 0.0f;
  d->taps = (sl_dwconv_taps_t){(uint32_t)r, row};
  place_planes(d, rclasses, nr, cclasses, nc, plane_rows);
  /* Direct: one unshifted plane laid out as the input is, so rows whose taps stay inside the
   * input read it in place. */
  d->direct = false;
  if (d->num_planes == 1 && s->stride_h == 1 && s->stride_w == 1 && ow == w && cclasses[0].shift == 0) {
    int64_t r0 = max64(0, -d->row_lo), r1 = min64(oh, max64(r0, floor_div(h * w - dmax, ow)));
    /* Small planes copy whole instead: one call over them all beats three of a few rows each. */
    d->direct = r1 > r0 && oh * ow >= 512;
    d->r0 = (uint32_t)r0;
    d->r1 = (uint32_t)r1;
    d->top_end = r0 > 0 ? (uint32_t)min64(h, max64(0, floor_div(r0 * ow - 1 + dmax, ow) + 1)) : 0;
    d->bottom_begin = r1 < oh ? (uint32_t)min64(h, max64(d->top_end, floor_div(r1 * ow + dmin, ow))) : (uint32_t)h;
  }
  sl_model_release(m, rows);
  sl_model_release(m, cols);
  /* Threads take bands of rows (band_rows): a thread then reads what it wrote in the 1x1 layer
   * before, split by pixels, not channels another core computed. */
  const size_t threads = sl_op_threads(m), tiles = d->direct ? (d->r1 - d->r0) / SL_DWCONV_ROW_TILE : 0;
  d->bands = threads > 1 && tiles >= 2 ? (uint32_t)(threads < tiles ? threads : tiles) : 1;
  d->channels = task_channels(m, c, (size_t)oh * (size_t)ow * (taps + 1), slot, d->bands);
  size_t scratch;
  if (!sl_size_mul(d->channels * sizeof(float), slot, &scratch))
    return sl_node_fail(m, n, "the padded input planes do not fit in memory");
  n->kernel = d->k->name;
  if (d->k16 != NULL) { /* planes, then the outputs, of d->channels channels in halves */
    size_t halves = c * w_stride, out_bytes;
    d->direct = false;
    d->packed16 = sl_model_alloc(m, (halves + SL_F16_DWCONV_W_PAST) * sizeof(sl_f16)); /* zeroed */
    if (d->packed16 == NULL) return SL_ERROR_OUT_OF_MEMORY;
    sl_f16_from_f32_n(d->packed, d->packed16, halves);
    if (!sl_size_mul(d->channels * sizeof(sl_f16), (size_t)oh * (size_t)ow, &out_bytes) ||
        !sl_size_add(scratch / 2, out_bytes, &scratch))
      return sl_node_fail(m, n, "the padded input planes do not fit in memory");
    n->kernel = d->k16->name;
  }
  sl_reserve_scratch(m, n, 0, scratch);
  return SL_OK;
}

/* Zeroes what fill_planes and copy_rows never write: rows past the input, columns past the phase
 * (planes of `size`-byte elements: floats, or halves in fp16, whose zero is all bits clear too). */
static void zero_planes(const sl_depthwise_t* d, void* slots, size_t channels, size_t size) {
  size_t ow = d->s.out_w, rows = d->plane / (ow > 0 ? ow : 1);
  for (size_t ch = 0; ch < channels; ch++)
    for (uint32_t p = 0; p < d->num_planes; p++) {
      const sl_dw_plane_t* pl = &d->planes[p];
      char* plane = (char*)slots + (ch * d->slot + p * d->plane) * size;
      memset(plane, 0, pl->dr0 * ow * size);
      memset(plane + pl->dr1 * ow * size, 0, (rows - pl->dr1) * ow * size);
      if (pl->c0 == 0 && pl->c1 == ow) continue;
      for (size_t r = pl->dr0; r < pl->dr1; r++) {
        memset(plane + r * ow * size, 0, pl->c0 * size);
        memset(plane + (r * ow + pl->c1) * size, 0, (ow - pl->c1) * size);
      }
    }
}

/* cols input elements, sw apart, into a plane row of floats, or of halves when the layer runs fp16
 * (the input floats, or halves already in a chain). */
static void copy_row(const sl_depthwise_t* d, const void* from, size_t sw, void* dst, size_t cols) {
  const float* src = from;
  if (d->half_in) {
    const sl_f16* h = from;
    sl_f16* out = dst;
    if (sw == 1) memcpy(out, h, cols * sizeof(sl_f16));
    else
      for (size_t i = 0; i < cols; i++) out[i] = h[i * sw];
  } else if (d->k16 != NULL && sw == 1) {
    d->to16->fn.f16_from_f32(src, dst, cols);
  } else if (d->k16 != NULL) {
    sl_f16* h = dst;
    for (size_t i = 0; i < cols; i++) h[i] = sl_f16_from_f32(src[i * sw]);
  } else if (sw == 1) {
    memcpy(dst, src, cols * sizeof(float));
  } else {
    float* f = dst;
    for (size_t i = 0; i < cols; i++) f[i] = src[i * sw];
  }
}

/* One channel's planes from its input, in the layer's element type (floats, or halves in fp16).
 * Floats take the faster paths where they apply: unzip for stride-2 twins, one memcpy for rows
 * that follow each other in both. */
static void fill_planes(const sl_depthwise_t* d, const void* x, void* slot) {
  const sl_conv2d_shape_t* s = &d->s;
  const bool floats = d->k16 == NULL;
  size_t w = s->in_w, ow = s->out_w, sw = s->stride_w, x_stride = (size_t)s->stride_h * w;
  size_t size = floats ? sizeof(float) : sizeof(sl_f16), x_size = d->half_in ? sizeof(sl_f16) : sizeof(float);
  for (uint32_t p = 0; p < d->num_planes; p++) {
    const sl_dw_plane_t* pl = &d->planes[p];
    size_t rows = pl->dr1 - pl->dr0, cols = pl->c1 - pl->c0;
    char* dst = (char*)slot + (p * d->plane + pl->dr0 * ow + pl->c0) * size;
    const char* from = (const char*)x + (pl->in_row * w + pl->in_col) * x_size;
    const float* src = (const float*)(const void*)from;
    if (floats && pl->unzip) { /* its twin, the odd columns, is the next plane */
      size_t n = w - pl->in_col < 2 * cols ? w - pl->in_col : 2 * cols;
      float* even = (float*)(void*)dst;
      if (rows > 0 && n > 0) d->unzip->fn.unzip(rows, n, src, x_stride, even, even + d->plane, ow);
      p++;
    } else if (floats && sw == 1 && cols == ow && x_stride == ow) {
      memcpy(dst, src, rows * ow * sizeof(float));
    } else {
      for (size_t r = 0; r < rows; r++) copy_row(d, from + r * x_stride * x_size, sw, dst + r * ow * size, cols);
    }
  }
}

/* Direct: input rows [begin, end) into the plane, laid out as the input is. */
static void copy_rows(const sl_depthwise_t* d, const float* x, float* slot, size_t begin, size_t end) {
  size_t w = d->s.in_w;
  if (end > begin) memcpy(slot + (size_t)((int64_t)begin - d->row_lo) * w, x + begin * w, (end - begin) * w * sizeof(float));
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const sl_depthwise_t* d;
  const float* x;
  float* y;
  size_t tasks;  /* per image */
  bool* zeroed; /* per thread: its planes' padding is zero for this run */
} job_t;

static void run_f32(const sl_depthwise_t* d, const float* x, size_t x_stride, float* y, size_t y_stride, size_t c0,
                    size_t channels, float* slots, bool* zeroed, size_t a, size_t b);

/* Band `band`'s output rows [*a, *b): the rows read in place split at whole row tiles from r0, so
 * each kernel call sums as the unbanded one does; the first band takes the rows above r0, the last
 * those from r1 on. */
static void band_rows(const sl_depthwise_t* d, size_t band, size_t* a, size_t* b) {
  const size_t tiles = (d->r1 - d->r0) / SL_DWCONV_ROW_TILE;
  *a = band == 0 ? 0 : d->r0 + band * tiles / d->bands * SL_DWCONV_ROW_TILE;
  *b = band + 1 == d->bands ? d->s.out_h : d->r0 + (band + 1) * tiles / d->bands * SL_DWCONV_ROW_TILE;
}

/* Channels [c0, c0 + channels) of one image (x and y at channel c0, channels x_stride and
 * y_stride floats apart) with planes in slots, zeroed there first unless *zeroed; output rows
 * of band `band` of d->bands. */
static void run_channels(const sl_depthwise_t* d, const float* x, size_t x_stride, float* y, size_t y_stride,
                         size_t c0, size_t channels, float* slots, bool* zeroed, size_t band) {
  const sl_conv2d_shape_t* s = &d->s;
  size_t hw = (size_t)s->in_h * s->in_w, ohw = (size_t)s->out_h * s->out_w, ow = s->out_w, a, b;
  band_rows(d, band, &a, &b);
  if (d->nc != NULL) {
    size_t group = ((size_t)s->kernel_h * s->kernel_w + 1) * d->nc->rows;
    d->nc->fn.dwconv_nc(channels, s, x, x_stride, d->packed + c0 / d->nc->rows * group, y, y_stride, slots, &d->mm);
  } else if (d->s2 != NULL) {
    size_t w_stride = 1 + (size_t)s->kernel_h * s->kernel_w;
    if (x_stride == hw && y_stride == ohw) {
      d->s2->fn.dwconv_s2(channels, s, x, d->packed + c0 * w_stride, y, &d->mm);
    } else { /* the kernel reads and writes whole planes back to back: a channel per call */
      for (size_t ch = 0; ch < channels; ch++)
        d->s2->fn.dwconv_s2(1, s, x + ch * x_stride, d->packed + (c0 + ch) * w_stride, y + ch * y_stride, &d->mm);
    }
  } else if (d->k16 != NULL) {
    sl_f16* planes = (sl_f16*)(void*)slots;
    sl_f16* out = planes + d->channels * d->slot;
    if (!*zeroed) {
      zero_planes(d, planes, d->channels, sizeof(sl_f16));
      *zeroed = true;
    }
    size_t x_size = d->half_in ? sizeof(sl_f16) : sizeof(float);
    for (size_t ch = 0; ch < channels; ch++)
      fill_planes(d, (const char*)x + ch * x_stride * x_size, planes + ch * d->slot);
    /* A chain's halves go straight to y, laid out as its floats would be. */
    sl_f16* yh = d->half_out ? (sl_f16*)(void*)y : out;
    d->k16->fn.f16_dwconv(channels, ohw, ow, planes, d->slot, d->packed16 + c0 * (1 + 5 * (size_t)d->taps.rows),
                          &d->taps, yh, d->half_out ? y_stride : ohw, &d->mm);
    for (size_t ch = 0; ch < channels && !d->half_out; ch++)
      d->from16->fn.f16_to_f32(out + ch * ohw, y + ch * y_stride, ohw);
  } else {
    run_f32(d, x, x_stride, y, y_stride, c0, channels, slots, zeroed, a, b);
  }
  if (d->post.type != SL_ACT_NONE)
    for (size_t ch = 0; ch < channels; ch++)
      d->vunary->fn.vunary(&d->post, y + ch * y_stride + a * ow, y + ch * y_stride + a * ow, (b - a) * ow);
}

/* The planes' path in fp32: in place where rows allow (direct), there output rows [a, b). */
static void run_f32(const sl_depthwise_t* d, const float* x, size_t x_stride, float* y, size_t y_stride, size_t c0,
                    size_t channels, float* slots, bool* zeroed, size_t a, size_t b) {
  const sl_conv2d_shape_t* s = &d->s;
  size_t ohw = (size_t)s->out_h * s->out_w, ow = s->out_w;
  const float* w = d->packed + c0 * (1 + 5 * (size_t)d->taps.rows);
  if (!*zeroed) { /* the caller has the scratch for the whole run */
    zero_planes(d, slots, d->channels, sizeof(float));
    *zeroed = true;
  }
  sl_f32_dwconv_ukernel_fn* k = d->k->fn.dwconv;
  if (d->direct) { /* output rows [a, b): those above r0 and from r1 on from copies, the rest in place */
    size_t r0 = d->r0, r1 = d->r1;
    for (size_t ch = 0; ch < channels; ch++) {
      if (a < r0) copy_rows(d, x + ch * x_stride, slots + ch * d->slot, 0, d->top_end);
      if (b > r1) copy_rows(d, x + ch * x_stride, slots + ch * d->slot, d->bottom_begin, s->in_h);
    }
    if (a < r0) k(channels, ((b < r0 ? b : r0) - a) * ow, ow, slots + a * ow, d->slot, w, &d->taps, y + a * ow, y_stride, &d->mm);
    size_t lo = a > r0 ? a : r0, hi = b < r1 ? b : r1;
    if (lo < hi)
      k(channels, (hi - lo) * ow, ow, x + (size_t)((int64_t)lo + d->row_lo) * ow, x_stride, w, &d->taps, y + lo * ow,
        y_stride, &d->mm);
    lo = a > r1 ? a : r1;
    if (b > lo) k(channels, (b - lo) * ow, ow, slots + lo * ow, d->slot, w, &d->taps, y + lo * ow, y_stride, &d->mm);
  } else {
    for (size_t ch = 0; ch < channels; ch++) fill_planes(d, x + ch * x_stride, slots + ch * d->slot);
    k(channels, ohw, ow, slots, d->slot, w, &d->taps, y, y_stride, &d->mm);
  }
}

/* Task = (image, band of rows, run of d->channels channels). */
static void channels_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const sl_depthwise_t* d = j->d;
  const sl_conv2d_shape_t* s = &d->s;
  size_t c0 = task % j->tasks * d->channels, band = task / j->tasks % d->bands, image = task / j->tasks / d->bands;
  size_t channels = s->in_c - c0 < d->channels ? s->in_c - c0 : d->channels;
  size_t hw = (size_t)s->in_h * s->in_w, ohw = (size_t)s->out_h * s->out_w;
  /* Halves in a chain: offsets in their units (the kernels then read and write them so). */
  size_t x_size = d->half_in ? sizeof(sl_f16) : sizeof(float), y_size = d->half_out ? sizeof(sl_f16) : sizeof(float);
  const float* x = (const float*)(const void*)((const char*)j->x + (image * s->in_c + c0) * hw * x_size);
  float* y = (float*)(void*)((char*)j->y + (image * s->in_c + c0) * ohw * y_size);
  run_channels(d, x, hw, y, ohw, c0, channels, sl_scratch_thread(j->m, j->n, thread), &j->zeroed[thread], band);
}

size_t sl_depthwise_slots_bytes(const sl_depthwise_t* d) {
  return d->nc != NULL ? d->nc_scratch : d->s2 != NULL ? 0 : d->channels * d->slot * sizeof(float);
}

size_t sl_depthwise_channel_unit(const sl_depthwise_t* d) { return d->nc != NULL ? d->nc->rows : 1; }

void sl_depthwise_run_serial(const sl_depthwise_t* d, const float* x, size_t x_stride, float* y, size_t y_stride,
                             size_t c0, size_t channels, float* slots, bool* zeroed) {
  for (size_t band = 0; band < d->bands; band++)
    for (size_t c = 0; c < channels; c += d->channels) {
      size_t n = channels - c < d->channels ? channels - c : d->channels;
      run_channels(d, x + c * x_stride, x_stride, y + c * y_stride, y_stride, c0 + c, n, slots, zeroed, band);
    }
}

void sl_depthwise_run(const sl_model_t* m, const sl_node_t* n, const sl_depthwise_t* d, const float* x, float* y,
                      size_t batch) {
  size_t per_image = (d->s.in_c + d->channels - 1) / d->channels;
  bool zeroed[256] = {false}; /* sl_model_set_num_threads allows up to 256 */
  job_t j = {m, n, d, x, y, per_image, zeroed};
  sl_parallel_for(m, batch * d->bands * per_image, channels_task, &j);
}
