/* CONV_TRANSPOSE2D: NCHW input, weights [IC][OC/groups][KH][KW] (PyTorch's layout), optional
 * constant bias, fused activation. Per group, the registry's dense gemm multiplies the weights,
 * as the matrix [OC/groups * KH * KW][IC/groups], by the input's pixels: column (oc, ky, kx) of a
 * pixel is its contribution to one output pixel, which a scatter-add (col2im, portable C) then
 * places. A task is (image, group, block of output channels, band of output rows): it computes
 * the columns of the input rows its band reads (rows the bands share are computed by each),
 * fills the band with the bias, adds the columns in tap order and applies the activation. Every
 * output pixel is owned by one task and summed in the same order whatever the bands, so results
 * do not depend on the thread count; the bands themselves depend only on the shapes. */

#include "linear.h" /* SL_GEMM_NC_MAX_PIXELS */

enum {
  TARGET_ROWS = 64,            /* gemm rows (channels x taps) per block: x streams once per block */
  COLS_BUDGET = 256 * 1024,    /* bytes of columns a band aims for (L2) */
  MIN_TASKS = 16,              /* tasks (blocks x bands) per image and group, so layers spread over threads */
};

typedef struct {
  uint32_t in_c, in_h, in_w, out_c, out_h, out_w, kernel_h, kernel_w, groups;
  int64_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  uint32_t batch;
  sl_activation_t act;
  sl_minmax_t none; /* the gemm's clamp: none, the columns are partial sums */
  const float* bias;
  const sl_ukernel_t* gemm; /* gemm or gemm_nc */
  const sl_ukernel_t* vunary;
  float* panels;
  size_t block_oc, blocks; /* output channels per block, blocks per group */
  size_t block_panels, group_panels; /* floats of a full block's panels, of a group's */
  size_t band_rows, bands;           /* output rows per band, bands per image */
} convt_params_t;

/* ceil(a / b) for b > 0 and any sign of a. */
static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* Packs every group's blocks: block b of group g is the gemm matrix of output channels
 * [b * block_oc, ...) of the group, its row (oc, ky, kx) holding w[ic][oc][ky][kx] over the
 * group's input channels. */
