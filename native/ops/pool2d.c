/* MAX_POOL2D, AVG_POOL2D (NCHW, PyTorch padding/ceil-mode semantics) and GLOBAL_AVG_POOL.
 * Max pooling runs the registry's maxpool kernel on the input in place: the output columns whose
 * windows lie inside the input in one call per task for the rows inside it too (strides 1 and 2)
 * and one per other row, its window clipped; the padded edge columns in C. Average pooling reduces each output row in two passes: the window's
 * input rows into one row (vertical), then each output reduces kw neighbours of that row, sw apart
 * (horizontal). The row sits in a buffer whose padding columns hold 0, so neither pass checks
 * bounds and both vectorize. Tasks are (plane, band of output rows). */
#include <math.h>

#include "op.h"

typedef struct {
  size_t planes;
  int64_t ih, iw, oh, ow, kh, kw, sh, sw, pt, pl, pb, pr; /* 64-bit: ih + pads and oh * sh pass 2^31 */
  bool include_pad;
  size_t span;        /* buffer columns: the padded columns windows reach, (ow - 1) * sw + kw */
  size_t cols;        /* input columns inside the span */
  size_t band, bands; /* output rows per task, tasks per plane */
  float* col_count;   /* AVG_POOL2D: columns each output column's window counts */
  const sl_ukernel_t* maxpool;   /* MAX_POOL2D */
  int64_t inner_y0, inner_y1;    /* output rows whose windows lie inside the input rows */
  int64_t inner_x0, inner_x1;    /* the same for columns; none at strides past 2 */
} pool_params_t;

enum { TASK_WORK = 32768 }; /* loads and reductions per task, about */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Window elements along one axis for output index o: padded ones count with count_include_pad,
 * clipped to the padded extent (ceil mode lets the last window hang past it). */
