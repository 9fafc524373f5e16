/* Fused inverted-residual blocks: a band of output rows at a time, the expand computes the
 * input rows the band's depthwise taps read (keeping the rows it shares with the band before),
 * the depthwise and the project follow on that band, and the residual is added to the
 * finished rows. With a leading depthwise, the expand's new rows are computed from that
 * depthwise over the input rows they read, copied into a band buffer with their padding. The
 * band buffers are per thread and stay in L2; the intermediate tensors are never written to
 * memory (the planner gives them no arena slot). */
#include <string.h>

#include "fused_block.h"

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Output rows [oy0, oy1) of a band read padded input rows [*base, *base + *rows): image rows
 * there, zeros above and below the image. */
static void band_window(const sl_fused_block_t* b, uint32_t oy0, uint32_t oy1, int64_t* base, int64_t* rows) {
  *base = (int64_t)oy0 * b->stride_h - b->pad_top;
  *rows = (int64_t)(oy1 - oy0 - 1) * b->stride_h + b->kernel_h;
}

/* Whether depthwise shape s runs in place (sl_fused_dwconv_t). */
static bool fits_in_place(const sl_conv2d_shape_t* s) {
  return s->stride_h == 1 && s->stride_w == 1 && s->out_w == s->in_w && s->kernel_w <= 5 && s->pad_left <= 2 &&
         s->kernel_w - 1 - s->pad_left <= 2;
}

/* The in-place depthwise: tap (ky, kx) of output i reads band row ky, column step kx - pad_left. */
static sl_status_t prepare_in_place(sl_model_t* m, sl_fused_dwconv_t* k, const sl_fused_dw_t* dw) {
  const sl_conv2d_shape_t* s = &dw->shape;
  size_t kh = s->kernel_h, kw = s->kernel_w, floats;
  sl_dwconv_row_t* rows = sl_model_alloc(m, kh * sizeof(sl_dwconv_row_t));
  if (rows == NULL || !sl_size_mul(s->in_c, 1 + 5 * kh, &floats)) return SL_ERROR_OUT_OF_MEMORY;
  k->packed = sl_model_alloc(m, floats * sizeof(float));
  if (k->packed == NULL) return SL_ERROR_OUT_OF_MEMORY;
  for (size_t ky = 0; ky < kh; ky++) {
    rows[ky].offset = (uint32_t)(ky * s->in_w);
    rows[ky].columns = 0;
    for (size_t kx = 0; kx < kw; kx++) rows[ky].columns |= 1u << (kx - s->pad_left + 2);
  }
  for (size_t c = 0; c < s->in_c; c++) {
    float* w = k->packed + c * (1 + 5 * kh);
    w[0] = dw->bias != NULL ? dw->bias[c] : 0.0f;
    for (size_t ky = 0; ky < kh; ky++)
      for (size_t kx = 0; kx < kw; kx++) w[1 + 5 * ky + kx - s->pad_left + 2] = dw->weights[(c * kh + ky) * kw + kx];
  }
  k->taps = (sl_dwconv_taps_t){(uint32_t)kh, rows};
  k->k = sl_op_kernel(m, SL_FAMILY_dwconv, 0);
  k->post = sl_activation_split(&dw->act, &k->mm);
  return SL_OK;
}

/* `pixels` outputs of every channel (rows `width` wide) from band buffer x into y. */
static void run_in_place(const sl_fused_block_t* b, const sl_fused_dwconv_t* k, size_t channels, size_t pixels,
                         size_t width, const float* x, size_t x_stride, float* y, size_t y_stride) {
  k->k->fn.dwconv(channels, pixels, width, x, x_stride, k->packed, &k->taps, y, y_stride, &k->mm);
  if (k->post.type != SL_ACT_NONE)
    for (size_t c = 0; c < channels; c++) b->vunary->fn.vunary(&k->post, y + c * y_stride, y + c * y_stride, pixels);
}

