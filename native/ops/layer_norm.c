/* LAYER_NORM over the last dimension: y = (x - mean) / sqrt(var + eps) * gamma + beta,
 * gamma and beta optional constants of that size. Rows run in parallel on the layernorm kernel.
 * With axis 1 it normalizes the channels of a channel-major tensor [N][C][pixels...] at each
 * pixel (ConvNeXt's blocks, kept channel-major by the converter so their 1x1 layers need no
 * transposes): pixel blocks in parallel, each summing its C rows along the pixels. */
#include <math.h>

#include "op.h"

typedef struct {
  float epsilon;
  bool channels;      /* axis 1: cols channels, rows images of `pixels` each */
  size_t rows, cols, pixels;
  const float *gamma, *beta;
  const sl_ukernel_t* k; /* layernorm */
} layer_norm_params_t;

static sl_status_t expect_vector(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                                 int32_t size) {
  if (t == NULL) return SL_OK;
  sl_status_t st = sl_expect_f32(m, n, t, what, 1);
  if (st == SL_OK && !t->is_const) st = sl_node_fail(m, n, "%s must be constant", what);
  if (st == SL_OK) st = sl_expect_shape(m, n, t, what, 1, &size);
  return st;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  layer_norm_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  p->epsilon = sl_layer_norm_options_epsilon(fb, &n->options);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_tensor_t *gamma = n->num_inputs > 1 ? sl_in(m, n, 1) : NULL, *beta = n->num_inputs > 2 ? sl_in(m, n, 2) : NULL;
  sl_status_t st = sl_expect_f32(m, n, x, "input", -1);
  if (st == SL_OK && x->rank < 1) st = sl_node_fail(m, n, "input must have rank >= 1");
  if (st == SL_OK && !(p->epsilon > 0.0f)) st = sl_node_fail(m, n, "epsilon must be positive");
  if (st != SL_OK) return st;
  int32_t axis = sl_layer_norm_options_axis(fb, &n->options);
  if (axis != -1 && axis != 1 && axis != (int32_t)x->rank - 1)
    return sl_node_fail(m, n, "axis %d is not supported: normalize the last axis (-1) or the channels (1)", axis);
  if (axis == 1 && x->rank < 2) return sl_node_fail(m, n, "axis 1 needs an input of rank >= 2, not %u", x->rank);
  p->channels = axis == 1 && x->rank > 2;
  int32_t cols = x->shape[p->channels ? 1 : x->rank - 1];
  if ((st = expect_vector(m, n, gamma, "gamma", cols)) != SL_OK) return st;
  if ((st = expect_vector(m, n, beta, "beta", cols)) != SL_OK) return st;
  if ((st = sl_expect_f32(m, n, y, "output", -1)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", x->rank, x->shape)) != SL_OK) return st;
  p->cols = (size_t)cols;
  p->rows = cols > 0 ? x->num_elems / (size_t)cols : 0;
  p->pixels = 1;
  if (p->channels) {
    p->pixels = x->shape[0] > 0 ? p->rows / (size_t)x->shape[0] : 0; /* batch 0: no pixels, nothing to run */
    p->rows = (size_t)x->shape[0];
  }
  p->gamma = sl_const_f32(gamma);
  p->beta = sl_const_f32(beta);
  p->k = sl_op_kernel(m, SL_FAMILY_layernorm, 0);
  n->kernel = p->channels ? NULL : p->k->name; /* channels: plain C loops the compiler vectorizes */
  return SL_OK;
}

typedef struct {
  const layer_norm_params_t* p;
  const float* x;
  float* y;
} job_t;

enum { ROWS_PER_TASK = 16, PIXELS_PER_TASK = 256 };

static void rows_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const layer_norm_params_t* p = j->p;
  size_t end = (task + 1) * ROWS_PER_TASK < p->rows ? (task + 1) * ROWS_PER_TASK : p->rows;
  for (size_t r = task * ROWS_PER_TASK; r < end; r++)
    p->k->fn.layernorm(j->x + r * p->cols, p->cols, p->epsilon, p->gamma, p->beta, j->y + r * p->cols);
}

/* Pixels [p0, p1) of one image: the mean, then the variance about it (two passes, as the row
 * kernel), each summed channel by channel along the pixels so the loops vectorize. */
static void pixels_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const layer_norm_params_t* p = j->p;
  size_t blocks = (p->pixels + PIXELS_PER_TASK - 1) / PIXELS_PER_TASK, image = task / blocks;
  size_t p0 = task % blocks * PIXELS_PER_TASK, count = p->pixels - p0 < PIXELS_PER_TASK ? p->pixels - p0 : PIXELS_PER_TASK;
  const float* x = j->x + image * p->cols * p->pixels + p0;
  float* y = j->y + image * p->cols * p->pixels + p0;
  float mean[PIXELS_PER_TASK], scale[PIXELS_PER_TASK];
  for (size_t i = 0; i < count; i++) mean[i] = scale[i] = 0.0f;
  for (size_t c = 0; c < p->cols; c++)
    for (size_t i = 0; i < count; i++) mean[i] += x[c * p->pixels + i];
  const float inv_cols = 1.0f / (float)p->cols;
  for (size_t i = 0; i < count; i++) mean[i] *= inv_cols;
  for (size_t c = 0; c < p->cols; c++)
    for (size_t i = 0; i < count; i++) {
      float d = x[c * p->pixels + i] - mean[i];
      scale[i] += d * d;
    }
  for (size_t i = 0; i < count; i++) scale[i] = 1.0f / sqrtf(scale[i] * inv_cols + p->epsilon);
  for (size_t c = 0; c < p->cols; c++) {
    float g = p->gamma != NULL ? p->gamma[c] : 1.0f, b = p->beta != NULL ? p->beta[c] : 0.0f;
    for (size_t i = 0; i < count; i++) y[c * p->pixels + i] = (x[c * p->pixels + i] - mean[i]) * scale[i] * g + b;
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const layer_norm_params_t* p = n->params;
  job_t j = {p, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  if (p->channels)
    sl_parallel_for(m, p->rows * ((p->pixels + PIXELS_PER_TASK - 1) / PIXELS_PER_TASK), pixels_task, &j);
  else
    sl_parallel_for(m, (p->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, rows_task, &j);
}

const sl_op_def_t sl_op_layer_norm = {SL_OP_SCHEMA(LAYER_NORM), 1, 3, prepare, run, prepare};
