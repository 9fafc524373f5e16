/* RESIZE_BILINEAR (NCHW) to the output's height and width, sampling as TFLite does: source
 * coordinate y * scale (or (y + 0.5) * scale - 0.5 with half-pixel centers), scale in / out (or
 * (in - 1) / (out - 1) with aligned corners), neighbours clamped to the input. */
#include <math.h>

#include "op.h"

typedef struct {
  size_t planes; /* N * C */
  int32_t in_h, in_w, out_h, out_w;
  int32_t* lo; /* per output row then column: the lower source index, upper, and its weight */
  int32_t* hi;
  float* frac;
} resize_params_t;

static void axis(int32_t out, int32_t in, bool align, bool half, int32_t* lo, int32_t* hi, float* frac) {
  float scale = (align && out > 1) ? (float)(in - 1) / (float)(out - 1) : (float)in / (float)out;
  for (int32_t o = 0; o < out; o++) {
    float src = half ? ((float)o + 0.5f) * scale - 0.5f : (float)o * scale;
    /* Clamped before converting: near 2^31 a float source coordinate can round past INT32_MAX. */
    double fl = floorf(src), up = ceilf(src), last = in - 1;
    lo[o] = fl < 0.0 ? 0 : fl > last ? in - 1 : (int32_t)fl;
    hi[o] = up < 0.0 ? 0 : up > last ? in - 1 : (int32_t)up;
    frac[o] = src - (float)lo[o];
  }
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  resize_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  bool align = sl_resize_bilinear_options_align_corners(fb, &n->options);
  bool half = sl_resize_bilinear_options_half_pixel_centers(fb, &n->options);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 4);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", 4);
  if (st != SL_OK) return st;
  if (x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
    return sl_node_fail(m, n, "input and output differ in batch or channels");
  p->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  p->in_h = x->shape[2];
  p->in_w = x->shape[3];
  p->out_h = y->shape[2];
  p->out_w = y->shape[3];
  size_t bytes; /* one 4-byte entry (int32 or float) per output row and column: up to 2^33 */
  if (!sl_size_mul((size_t)p->out_h + (size_t)p->out_w, sizeof(float), &bytes))
    return sl_node_fail(m, n, "sampling tables for %d x %d outputs do not fit in memory", p->out_h, p->out_w);
  p->lo = sl_model_alloc(m, bytes);
  p->hi = sl_model_alloc(m, bytes);
  p->frac = sl_model_alloc(m, bytes);
  if (p->lo == NULL || p->hi == NULL || p->frac == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc said why */
  axis(p->out_h, p->in_h, align, half, p->lo, p->hi, p->frac);
  axis(p->out_w, p->in_w, align, half, p->lo + p->out_h, p->hi + p->out_h, p->frac + p->out_h);
  return SL_OK;
}

typedef struct {
  const resize_params_t* p;
  const float* x;
  float* y;
} job_t;

static void plane_task(void* ctx, size_t plane, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const resize_params_t* p = j->p;
  const float* x = j->x + plane * (size_t)p->in_h * (size_t)p->in_w;
  float* y = j->y + plane * (size_t)p->out_h * (size_t)p->out_w;
  const int32_t *xl = p->lo + p->out_h, *xh = p->hi + p->out_h;
  const float* xf = p->frac + p->out_h;
  for (int32_t oy = 0; oy < p->out_h; oy++) {
    const float* top = x + (size_t)p->lo[oy] * (size_t)p->in_w;
    const float* bottom = x + (size_t)p->hi[oy] * (size_t)p->in_w;
    float dy = p->frac[oy];
    for (int32_t ox = 0; ox < p->out_w; ox++) {
      float dx = xf[ox];
      float t = top[xl[ox]] * (1.0f - dx) + top[xh[ox]] * dx;
      float b = bottom[xl[ox]] * (1.0f - dx) + bottom[xh[ox]] * dx;
      y[(size_t)oy * (size_t)p->out_w + (size_t)ox] = t * (1.0f - dy) + b * dy;
    }
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  job_t j = {n->params, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, j.p->planes, plane_task, &j);
}

const sl_op_def_t sl_op_resize_bilinear = {SL_OP_SCHEMA(RESIZE_BILINEAR), 1, 1, prepare, run, NULL};