/* A depthwise per band height (the last band may be shorter) over the band's padded rows. */
static sl_status_t prepare_kinds(sl_model_t* m, sl_node_t* dw_node, sl_fused_block_t* b, const sl_fused_dw_t* dw,
                                 size_t* slots) {
  uint32_t heights[2] = {b->band_rows, b->out_h - (b->bands - 1) * b->band_rows};
  b->num_kinds = heights[1] == heights[0] ? 1 : 2;
  *slots = 0;
  for (uint32_t k = 0; k < b->num_kinds; k++) {
    sl_fused_kind_t* kind = &b->kinds[k];
    kind->out_rows = heights[k];
    sl_conv2d_shape_t band = dw->shape;
    band.in_h = (heights[k] - 1) * band.stride_h + band.kernel_h;
    band.out_h = heights[k];
    band.pad_top = 0;
    sl_status_t st = sl_depthwise_prepare(m, dw_node, &kind->dw, &band, dw->weights, dw->bias, &dw->act);
    if (st != SL_OK) return st;
    size_t bytes = sl_depthwise_slots_bytes(&kind->dw);
    if (bytes > *slots) *slots = bytes;
  }
  return SL_OK;
}

sl_status_t sl_fused_block_prepare(sl_model_t* m, sl_node_t* head, sl_node_t* dw_node, sl_node_t* project_node,
                                   const sl_linear_t* expand, uint32_t band_rows, uint32_t in_h, uint32_t in_w,
                                   const sl_fused_pre_t* pre, const sl_fused_dw_t* dw,
                                   const sl_fused_project_t* project, const sl_activation_t* add_act,
                                   sl_fused_block_t** out) {
  *out = NULL;
  const sl_conv2d_shape_t* s = &dw->shape;
  const sl_conv2d_shape_t* ps = pre != NULL ? &pre->dw.shape : NULL;
  if (ps != NULL && (!fits_in_place(ps) || ps->out_h != ps->in_h)) return SL_OK;
  /* The leading depthwise's rows: its channels, and the input rows beyond its output's. */
  size_t mid = s->in_c, pre_c = ps != NULL ? ps->in_c : 0, pre_halo = ps != NULL ? ps->kernel_h - 1 : 0, expanded;
  uint32_t rows = band_rows < s->out_h ? band_rows : s->out_h;
  if (band_rows == 0) {
    /* Without a leading depthwise, the expanded tensor; with one, also its output. */
    size_t largest = mid > pre_c ? mid : pre_c;
    bool stride_pays = s->stride_h == 1 || (s->stride_h == 2 && sl_cpu_l2_bytes() >= SL_FUSED_S2_L2_BYTES);
    if (expand->spmm == NULL || !stride_pays ||
        !sl_size_mul(largest * sizeof(float), (size_t)in_h * in_w, &expanded) || expanded < SL_FUSED_BLOCK_MIN_BYTES)
      return SL_OK;
    /* The most output rows whose buffers stay within the band budget. */
    const size_t budget = sl_cpu_l2_bytes() / 4 > SL_FUSED_BAND_BYTES ? sl_cpu_l2_bytes() / 4 : SL_FUSED_BAND_BYTES;
    for (rows = 1; rows < s->out_h; rows++) {
      size_t next = rows + 1, e_rows = (next - 1) * s->stride_h + s->kernel_h;
      size_t floats = mid * (e_rows * in_w + next * s->out_w) + pre_c * (2 * e_rows + pre_halo) * in_w;
      if (floats * sizeof(float) > budget) break;
    }
    if (rows >= s->out_h) return SL_OK; /* one band: nothing to keep out of memory */
  }
  size_t e_rows = (size_t)(rows - 1) * s->stride_h + s->kernel_h;
  if (e_rows * in_w > UINT32_MAX / 2) return SL_OK; /* the kernels' 32-bit tap offsets */
  sl_fused_block_t* b = sl_model_alloc(m, sizeof(*b));
  if (b == NULL) return SL_ERROR_OUT_OF_MEMORY;
  b->expand = expand;
  b->in_c = (uint32_t)expand->cols;
  b->in_h = in_h;
  b->in_w = in_w;
  b->mid_c = (uint32_t)mid;
  b->out_c = (uint32_t)project->weights.shape[0];
  b->out_h = s->out_h;
  b->out_w = s->out_w;
  b->stride_h = s->stride_h;
  b->pad_top = s->pad_top;
  b->kernel_h = s->kernel_h;
  b->band_rows = rows;
  b->bands = (s->out_h + rows - 1) / rows;
  b->segment_bands = (b->bands + SL_FUSED_SEGMENTS - 1) / SL_FUSED_SEGMENTS;
  b->segments = (b->bands + b->segment_bands - 1) / b->segment_bands;
  /* Two floats around every channel's rows: the dwconv kernel reads (and drops) them. */
  b->e_stride = e_rows * in_w + 4;
  b->d_stride = (size_t)rows * s->out_w;
  b->in_place = fits_in_place(s);
  b->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  size_t slots = 0;
  sl_status_t st = b->in_place ? prepare_in_place(m, &b->dwconv, dw) : prepare_kinds(m, dw_node, b, dw, &slots);
  if (st != SL_OK) return st;
  b->has_pre = pre != NULL;
  b->pre_x_stride = b->pre_y_stride = 0;
  if (pre != NULL) {
    /* A band's new expanded rows are at most e_rows: the leading depthwise's output rows. */
    b->pre_kernel_h = ps->kernel_h;
    b->pre_pad_top = ps->pad_top;
    b->pre_x_stride = (e_rows + pre_halo) * in_w + 4; /* two floats around each channel, as e */
    b->pre_y_stride = e_rows * in_w;
    if ((st = prepare_in_place(m, &b->pre, &pre->dw)) != SL_OK) return st;
    sl_node_t saved = *pre->expand_node;
    st = sl_linear_prepare(m, pre->expand_node, &b->expand_band, &pre->expand.weights, pre->expand.bias,
                           SL_LINEAR_CHANNEL_MAJOR, b->pre_y_stride, b->pre_y_stride, &pre->expand.act);
    *pre->expand_node = saved;
    if (st != SL_OK) return st;
    b->expand = &b->expand_band;
  }
  /* The project reads a band's depthwise output: prepared for that stride, on the project's
   * node, whose own fields stay as its unfused prepare left them. */
  sl_node_t saved = *project_node;
  st = sl_linear_prepare(m, project_node, &b->project, &project->weights, project->bias, SL_LINEAR_CHANNEL_MAJOR,
                         b->d_stride, b->d_stride, &project->act);
  *project_node = saved;
  if (st != SL_OK) return st;
  if (add_act != NULL) sl_epilogue_add(m, &b->residual, add_act);
  b->residual_in_kernel = add_act != NULL && sl_linear_takes_residual(&b->project, &b->residual);
  size_t floats = (b->e_stride + b->d_stride) * mid + (b->pre_x_stride + b->pre_y_stride) * pre_c, bytes;
  if (!sl_size_mul(floats, sizeof(float), &bytes) || !sl_size_add(bytes, slots, &bytes))
    return sl_node_fail(m, head, "the fused block's band buffers do not fit in memory");
  sl_reserve_scratch(m, head, 0, bytes);
  *out = b;
  return SL_OK;
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* head;
  const sl_fused_block_t* b;
  const float* x;
  float* y;
} job_t;