static int64_t window_count(bool include_pad, int64_t o, int64_t stride, int64_t k, int64_t pad_lo, int64_t size,
                            int64_t pad_hi) {
  int64_t lo = o * stride - pad_lo, hi = lo + k;
  return include_pad ? min64(hi, size + pad_hi) - lo : min64(hi, size) - max64(lo, 0);
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  pool_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  const sl_fb_table_t* o = &n->options;
  p->kh = sl_pool2d_options_kernel_h(fb, o);
  p->kw = sl_pool2d_options_kernel_w(fb, o);
  p->sh = sl_pool2d_options_stride_h(fb, o);
  p->sw = sl_pool2d_options_stride_w(fb, o);
  p->pt = sl_pool2d_options_pad_top(fb, o);
  p->pl = sl_pool2d_options_pad_left(fb, o);
  p->pb = sl_pool2d_options_pad_bottom(fb, o);
  p->pr = sl_pool2d_options_pad_right(fb, o);
  p->include_pad = sl_pool2d_options_count_include_pad(fb, o);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 4);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", 4);
  const int32_t window[4] = {p->kh, p->kw, p->sh, p->sw};
  if (st == SL_OK) st = sl_expect_window(m, n, "kernel and stride", 1, 4, window);
  if (st == SL_OK) st = sl_expect_batch_only(m, n);
  if (st != SL_OK) return st;
  if (p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0 || p->pt >= p->kh || p->pb >= p->kh ||
      p->pl >= p->kw || p->pr >= p->kw)
    return sl_node_fail(m, n, "paddings must be non-negative and smaller than the kernel");
  p->ih = x->shape[2];
  p->iw = x->shape[3];
  if (p->ih + p->pt + p->pb < p->kh || p->iw + p->pl + p->pr < p->kw)
    return sl_node_fail(m, n, "the %dx%d window is larger than the padded input", (int)p->kh, (int)p->kw);
  p->oh = y->shape[2];
  p->ow = y->shape[3];
  /* The stored size picks floor or ceil mode; a window must start inside the padded input. Every
   * window then holds at least one input pixel (paddings are smaller than the kernel). */
  int64_t fh = (p->ih + p->pt + p->pb - p->kh) / p->sh + 1, fw = (p->iw + p->pl + p->pr - p->kw) / p->sw + 1;
  bool ok_h = p->oh == fh || (p->oh == fh + 1 && (p->oh - 1) * p->sh < p->ih + p->pt);
  bool ok_w = p->ow == fw || (p->ow == fw + 1 && (p->ow - 1) * p->sw < p->iw + p->pl);
  if (fh > INT32_MAX || fw > INT32_MAX)
    return sl_node_fail(m, n, "the output would be %lldx%lld, over 2^31 - 1 per axis", (long long)fh, (long long)fw);
  int32_t yshape[4] = {x->shape[0], x->shape[1], (int32_t)(ok_h ? p->oh : fh), (int32_t)(ok_w ? p->ow : fw)};
  if ((st = sl_expect_shape(m, n, y, "output", 4, yshape)) != SL_OK) return st;
  p->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  /* Windows start inside the padded input, so span < iw + pl + kw: no wrap, even in 32 bits. */
  p->span = (size_t)((p->ow - 1) * p->sw + p->kw);
  p->cols = (size_t)min64(p->iw, (int64_t)p->span - p->pl); /* columns past the span are in no window */
  int64_t row_work = p->kh * (int64_t)p->cols + p->kw * p->ow;
  p->band = row_work >= TASK_WORK ? 1 : (size_t)(TASK_WORK / row_work);
  if (p->band > (size_t)p->oh) p->band = (size_t)p->oh;
  p->bands = ((size_t)p->oh + p->band - 1) / p->band;
  if (n->type == SL_OP_MAX_POOL2D) {
    p->maxpool = sl_op_kernel(m, SL_FAMILY_maxpool, 0);
    n->kernel = p->maxpool->name;
    p->inner_y0 = min64((p->pt + p->sh - 1) / p->sh, p->oh);
    p->inner_y1 = max64(min64(p->ih + p->pt >= p->kh ? (p->ih + p->pt - p->kh) / p->sh + 1 : 0, p->oh), p->inner_y0);
    p->inner_x0 = p->inner_x1 = 0;
    if (p->sw <= 2) {
      p->inner_x0 = min64((p->pl + p->sw - 1) / p->sw, p->ow);
      p->inner_x1 = max64(min64(p->iw + p->pl >= p->kw ? (p->iw + p->pl - p->kw) / p->sw + 1 : 0, p->ow), p->inner_x0);
    }
    return SL_OK;
  }
  /* Counts up to 65536 per axis: exact floats whose product rounds like the int64 count would. */
  size_t bytes;
  if (!sl_size_mul((size_t)p->ow, sizeof(float), &bytes))
    return sl_node_fail(m, n, "%lld column counts do not fit in memory", (long long)p->ow);
  if ((p->col_count = sl_model_alloc(m, bytes)) == NULL) return SL_ERROR_OUT_OF_MEMORY;
  for (int64_t ox = 0; ox < p->ow; ox++)
    p->col_count[ox] = (float)window_count(p->include_pad, ox, p->sw, p->kw, p->pl, p->iw, p->pr);
  size_t scratch;
  if (!sl_size_mul(p->span, sizeof(float), &scratch))
    return sl_node_fail(m, n, "a padded row of %zu columns does not fit in memory", p->span);
  sl_reserve_scratch(m, n, 0, scratch);
  return SL_OK;
}

/* v = a + b + c, the window's first input rows (b, c NULL when it has fewer): one pass for the
 * usual windows of up to 3 rows. */
static inline void row_start(float* restrict v, const float* restrict a, const float* restrict b,
                             const float* restrict c, size_t n) {
  if (b == NULL) {
    for (size_t i = 0; i < n; i++) v[i] = a[i];
  } else if (c == NULL) {
    for (size_t i = 0; i < n; i++) v[i] = a[i] + b[i];
  } else {
    for (size_t i = 0; i < n; i++) v[i] = a[i] + b[i] + c[i];
  }
}

/* v += b, for the window's next input row. */
static inline void row_next(float* restrict v, const float* restrict b, size_t n) {
  for (size_t i = 0; i < n; i++) v[i] += b[i];
}

/* out[ox] = the sum of v[ox * sw + k] over k < kw, divided by rows * count[ox]. */
static inline void row_windows(const float* restrict v, float* restrict out, size_t ow, size_t sw, size_t kw,
                               const float* restrict count, float rows) {
  for (size_t ox = 0; ox < ow; ox++) {
    const float* w = v + ox * sw;
    float acc = w[0];
    for (size_t k = 1; k < kw; k++) acc += w[k];
    out[ox] = acc / (rows * count[ox]);
  }
}