static sl_status_t pack_weights(sl_model_t* m, sl_node_t* n, convt_params_t* p, const sl_tensor_t* w) {
  size_t icg = p->in_c / p->groups, ocg = p->out_c / p->groups, taps = (size_t)p->kernel_h * p->kernel_w;
  size_t row_len = ocg * taps; /* one input channel's weights: <= the tensor's elements */
  size_t last_oc = ocg - (p->blocks - 1) * p->block_oc, block_bytes, last_bytes, group_bytes, all_bytes, t_bytes;
  if (!sl_gemm_pack_bytes(p->block_oc * taps, icg, p->gemm->rows, &block_bytes) ||
      !sl_gemm_pack_bytes(last_oc * taps, icg, p->gemm->rows, &last_bytes) ||
      !sl_size_mul(block_bytes, p->blocks - 1, &group_bytes) || !sl_size_add(group_bytes, last_bytes, &group_bytes) ||
      !sl_size_mul(group_bytes, p->groups, &all_bytes) || !sl_size_mul(row_len, icg, &t_bytes) ||
      !sl_size_mul(t_bytes, sizeof(float), &t_bytes))
    return sl_node_fail(m, n, "the packed weights (%zu x %zu per group) do not fit in memory", row_len, icg);
  p->block_panels = block_bytes / sizeof(float);
  p->group_panels = group_bytes / sizeof(float);
  const float* dense;
  sl_status_t st = sl_dense_weights(m, n, w, &dense);
  if (st != SL_OK) return st;
  float* t = sl_model_alloc(m, t_bytes); /* one group's weights transposed to [oc, ky, kx][ic] */
  if (t == NULL) return SL_ERROR_OUT_OF_MEMORY;
  p->panels = sl_model_alloc(m, all_bytes);
  if (p->panels == NULL) return SL_ERROR_OUT_OF_MEMORY;
  for (uint32_t g = 0; g < p->groups; g++) {
    const float* wg = dense + g * icg * row_len;
    for (size_t ic = 0; ic < icg; ic++)
      for (size_t r = 0; r < row_len; r++) t[r * icg + ic] = wg[ic * row_len + r];
    for (size_t b = 0; b < p->blocks; b++) {
      size_t oc0 = b * p->block_oc, count = oc0 + p->block_oc <= ocg ? p->block_oc : ocg - oc0;
      sl_gemm_pack(t + oc0 * taps * icg, NULL, count * taps, icg, p->gemm->rows,
                   p->panels + g * p->group_panels + b * p->block_panels);
    }
  }
  sl_model_release(m, t);
  sl_release_dense_weights(m, w, dense);
  return SL_OK;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  convt_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  const sl_fb_table_t* o = &n->options;
  int32_t sh = sl_conv_transpose2d_options_stride_h(fb, o), sw = sl_conv_transpose2d_options_stride_w(fb, o);
  int32_t dh = sl_conv_transpose2d_options_dilation_h(fb, o), dw = sl_conv_transpose2d_options_dilation_w(fb, o);
  int32_t pt = sl_conv_transpose2d_options_pad_top(fb, o), pl = sl_conv_transpose2d_options_pad_left(fb, o);
  int32_t pb = sl_conv_transpose2d_options_pad_bottom(fb, o), pr = sl_conv_transpose2d_options_pad_right(fb, o);
  int32_t oph = sl_conv_transpose2d_options_output_padding_h(fb, o);
  int32_t opw = sl_conv_transpose2d_options_output_padding_w(fb, o);
  int32_t groups = sl_conv_transpose2d_options_groups(fb, o);
  sl_status_t st = sl_parse_activation(m, n, sl_conv_transpose2d_options_activation(fb, o),
                                       sl_conv_transpose2d_options_act_min(fb, o),
                                       sl_conv_transpose2d_options_act_max(fb, o), &p->act);
  const int32_t steps[4] = {sh, sw, dh, dw}, pads[6] = {pt, pl, pb, pr, oph, opw};
  if (st == SL_OK) st = sl_expect_window(m, n, "strides and dilations", 1, 4, steps);
  if (st == SL_OK) st = sl_expect_window(m, n, "paddings and output paddings", 0, 6, pads);
  if (st != SL_OK) return st;
  sl_tensor_t *x = sl_in(m, n, 0), *w = sl_in(m, n, 1), *b = n->num_inputs > 2 ? sl_in(m, n, 2) : NULL;
  sl_tensor_t* y = sl_out(m, n, 0);
  if ((st = sl_expect_f32(m, n, x, "input", 4)) != SL_OK) return st;
  if ((st = sl_expect_weights(m, n, w, 4)) != SL_OK) return st;
  if ((st = sl_expect_batch_only(m, n)) != SL_OK) return st;
  int32_t c = x->shape[1], ocg = w->shape[1], kh = w->shape[2], kw = w->shape[3];
  if (groups < 1 || c % groups != 0 || w->shape[0] != c || (int64_t)ocg * groups > INT32_MAX)
    return sl_node_fail(m, n, "weights [%d,%d,%d,%d] in %d groups do not fit %d input channels ([IC][OC/groups]"
                        "[KH][KW] expected)", w->shape[0], ocg, kh, kw, groups, c);
  int32_t oc = ocg * groups;
  if (b != NULL) {
    if ((st = sl_expect_f32(m, n, b, "bias", -1)) != SL_OK) return st;
    if (!b->is_const) return sl_node_fail(m, n, "bias must be constant");
    int32_t bshape[1] = {oc};
    if ((st = sl_expect_shape(m, n, b, "bias", 1, bshape)) != SL_OK) return st;
  }
  /* The full output, (in - 1) * stride + dilation * (k - 1) + 1, cropped and extended: < 2^50. */
  int64_t oh = ((int64_t)x->shape[2] - 1) * sh + (int64_t)dh * (kh - 1) + 1 - pt - pb + oph;
  int64_t ow = ((int64_t)x->shape[3] - 1) * sw + (int64_t)dw * (kw - 1) + 1 - pl - pr + opw;
  if (oh < 1 || ow < 1 || oh > INT32_MAX || ow > INT32_MAX)
    return sl_node_fail(m, n, "the output would be %lldx%lld: the paddings crop all of it, or it passes 2^31 - 1 "
                        "per axis", (long long)oh, (long long)ow);
  int32_t yshape[4] = {x->shape[0], oc, (int32_t)oh, (int32_t)ow};
  if ((st = sl_expect_f32(m, n, y, "output", 4)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", 4, yshape)) != SL_OK) return st;

  p->in_c = (uint32_t)c, p->in_h = (uint32_t)x->shape[2], p->in_w = (uint32_t)x->shape[3];
  p->out_c = (uint32_t)oc, p->out_h = (uint32_t)oh, p->out_w = (uint32_t)ow;
  p->kernel_h = (uint32_t)kh, p->kernel_w = (uint32_t)kw, p->groups = (uint32_t)groups;
  p->stride_h = sh, p->stride_w = sw, p->dilation_h = dh, p->dilation_w = dw, p->pad_top = pt, p->pad_left = pl;
  p->batch = (uint32_t)x->shape[0];
  p->bias = b != NULL ? sl_const_f32(b) : NULL;
  sl_activation_t none = {.type = SL_ACT_NONE};
  sl_activation_split(&none, &p->none);
  p->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  size_t in_pixels = (size_t)p->in_h * p->in_w, taps = (size_t)kh * kw;
  /* Few pixels: vectors along the (channel, tap) rows instead, as CONV2D's im2col does. */
  p->gemm = sl_op_kernel(m, in_pixels <= SL_GEMM_NC_MAX_PIXELS ? SL_FAMILY_gemm_nc : SL_FAMILY_gemm, 0);
  p->block_oc = taps >= TARGET_ROWS ? 1 : (TARGET_ROWS + taps - 1) / taps;
  if (p->block_oc > (size_t)ocg) p->block_oc = (size_t)ocg;
  p->blocks = ((size_t)ocg + p->block_oc - 1) / p->block_oc;

  /* Bands of `rows` input rows' worth of output (rows * stride output rows): within the column
   * budget, enough for MIN_TASKS with the blocks when the input has the rows, and at least twice the
   * rows a band shares with the next (halo) so recomputing them costs at most half. Where a
   * band would read every input row anyway, one band takes the whole output. */
  int64_t halo = ceil_div((int64_t)dh * (kh - 1), sh), ih = p->in_h;
  size_t row_bytes; /* columns of one input row */
  if (!sl_size_mul(p->block_oc * taps, (size_t)p->in_w, &row_bytes) ||
      !sl_size_mul(row_bytes, sizeof(float), &row_bytes))
    return sl_node_fail(m, n, "the columns of one input row (%zu x %u) do not fit in memory", p->block_oc * taps,
                        p->in_w);
  int64_t bands = (int64_t)((MIN_TASKS + p->blocks - 1) / p->blocks);
  int64_t rows = (int64_t)(COLS_BUDGET / row_bytes), per_band = (ih + bands - 1) / bands;
  if (rows > per_band) rows = per_band;
  if (rows < 2 * halo) rows = 2 * halo;
  if (rows > ih) rows = ih;
  if (rows < 1) rows = 1;
  int64_t band_rows = rows + halo >= ih ? oh : rows * sh;
  if (band_rows > oh) band_rows = oh;
  p->band_rows = (size_t)band_rows;
  p->bands = (size_t)((oh + band_rows - 1) / band_rows);
  int64_t band_in = rows + halo + 1; /* input rows a band reads, at most */
  if (band_in > ih) band_in = ih;
  size_t cols_bytes, tasks;
  if (!sl_size_mul(row_bytes, (size_t)band_in, &cols_bytes) ||
      !sl_size_mul((size_t)p->batch * p->groups, p->blocks, &tasks) || !sl_size_mul(tasks, p->bands, &tasks))
    return sl_node_fail(m, n, "the columns of a band (%lld input rows of %zu bytes) do not fit in memory",
                        (long long)band_in, row_bytes);
  if ((st = pack_weights(m, n, p, w)) != SL_OK) return st;
  sl_reserve_scratch(m, n, 0, cols_bytes);
  n->dense_flops = n->flops = 2.0 * c * ocg * (double)taps * (double)in_pixels * p->batch;
  n->kernel = p->gemm->name;
  return SL_OK;
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const convt_params_t* p;
  const float* x;
  float* y;
} job_t;

/* Adds column row `col` (tap ky, kx of one output channel over input rows [iy0, iy1) of width
 * in_w) to the rows [oy0, oy1) of the output plane. */
static void scatter_tap(const convt_params_t* p, const float* col, int64_t iy0, int64_t iy1, int64_t ky, int64_t kx,
                        int64_t oy0, int64_t oy1, float* plane) {
  int64_t sh = p->stride_h, sw = p->stride_w, y_off = ky * p->dilation_h - p->pad_top;
  int64_t x_off = kx * p->dilation_w - p->pad_left, in_w = p->in_w, out_w = p->out_w;
  /* Input rows and columns whose output lies in the band: oy = iy * sh + y_off in [oy0, oy1),
   * ox = ix * sw + x_off in [0, out_w). */
  int64_t r0 = ceil_div(oy0 - y_off, sh), r1 = ceil_div(oy1 - y_off, sh);
  int64_t c0 = ceil_div(-x_off, sw), c1 = ceil_div(out_w - x_off, sw);
  if (r0 < iy0) r0 = iy0;
  if (r1 > iy1) r1 = iy1;
  if (c0 < 0) c0 = 0;
  if (c1 > in_w) c1 = in_w;
  if (c1 <= c0) return;
  size_t n = (size_t)(c1 - c0);
  for (int64_t iy = r0; iy < r1; iy++) {
    const float* in = col + (iy - iy0) * in_w + c0;
    float* out = plane + (iy * sh + y_off) * out_w + c0 * sw + x_off;
    if (sw == 1) /* vectorised by the compiler */
      for (size_t e = 0; e < n; e++) out[e] += in[e];
    else
      for (size_t e = 0; e < n; e++) out[e * (size_t)sw] += in[e];
  }
}

static void band_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const convt_params_t* p = j->p;
  size_t band = task % p->bands, block = task / p->bands % p->blocks;
  size_t g = task / p->bands / p->blocks % p->groups, image = task / p->bands / p->blocks / p->groups;
  size_t icg = p->in_c / p->groups, ocg = p->out_c / p->groups, taps = (size_t)p->kernel_h * p->kernel_w;
  size_t in_plane = (size_t)p->in_h * p->in_w, out_plane = (size_t)p->out_h * p->out_w;
  size_t oc0 = g * ocg + block * p->block_oc, count = ocg - block * p->block_oc;
  if (count > p->block_oc) count = p->block_oc;
  int64_t oy0 = (int64_t)(band * p->band_rows), oy1 = oy0 + (int64_t)p->band_rows;
  if (oy1 > p->out_h) oy1 = p->out_h;
  size_t band_len = (size_t)(oy1 - oy0) * p->out_w;
  float* y = j->y + (image * p->out_c + oc0) * out_plane + (size_t)oy0 * p->out_w;
  for (size_t c = 0; c < count; c++) {
    float v = p->bias != NULL ? p->bias[oc0 + c] : 0.0f;
    float* row = y + c * out_plane;
    for (size_t i = 0; i < band_len; i++) row[i] = v;
  }
  /* Input rows with a tap in the band. */
  int64_t iy0 = ceil_div(oy0 + p->pad_top - (int64_t)(p->kernel_h - 1) * p->dilation_h, p->stride_h);
  int64_t iy1 = ceil_div(oy1 + p->pad_top, p->stride_h);
  if (iy0 < 0) iy0 = 0;
  if (iy1 > p->in_h) iy1 = p->in_h;
  if (iy1 > iy0) {
    size_t pixels = (size_t)(iy1 - iy0) * p->in_w, rows = count * taps;
    const float* x = j->x + (image * p->in_c + g * icg) * in_plane + (size_t)iy0 * p->in_w;
    const float* panels = p->panels + g * p->group_panels + block * p->block_panels;
    float* cols = sl_scratch_thread(j->m, j->n, thread);
    if (p->gemm->family == SL_FAMILY_gemm)
      p->gemm->fn.gemm(pixels, rows, icg, x, in_plane, NULL, panels, cols, pixels, &(sl_matrix_out_t){.mm = p->none});
    else
      p->gemm->fn.gemm_nc(pixels, rows, icg, x, 1, in_plane, panels, cols, 1, pixels, &p->none);
    for (size_t c = 0; c < count; c++)
      for (uint32_t ky = 0; ky < p->kernel_h; ky++)
        for (uint32_t kx = 0; kx < p->kernel_w; kx++)
          scatter_tap(p, cols + ((c * p->kernel_h + ky) * p->kernel_w + kx) * pixels, iy0, iy1, ky, kx, oy0, oy1,
                      y + c * out_plane - (size_t)oy0 * p->out_w);
  }
  if (p->act.type != SL_ACT_NONE)
    for (size_t c = 0; c < count; c++) p->vunary->fn.vunary(&p->act, y + c * out_plane, y + c * out_plane, band_len);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const convt_params_t* p = n->params;
  job_t j = {m, n, p, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, (size_t)p->batch * p->groups * p->blocks * p->bands, band_task, &j);
}

/* A new batch (sl_expect_batch_only): tasks are per image, over what prepare planned. */
static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  convt_params_t* p = n->params;
  uint32_t batch = (uint32_t)sl_in(m, n, 0)->shape[0];
  n->flops = n->flops / p->batch * batch;
  n->dense_flops = n->dense_flops / p->batch * batch;
  p->batch = batch;
  return SL_OK;
}

const sl_op_def_t sl_op_conv_transpose2d = {SL_OP_SCHEMA(CONV_TRANSPOSE2D), 2, 3, prepare, run, resize};