/* Padded rows [j0, j1) of every channel's band buffer set to zero. */
static void zero_rows(const sl_fused_block_t* b, float* e, int64_t j0, int64_t j1) {
  if (j1 > j0)
    for (size_t c = 0; c < b->mid_c; c++) memset(e + c * b->e_stride + j0 * b->in_w, 0, (size_t)(j1 - j0) * b->in_w * sizeof(float));
}

/* Image rows [r0, r0 + n) of the expand's output into e (channels e_stride floats apart): from
 * x's planes, or through the leading depthwise over the input rows those rows read. Rows inside
 * the image with two floats of it on either side (what the dwconv kernel reads and drops) are
 * read in place; otherwise they are copied into pre_x, with zero rows for the padding. */
static void expand_rows(const sl_fused_block_t* b, const float* x, int64_t r0, int64_t n, float* e, float* pre_x,
                        float* pre_y) {
  size_t w = b->in_w, hw = (size_t)b->in_h * w, pixels = (size_t)n * w;
  if (!b->has_pre) {
    sl_linear_run_serial(b->expand, x + r0 * w, e, b->e_stride, pixels, NULL);
    return;
  }
  int64_t base = r0 - b->pre_pad_top, rows = n + b->pre_kernel_h - 1;
  const float* in = x + base * (int64_t)w;
  size_t in_stride = hw;
  if (base * (int64_t)w < 2 || ((int64_t)b->in_h - base - rows) * (int64_t)w < 2) {
    int64_t top = clamp64(-base, 0, rows), bottom = clamp64((int64_t)b->in_h - base, top, rows);
    for (size_t c = 0; c < b->in_c; c++) {
      float* band = pre_x + c * b->pre_x_stride;
      memset(band, 0, (size_t)top * w * sizeof(float));
      memcpy(band + top * w, x + c * hw + (base + top) * w, (size_t)(bottom - top) * w * sizeof(float));
      memset(band + bottom * w, 0, (size_t)(rows - bottom) * w * sizeof(float));
    }
    in = pre_x;
    in_stride = b->pre_x_stride;
  }
  run_in_place(b, &b->pre, b->in_c, pixels, w, in, in_stride, pre_y, b->pre_y_stride);
  sl_linear_run_serial(b->expand, pre_y, e, b->e_stride, pixels, NULL);
}