/* Common strides and widths get their own copy, unrolled and vectorized with constant steps. */
static inline void windows(const float* v, float* out, size_t ow, size_t sw, size_t kw, const float* count,
                           float rows) {
  if (sw == 2 && kw == 3) {
    row_windows(v, out, ow, 2, 3, count, rows);
  } else if (sw == 2 && kw == 2) {
    row_windows(v, out, ow, 2, 2, count, rows);
  } else if (sw == 1 && kw == 3) {
    row_windows(v, out, ow, 1, 3, count, rows);
  } else {
    row_windows(v, out, ow, sw, kw, count, rows);
  }
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const float* x;
  float* y;
} job_t;

/* The task's plane and output rows [*oy0, *oy1). */
static const float* band_of(const job_t* j, size_t task, size_t* oy0, size_t* oy1, float** y) {
  const pool_params_t* p = j->n->params;
  size_t plane = task / p->bands;
  *oy0 = task % p->bands * p->band;
  *oy1 = *oy0 + p->band < (size_t)p->oh ? *oy0 + p->band : (size_t)p->oh;
  *y = j->y + plane * (size_t)p->oh * (size_t)p->ow;
  return j->x + plane * (size_t)p->ih * (size_t)p->iw;
}

/* The largest input in rows [0, rows) and columns [x0, x1) of `row` onward, NaN if one is: an
 * edge window, clipped by the padding. */
static float window_max(const float* row, size_t iw, size_t rows, int64_t x0, int64_t x1) {
  float acc = -INFINITY;
  for (size_t r = 0; r < rows; r++)
    for (int64_t c = x0; c < x1; c++) {
      float v = row[r * iw + (size_t)c];
      acc = v > acc || v != v ? v : acc; /* a NaN stays: no v > NaN */
    }
  return acc;
}

/* Output rows [oy0, oy1): the columns whose windows lie inside the input by the kernel, in one
 * call for the rows inside it too and one per other row (its window clipped); the edge columns
 * here. */
static void max_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const pool_params_t* p = j->n->params;
  sl_f32_maxpool_ukernel_fn* maxpool = p->maxpool->fn.maxpool;
  size_t oy0, oy1, iw = (size_t)p->iw, ow = (size_t)p->ow, sw = (size_t)p->sw;
  float* y;
  const float* x = band_of(j, task, &oy0, &oy1, &y);
  size_t in0 = (size_t)max64((int64_t)oy0, p->inner_y0), in1 = (size_t)min64((int64_t)oy1, p->inner_y1);
  size_t cx0 = (size_t)p->inner_x0, cx1 = (size_t)p->inner_x1;
  const float* inner_x = x + (size_t)((int64_t)(cx0 * sw) - p->pl);
  if (in0 < in1 && cx0 < cx1)
    maxpool(in1 - in0, cx1 - cx0, (size_t)p->kh, (size_t)p->kw, sw, inner_x + (size_t)((int64_t)in0 * p->sh - p->pt) * iw,
            iw, (size_t)p->sh * iw, y + in0 * ow + cx0, ow);
  for (size_t oy = oy0; oy < oy1; oy++) {
    int64_t y0 = max64((int64_t)oy * p->sh - p->pt, 0), y1 = min64((int64_t)oy * p->sh - p->pt + p->kh, p->ih);
    float* out = y + oy * ow;
    if ((oy < in0 || oy >= in1) && cx0 < cx1)
      maxpool(1, cx1 - cx0, (size_t)(y1 - y0), (size_t)p->kw, sw, inner_x + (size_t)y0 * iw, iw, 0, out + cx0, 0);
    const float* rows = x + (size_t)y0 * iw;
    for (size_t ox = cx0 == 0 ? cx1 : 0; ox < ow; ox = ox + 1 == cx0 ? cx1 : ox + 1) /* [0, cx0), then [cx1, ow) */
      out[ox] = window_max(rows, iw, (size_t)(y1 - y0), max64((int64_t)(ox * sw) - p->pl, 0),
                           min64((int64_t)(ox * sw) - p->pl + p->kw, p->iw));
  }
}

