/* SOFTMAX along one axis, max-subtracted for stability; the last axis (attention) runs rows
 * in parallel with the vectorized exp. */
#include <math.h>

#include "../runtime/internal.h"

typedef struct {
  size_t outer, axis, inner;
} softmax_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  softmax_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t axis = sl_fb_i32(fb, &n->options, 0, -1);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
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
  return SL_OK;
}

typedef struct {
  const softmax_params_t* p;
  const float* x;
  float* y;
} job_t;

enum { ROWS_PER_TASK = 64 };

/* Softmax over contiguous rows (the last axis: attention scores), in parallel. */
static void rows_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  size_t len = j->p->axis, end = (task + 1) * ROWS_PER_TASK < j->p->outer ? (task + 1) * ROWS_PER_TASK : j->p->outer;
  for (size_t r = task * ROWS_PER_TASK; r < end; r++) {
    const float* x = j->x + r * len;
    float* y = j->y + r * len;
    float mx = sl_f32_max(x, len);
    float inv = 1.0f / sl_f32_exp_sum(x, mx, y, len);
    for (size_t a = 0; a < len; a++) y[a] *= inv;
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const softmax_params_t* p = n->params;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  if (p->inner == 1) {
    job_t j = {p, x, y};
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

const sl_op_def_t sl_op_softmax = {"SOFTMAX", 1, 1, prepare, run, prepare};