/* Task = (image, segment): its bands in order, each keeping the padded rows it shares with the
 * band before and expanding the rest. */
static void segment_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const sl_fused_block_t* b = j->b;
  size_t image = task / b->segments, first = task % b->segments * b->segment_bands;
  size_t last = first + b->segment_bands < b->bands ? first + b->segment_bands : b->bands;
  size_t w = b->in_w, hw = (size_t)b->in_h * w, ow = b->out_w, ohw = (size_t)b->out_h * ow;
  const float* x = j->x + image * b->in_c * hw;
  float* y = j->y + image * b->out_c * ohw;
  float* scratch = sl_scratch_thread(j->m, j->head, thread);
  float* e = scratch + 2; /* channel c's padded rows at e + c * e_stride */
  float* d = scratch + b->e_stride * b->mid_c;
  float* pre_x = d + b->d_stride * b->mid_c + 2;
  float* pre_y = pre_x - 2 + b->pre_x_stride * b->in_c;
  float* slots = b->has_pre ? pre_y + b->pre_y_stride * b->in_c : d + b->d_stride * b->mid_c;
  int64_t have_base = 0, have_rows = 0; /* the window e holds */
  for (size_t band = first; band < last; band++) {
    uint32_t oy0 = (uint32_t)band * b->band_rows, oy1 = min_u32(b->out_h, oy0 + b->band_rows);
    int64_t base, rows;
    band_window(b, oy0, oy1, &base, &rows);
    /* The window moves down: its first rows may be the last of the one before. */
    int64_t kept = have_rows > 0 ? clamp64(have_base + have_rows - base, 0, rows) : 0;
    if (kept > 0 && base > have_base)
      for (size_t c = 0; c < b->mid_c; c++)
        memmove(e + c * b->e_stride, e + c * b->e_stride + (base - have_base) * w, (size_t)kept * w * sizeof(float));
    int64_t top = clamp64(-base, kept, rows), bottom = clamp64((int64_t)b->in_h - base, top, rows);
    zero_rows(b, e, kept, top);
    if (bottom > top) expand_rows(b, x, base + top, bottom - top, e + top * w, pre_x, pre_y);
    zero_rows(b, e, bottom, rows);
    have_base = base;
    have_rows = rows;
    size_t pixels = (size_t)(oy1 - oy0) * ow;
    if (b->in_place) {
      run_in_place(b, &b->dwconv, b->mid_c, pixels, ow, e, b->e_stride, d, b->d_stride);
    } else {
      const sl_fused_kind_t* kind = &b->kinds[oy1 - oy0 == b->kinds[0].out_rows ? 0 : 1];
      sl_depthwise_run_serial(&kind->dw, e, b->e_stride, d, b->d_stride, slots);
    }
    float* out = y + oy0 * ow;
    if (b->residual_in_kernel) { /* the block's input, laid out as y (stride 1) */
      const sl_matrix_out_t stage = {.mm = b->residual.mm, .residual = x + oy0 * ow};
      sl_linear_run_serial(&b->project, d, out, ohw, pixels, &stage);
      continue;
    }
    sl_linear_run_serial(&b->project, d, out, ohw, pixels, NULL);
    if (!b->residual.residual) continue;
    for (size_t c = 0, at = oy0 * ow; c < b->out_c; c++, at += hw)
      sl_epilogue_apply(&b->residual, y + at, y, x, at, c, pixels);
  }
}

void sl_fused_block_run(const sl_model_t* m, const sl_node_t* head, const sl_fused_block_t* b, const float* x,
                        float* y, size_t batch) {
  job_t j = {m, head, b, x, y};
  sl_parallel_for(m, batch * b->segments, segment_task, &j);
}
