/* Fused inverted-residual blocks: a band of output rows at a time, the expand computes the
 * input rows the band's depthwise taps read, a chunk of its output channels at a time, and the
 * depthwise takes each chunk while it is still in L1; the project follows on the band's depthwise
 * output, and the residual is added to the finished rows. Where the expand widens its input, its
 * rows go to L1 and back, not to L2: there, stores that missed L1 took most of the expand's time
 * (MobileNetV2's 112x112 block on the 2 MB L2 Xeon ran 0.374 ms with whole bands in L2, 0.262 in
 * chunks). Rows
 * two bands share are computed twice, so bands are independent tasks. With a leading depthwise,
 * the expand reads that depthwise's output over the rows the band needs, computed from its input
 * rows copied into a band buffer with their padding. The band buffers are per thread; the
 * intermediate tensors are never written to memory (the planner gives them no arena slot). */
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
/* Whether a layer's rows run in channel order (no out_perm). */
static bool rows_in_order(const sl_linear_t* L, size_t rows) {
  for (size_t i = 0; i < rows; i++)
    if (sl_linear_row_channel(L, i) != i) return false;
  return true;
}

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

/* `pixels` outputs of channels [c0, c0 + channels) (rows `width` wide) from band buffer x into y. */
static void run_in_place(const sl_fused_block_t* b, const sl_fused_dwconv_t* k, size_t c0, size_t channels,
                         size_t pixels, size_t width, const float* x, size_t x_stride, float* y, size_t y_stride) {
  const float* w = k->packed + c0 * (1 + 5 * (size_t)k->taps.rows);
  k->k->fn.dwconv(channels, pixels, width, x, x_stride, w, &k->taps, y, y_stride, &k->mm);
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
  size_t mid = s->in_c, pre_c = ps != NULL ? ps->in_c : 0, pre_halo = ps != NULL ? ps->kernel_h - 1 : 0, expanded = 0;
  /* Chunks pay where the expand widens its input: where it narrows it (BlazeFace's double blocks),
   * each chunk's rereading of the input costs more than the stores it keeps in L1. */
  const size_t unit = sl_linear_row_unit(expand);
  const bool chunked = mid > (size_t)expand->cols;
  bool in_order = rows_in_order(expand, mid);
  uint32_t rows = band_rows < s->out_h ? band_rows : s->out_h;
  if (band_rows == 0) {
    /* Without a leading depthwise, the expanded tensor; with one, also its output. */
    size_t largest = mid > pre_c ? mid : pre_c;
    if (expand->spmm == NULL || !sl_size_mul(largest * sizeof(float), (size_t)in_h * in_w, &expanded) ||
        expanded < (chunked ? SL_FUSED_CHUNKED_MIN_BYTES : SL_FUSED_BLOCK_MIN_BYTES))
      return SL_OK;
    const size_t l2 = sl_cpu_l2_bytes(); /* 0 where unknown (ARM, WASM): no stride 2 */
    const bool s2_pays = l2 >= SL_FUSED_S2_L2_BYTES || (l2 > 0 && chunked && expanded / SL_FUSED_S2_L2S >= l2);
    if (s->stride_h != 1 && !(s->stride_h == 2 && s2_pays)) return SL_OK;
    /* The most output rows, at most 1 / SL_FUSED_MIN_BANDS of them, whose band buffers stay within
     * the band budget and, chunked, whose chunks of one unit of the expand's rows within the chunk
     * budget (a depthwise grouping channels may make chunks larger). Shuffled rows may end up in
     * one chunk (by_channel): the budget then counts the expanded rows too. */
    const size_t budget = l2 / 4 > SL_FUSED_BAND_BYTES ? l2 / 4 : SL_FUSED_BAND_BYTES;
    const uint32_t most = (s->out_h + SL_FUSED_MIN_BANDS - 1) / SL_FUSED_MIN_BANDS;
    for (rows = 1; rows < most; rows++) {
      size_t next = rows + 1, e_rows = (next - 1) * s->stride_h + s->kernel_h, e_floats = e_rows * in_w + 4;
      size_t band_floats = mid * next * s->out_w + pre_c * (2 * e_rows + pre_halo) * in_w +
                           (chunked && in_order ? 0 : mid * e_floats);
      if (band_floats * sizeof(float) > budget || (chunked && unit * e_floats * sizeof(float) > SL_FUSED_CHUNK_BYTES))
        break;
    }
    /* Rows a band shares with the next are computed twice: past a share of its new rows, they
     * cost more than the cache saves. */
    size_t shared = s->kernel_h > s->stride_h ? s->kernel_h - s->stride_h : 0;
    if (100 * shared > SL_FUSED_MAX_SHARED_PCT * (size_t)rows * s->stride_h) return SL_OK;
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
    /* A band's expanded rows are e_rows: the leading depthwise's output rows. */
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
  /* Chunks: whole units of the expand's rows (and of the depthwise's channels), as many as fit
   * the chunk budget. Its rows come in the kernels' order; the depthwise takes runs of
   * consecutive channels. */
  size_t step = sl_linear_row_unit(b->expand);
  bool grouped = false;
  in_order = rows_in_order(b->expand, mid); /* after a leading depthwise, its own layer */
  for (uint32_t k = 0; k < (b->in_place ? 0 : b->num_kinds); k++) {
    const size_t dw_unit = sl_depthwise_channel_unit(&b->kinds[k].dw);
    for (const size_t u = step; step % dw_unit != 0;) step += u;
    grouped |= dw_unit > 1;
  }
  /* Shuffled rows in one chunk go at their channels: where runs would split dwconv_nc's channel
   * groups, or there is no chunking to gain (runs of one channel would cost depthwise calls).
   * Automatic fusion of such a chunked block then needs the unchunked size. */
  b->by_channel = !in_order && (grouped || !chunked);
  if (band_rows == 0 && b->by_channel && chunked && expanded < SL_FUSED_BLOCK_MIN_BYTES) return SL_OK;
  size_t chunk = chunked && !b->by_channel ? SL_FUSED_CHUNK_BYTES / (b->e_stride * sizeof(float)) / step * step : mid;
  b->chunk = chunk < step ? step : chunk > mid ? mid : chunk;
  if (b->by_channel) {
    b->out_rows = sl_linear_out_rows(b->expand);
  } else {
    uint32_t* iota = sl_model_alloc(m, b->chunk * sizeof(uint32_t));
    if (iota == NULL) return SL_ERROR_OUT_OF_MEMORY;
    for (size_t i = 0; i < b->chunk; i++) iota[i] = (uint32_t)i;
    b->out_rows = iota;
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
  size_t floats = b->e_stride * b->chunk + b->d_stride * mid + (b->pre_x_stride + b->pre_y_stride) * pre_c, bytes;
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

/* Padded rows [j0, j1) of the chunk's `channels` band buffers set to zero. */
static void zero_rows(const sl_fused_block_t* b, float* e, size_t channels, int64_t j0, int64_t j1) {
  if (j1 > j0)
    for (size_t c = 0; c < channels; c++) memset(e + c * b->e_stride + j0 * b->in_w, 0, (size_t)(j1 - j0) * b->in_w * sizeof(float));
}

/* What the expand reads for image rows [r0, r0 + n): x's planes from row r0, or, after a leading
 * depthwise, its output over those rows (pre_y), computed from the input rows they read. Rows
 * inside the image with two floats of it on either side (what the dwconv kernel reads and drops)
 * are read in place; otherwise they are copied into pre_x, with zero rows for the padding. */
static const float* expand_input(const sl_fused_block_t* b, const float* x, int64_t r0, int64_t n, float* pre_x,
                                 float* pre_y) {
  size_t w = b->in_w, hw = (size_t)b->in_h * w;
  if (!b->has_pre) return x + r0 * (int64_t)w;
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
  run_in_place(b, &b->pre, 0, b->in_c, (size_t)n * w, w, in, in_stride, pre_y, b->pre_y_stride);
  return pre_y;
}

/* The channel in slot k of chunk i0's buffer: its row's, or slot k's own where rows go at their channels. */
static size_t slot_channel(const sl_fused_block_t* b, size_t i0, size_t k) {
  return b->by_channel ? k : sl_linear_row_channel(b->expand, i0 + k);
}

/* Task = (image, band): chunk by chunk, the expand's rows for the band's window, then the
 * depthwise on them into the band's depthwise output d; then the project on d. */
static void band_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const sl_fused_block_t* b = j->b;
  size_t image = task / b->bands, band = task % b->bands;
  size_t w = b->in_w, hw = (size_t)b->in_h * w, ow = b->out_w, ohw = (size_t)b->out_h * ow;
  const float* x = j->x + image * b->in_c * hw;
  float* y = j->y + image * b->out_c * ohw;
  float* scratch = sl_scratch_thread(j->m, j->head, thread);
  float* e = scratch + 2; /* slot k of a chunk: its padded rows at e + k * e_stride */
  float* d = scratch + b->e_stride * b->chunk;
  float* pre_x = d + b->d_stride * b->mid_c + 2;
  float* pre_y = pre_x - 2 + b->pre_x_stride * b->in_c;
  float* slots = b->has_pre ? pre_y + b->pre_y_stride * b->in_c : d + b->d_stride * b->mid_c;
  bool zeroed = false;
  uint32_t oy0 = (uint32_t)band * b->band_rows, oy1 = min_u32(b->out_h, oy0 + b->band_rows);
  int64_t base, rows;
  band_window(b, oy0, oy1, &base, &rows);
  int64_t top = clamp64(-base, 0, rows), bottom = clamp64((int64_t)b->in_h - base, top, rows);
  const float* in = bottom > top ? expand_input(b, x, base + top, bottom - top, pre_x, pre_y) : NULL;
  size_t pixels = (size_t)(oy1 - oy0) * ow;
  const sl_fused_kind_t* kind = &b->kinds[oy1 - oy0 == b->kinds[0].out_rows ? 0 : 1];
  for (size_t i0 = 0; i0 < b->mid_c; i0 += b->chunk) {
    size_t n = b->mid_c - i0 < b->chunk ? b->mid_c - i0 : b->chunk;
    zero_rows(b, e, n, 0, top);
    if (in != NULL)
      sl_linear_run_rows(b->expand, i0, n, b->out_rows, in, e + top * w, b->e_stride, (size_t)(bottom - top) * w);
    zero_rows(b, e, n, bottom, rows);
    /* the depthwise on each run of consecutive channels */
    for (size_t k = 0, run; k < n; k += run) {
      const size_t c = slot_channel(b, i0, k);
      for (run = 1; k + run < n && slot_channel(b, i0, k + run) == c + run; run++) continue;
      const float* ex = e + k * b->e_stride;
      if (b->in_place)
        run_in_place(b, &b->dwconv, c, run, pixels, ow, ex, b->e_stride, d + c * b->d_stride, b->d_stride);
      else
        sl_depthwise_run_serial(&kind->dw, ex, b->e_stride, d + c * b->d_stride, b->d_stride, c, run, slots, &zeroed);
    }
  }
  float* out = y + oy0 * ow;
  if (b->residual_in_kernel) { /* the block's input, laid out as y (stride 1) */
    const sl_matrix_out_t stage = {.mm = b->residual.mm, .residual = x + oy0 * ow};
    sl_linear_run_serial(&b->project, d, out, ohw, pixels, &stage);
    return;
  }
  sl_linear_run_serial(&b->project, d, out, ohw, pixels, NULL);
  if (!b->residual.residual) return;
  for (size_t c = 0, at = oy0 * ow; c < b->out_c; c++, at += hw)
    sl_epilogue_apply(&b->residual, y + at, y, x, at, c, pixels);
}

void sl_fused_block_run(const sl_model_t* m, const sl_node_t* head, const sl_fused_block_t* b, const float* x,
                        float* y, size_t batch) {
  job_t j = {m, head, b, x, y};
  sl_parallel_for(m, batch * b->bands, band_task, &j);
}
