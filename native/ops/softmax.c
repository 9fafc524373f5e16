/* SOFTMAX along one axis, max-subtracted for stability: y = softmax(scale * x + mask). The
 * optional mask (additive, numpy-broadcast to x, attention's [B,1,1,T]) and scale exist so the
 * attention's scaling, masking and softmax are one pass over the scores; they require the last
 * axis. Rows of the last axis run in parallel on the softmax kernel; other axes in plain C. */
#include <math.h>

#include "op.h"

typedef struct {
  size_t outer, axis, inner;
  float scale;
  const sl_ukernel_t* k; /* softmax, for rows of the last axis */
  int32_t rank;                       /* of x; the mask's strides are over x's outer dimensions */
  size_t shape[SL_MAX_RANK];
  size_t mask_stride[SL_MAX_RANK];    /* 0 along broadcast dimensions */
} softmax_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  softmax_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t axis = sl_softmax_options_axis(fb, &n->options);
  p->scale = sl_softmax_options_scale(fb, &n->options);
  sl_tensor_t *x = sl_in(m, n, 0), *mask = n->num_inputs > 1 ? sl_in(m, n, 1) : NULL, *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", -1);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", -1);
  if (st == SL_OK) st = sl_expect_shape(m, n, y, "output", x->rank, x->shape);
  if (st != SL_OK) return st;
  if (axis < 0) axis += x->rank;
  if (axis < 0 || axis >= x->rank) return sl_node_fail(m, n, "axis is out of range for rank %d", x->rank);
  p->outer = p->inner = 1;
  for (int32_t d = 0; d < axis; d++) p->outer *= (size_t)x->shape[d];
  for (int32_t d = axis + 1; d < x->rank; d++) p->inner *= (size_t)x->shape[d];
  p->axis = (size_t)x->shape[axis];
  p->k = sl_op_kernel(m, SL_FAMILY_softmax, 0);
  if (axis == x->rank - 1) n->kernel = p->k->name;
  if (mask == NULL && p->scale == 1.0f) return SL_OK;
  if (axis != x->rank - 1) return sl_node_fail(m, n, "a mask or scale needs the last axis");
  if (mask == NULL) return SL_OK;
  if ((st = sl_expect_f32(m, n, mask, "mask", -1)) != SL_OK) return st;
  if (mask->rank < 1 || mask->rank > x->rank || mask->shape[mask->rank - 1] != x->shape[x->rank - 1])
    return sl_node_fail(m, n, "mask (%s) must end in the softmax axis and broadcast to the input", mask->name);
  p->rank = x->rank;
  for (int32_t d = 0; d < x->rank - 1; d++) {
    int32_t md = d - (x->rank - mask->rank);
    if (md >= 0 && mask->shape[md] != 1 && mask->shape[md] != x->shape[d])
      return sl_node_fail(m, n, "mask (%s) does not broadcast to the input along dimension %d", mask->name, d);
    p->shape[d] = (size_t)x->shape[d];
  }
  sl_broadcast_strides(mask, x->rank, p->mask_stride);
  return SL_OK;
}

typedef struct {
  const softmax_params_t* p;
  const float *x, *mask;
  float* y;
} job_t;

enum { ROWS_PER_TASK = 64 };

/* The mask row under row r of x: r's multi-index over the outer dimensions times the strides. */
static const float* mask_row(const softmax_params_t* p, const float* mask, size_t r) {
  size_t offset = 0;
  for (int32_t d = p->rank - 2; d >= 0; d--) {
    offset += (r % p->shape[d]) * p->mask_stride[d];
    r /= p->shape[d];
  }
  return mask + offset;
}

static void rows_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const softmax_params_t* p = j->p;
  size_t len = p->axis, end = (task + 1) * ROWS_PER_TASK < p->outer ? (task + 1) * ROWS_PER_TASK : p->outer;
  for (size_t r = task * ROWS_PER_TASK; r < end; r++)
    p->k->fn.softmax(j->x + r * len, j->mask != NULL ? mask_row(p, j->mask, r) : NULL, p->scale, j->y + r * len, len);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const softmax_params_t* p = n->params;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  if (p->inner == 1) {
    const sl_tensor_t* mask = n->num_inputs > 1 ? sl_in(m, n, 1) : NULL; /* NULL also when absent (-1) */
    job_t j = {p, x, mask != NULL ? mask->data : NULL, y};
    sl_parallel_for(m, (p->outer + ROWS_PER_TASK - 1) / ROWS_PER_TASK, rows_task, &j);
    return;
  }
  for (size_t o = 0; o < p->outer; o++) {
    for (size_t i = 0; i < p->inner; i++) {
      size_t base = o * p->axis * p->inner + i;
      float mx = x[base];
      for (size_t a = 1; a < p->axis; a++) mx = fmaxf(mx, x[base + a * p->inner]);
      float sum = 0.0f;
      for (size_t a = 0; a < p->axis; a++) {
        float e = expf(x[base + a * p->inner] - mx);
        y[base + a * p->inner] = e;
        sum += e;
      }
      for (size_t a = 0; a < p->axis; a++) y[base + a * p->inner] /= sum;
    }
  }
}

const sl_op_def_t sl_op_softmax = {SL_OP_SCHEMA(SOFTMAX), 1, 2, prepare, run, prepare};