static void avg_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const pool_params_t* p = j->n->params;
  size_t oy0, oy1;
  float* y;
  const float* xc = band_of(j, task, &oy0, &oy1, &y);
  float* v = sl_scratch_thread(j->m, j->n, thread);
  for (size_t b = 0; b < (size_t)p->pl; b++) v[b] = 0.0f;
  for (size_t b = (size_t)p->pl + p->cols; b < p->span; b++) v[b] = 0.0f;
  float* in = v + p->pl;
  for (size_t oy = oy0; oy < oy1; oy++) {
    int64_t y0 = max64((int64_t)oy * p->sh - p->pt, 0), y1 = min64((int64_t)oy * p->sh - p->pt + p->kh, p->ih);
    size_t iw = (size_t)p->iw, rows = (size_t)(y1 - y0);
    const float* row = xc + (size_t)y0 * iw;
    row_start(in, row, rows > 1 ? row + iw : NULL, rows > 2 ? row + 2 * iw : NULL, p->cols);
    for (size_t r = 3; r < rows; r++) row_next(in, row + r * iw, p->cols);
    float counted = (float)window_count(p->include_pad, (int64_t)oy, p->sh, p->kh, p->pt, p->ih, p->pb);
    windows(v, y + oy * (size_t)p->ow, (size_t)p->ow, (size_t)p->sw, (size_t)p->kw, p->col_count, counted);
  }
}

static void run_pool(const sl_model_t* m, const sl_node_t* n, sl_task_fn fn) {
  const pool_params_t* p = n->params;
  job_t j = {m, n, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, p->planes * p->bands, fn, &j);
}

static void run_max(const sl_model_t* m, const sl_node_t* n) { run_pool(m, n, max_task); }
static void run_avg(const sl_model_t* m, const sl_node_t* n) { run_pool(m, n, avg_task); }

typedef struct {
  size_t planes, hw, per_task;
} global_params_t;

static sl_status_t prepare_global(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  global_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 4);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", -1);
  if (st == SL_OK) st = sl_expect_batch_only(m, n);
  if (st != SL_OK) return st;
  int32_t keep[4] = {x->shape[0], x->shape[1], 1, 1};
  st = y->rank == 2 ? sl_expect_shape(m, n, y, "output", 2, keep) : sl_expect_shape(m, n, y, "output", 4, keep);
  p->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  p->hw = (size_t)x->shape[2] * (size_t)x->shape[3];
  p->per_task = p->hw >= TASK_WORK ? 1 : TASK_WORK / p->hw;
  return st;
}

typedef struct {
  const global_params_t* p;
  const float* x;
  float* y;
} global_job_t;

static void planes_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const global_job_t* j = ctx;
  const global_params_t* p = j->p;
  size_t c1 = (task + 1) * p->per_task < p->planes ? (task + 1) * p->per_task : p->planes;
  for (size_t c = task * p->per_task; c < c1; c++) {
    const float* x = j->x + c * p->hw;
    /* Eight running sums the compiler keeps in vector registers: one sum is a serial chain it may
     * not reorder. */
    float part[8] = {0};
    size_t i = 0;
    for (; i + 8 <= p->hw; i += 8)
      for (size_t k = 0; k < 8; k++) part[k] += x[i + k];
    float acc = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    for (; i < p->hw; i++) acc += x[i];
    j->y[c] = acc / (float)p->hw;
  }
}

static void run_global(const sl_model_t* m, const sl_node_t* n) {
  const global_params_t* p = n->params;
  global_job_t j = {p, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, (p->planes + p->per_task - 1) / p->per_task, planes_task, &j);
}

/* A new batch (sl_expect_batch_only): windows and counts stay; only the planes change. */
static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  const sl_tensor_t* x = sl_in(m, n, 0);
  ((pool_params_t*)n->params)->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  return SL_OK;
}

static sl_status_t resize_global(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  const sl_tensor_t* x = sl_in(m, n, 0);
  ((global_params_t*)n->params)->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  return SL_OK;
}

const sl_op_def_t sl_op_max_pool2d = {SL_OP_SCHEMA(MAX_POOL2D), 1, 1, prepare, run_max, resize};
const sl_op_def_t sl_op_avg_pool2d = {SL_OP_SCHEMA(AVG_POOL2D), 1, 1, prepare, run_avg, resize};
const sl_op_def_t sl_op_global_avg_pool = {SL_OP_SCHEMA(GLOBAL_AVG_POOL), 1, 1, prepare_global, run_global,
                                           resize_global};
