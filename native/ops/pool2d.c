/* MAX_POOL2D, AVG_POOL2D (NCHW, PyTorch padding/ceil-mode semantics) and GLOBAL_AVG_POOL. */
#include <math.h>

#include "op.h"

typedef struct {
  size_t planes;
  int64_t ih, iw, oh, ow, kh, kw, sh, sw, pt, pl, pb, pr; /* 64-bit: ih + pads and oh * sh pass 2^31 */
  bool include_pad;
} pool_params_t;

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
  if (st != SL_OK) return st;
  if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->kh > 65536 || p->kw > 65536 ||
      p->sh > 65536 || p->sw > 65536)
    return sl_node_fail(m, n, "kernel and stride must be 1..65536");
  if (p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0 || p->pt >= p->kh || p->pb >= p->kh ||
      p->pl >= p->kw || p->pr >= p->kw)
    return sl_node_fail(m, n, "paddings must be non-negative and smaller than the kernel");
  p->ih = x->shape[2];
  p->iw = x->shape[3];
  if (p->ih + p->pt + p->pb < p->kh || p->iw + p->pl + p->pr < p->kw)
    return sl_node_fail(m, n, "the %dx%d window is larger than the padded input", (int)p->kh, (int)p->kw);
  p->oh = y->shape[2];
  p->ow = y->shape[3];
  /* The stored size picks floor or ceil mode; a window must start inside the padded input. */
  int64_t fh = (p->ih + p->pt + p->pb - p->kh) / p->sh + 1, fw = (p->iw + p->pl + p->pr - p->kw) / p->sw + 1;
  bool ok_h = p->oh == fh || (p->oh == fh + 1 && (p->oh - 1) * p->sh < p->ih + p->pt);
  bool ok_w = p->ow == fw || (p->ow == fw + 1 && (p->ow - 1) * p->sw < p->iw + p->pl);
  if (fh > INT32_MAX || fw > INT32_MAX)
    return sl_node_fail(m, n, "the output would be %lldx%lld, over 2^31 - 1 per axis", (long long)fh, (long long)fw);
  int32_t yshape[4] = {x->shape[0], x->shape[1], (int32_t)(ok_h ? p->oh : fh), (int32_t)(ok_w ? p->ow : fw)};
  if ((st = sl_expect_shape(m, n, y, "output", 4, yshape)) != SL_OK) return st;
  p->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  return SL_OK;
}

static void run_pool(const sl_model_t* m, const sl_node_t* n, bool max) {
  const pool_params_t* p = n->params;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  for (size_t c = 0; c < p->planes; c++) {
    const float* xc = x + c * (size_t)(p->ih * p->iw);
    for (int64_t oy = 0; oy < p->oh; oy++) {
      for (int64_t ox = 0; ox < p->ow; ox++) {
        int64_t y0 = oy * p->sh - p->pt, x0 = ox * p->sw - p->pl;
        int64_t y1 = y0 + p->kh, x1 = x0 + p->kw;
        /* Padded-window size for count_include_pad, clipped to the padded extent (up to 2^32). */
        int64_t py1 = y1 < p->ih + p->pb ? y1 : p->ih + p->pb, px1 = x1 < p->iw + p->pr ? x1 : p->iw + p->pr;
        int64_t pool_size = (py1 - y0) * (px1 - x0);
        if (y0 < 0) y0 = 0;
        if (x0 < 0) x0 = 0;
        if (y1 > p->ih) y1 = p->ih;
        if (x1 > p->iw) x1 = p->iw;
        float acc = max ? -INFINITY : 0.0f;
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) {
            float v = xc[iy * p->iw + ix];
            acc = max ? (v > acc || v != v ? v : acc) : acc + v; /* a NaN in the window wins, as in torch */
          }
        int64_t count = p->include_pad ? pool_size : (y1 - y0) * (x1 - x0);
        y[(c * (size_t)p->oh + (size_t)oy) * (size_t)p->ow + (size_t)ox] =
            max ? acc : (count > 0 ? acc / (float)count : 0.0f);
      }
    }
  }
}

static void run_max(const sl_model_t* m, const sl_node_t* n) { run_pool(m, n, true); }
static void run_avg(const sl_model_t* m, const sl_node_t* n) { run_pool(m, n, false); }

static sl_status_t prepare_global(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 4);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", -1);
  if (st != SL_OK) return st;
  int32_t keep[4] = {x->shape[0], x->shape[1], 1, 1};
  if (y->rank == 2) return sl_expect_shape(m, n, y, "output", 2, keep);
  return sl_expect_shape(m, n, y, "output", 4, keep);
}

static void run_global(const sl_model_t* m, const sl_node_t* n) {
  const sl_tensor_t* x = sl_in(m, n, 0);
  size_t planes = (size_t)x->shape[0] * x->shape[1], hw = (size_t)x->shape[2] * x->shape[3];
  const float* xd = x->data;
  float* y = sl_out(m, n, 0)->data;
  for (size_t c = 0; c < planes; c++) {
    float acc = 0.0f;
    for (size_t i = 0; i < hw; i++) acc += xd[c * hw + i];
    y[c] = acc / (float)hw;
  }
}

const sl_op_def_t sl_op_max_pool2d = {SL_OP_SCHEMA(MAX_POOL2D), 1, 1, prepare, run_max, NULL};
const sl_op_def_t sl_op_avg_pool2d = {SL_OP_SCHEMA(AVG_POOL2D), 1, 1, prepare, run_avg, NULL};
const sl_op_def_t sl_op_global_avg_pool = {SL_OP_SCHEMA(GLOBAL_AVG_POOL), 1, 1, prepare_global, run_global, NULL};
