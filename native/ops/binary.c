/* ADD and MUL with numpy broadcasting and a fused activation. */
#include "../runtime/internal.h"

typedef struct {
  sl_activation_t act;
  int32_t rank;
  int32_t shape[SL_MAX_RANK];
  size_t a_stride[SL_MAX_RANK], b_stride[SL_MAX_RANK]; /* 0 along broadcast dims */
  size_t count;
  bool same_shape;
} binary_params_t;

static void broadcast_strides(const sl_tensor_t* t, int32_t rank, size_t* stride) {
  size_t s = 1;
  for (int32_t d = rank - 1; d >= 0; d--) {
    int32_t td = d - (rank - t->rank);
    int32_t dim = td >= 0 ? t->shape[td] : 1;
    stride[d] = dim == 1 ? 0 : s;
    s *= (size_t)dim;
  }
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  binary_params_t* p = sl_model_alloc(m, sizeof(*p));
  if (p == NULL) return sl_fail(m, SL_ERROR_OUT_OF_MEMORY, "out of memory");
  n->params = p;
  sl_status_t st = sl_parse_activation(m, n, fb, 0, &p->act);
  sl_tensor_t *a = sl_in(m, n, 0), *b = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  if (st == SL_OK) st = sl_expect_f32(m, n, a, "first input", -1);
  if (st == SL_OK) st = sl_expect_f32(m, n, b, "second input", -1);
  if (st != SL_OK) return st;
  p->rank = a->rank > b->rank ? a->rank : b->rank;
  for (int32_t d = 0; d < p->rank; d++) {
    int32_t ad = d - (p->rank - a->rank), bd = d - (p->rank - b->rank);
    int32_t da = ad >= 0 ? a->shape[ad] : 1, db = bd >= 0 ? b->shape[bd] : 1;
    if (da != db && da != 1 && db != 1)
      return sl_node_fail(m, n, "inputs %s and %s do not broadcast along dimension %d (%d vs %d)",
                          a->name, b->name, d, da, db);
    p->shape[d] = da > db ? da : db;
  }
  if ((st = sl_expect_f32(m, n, y, "output", -1)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", p->rank, p->shape)) != SL_OK) return st;
  broadcast_strides(a, p->rank, p->a_stride);
  broadcast_strides(b, p->rank, p->b_stride);
  p->count = y->num_elems;
  p->same_shape = a->num_elems == p->count && b->num_elems == p->count;
  return SL_OK;
}

typedef struct {
  const binary_params_t* p;
  const float *a, *b;
  float* y;
  bool mul;
} job_t;

enum { CHUNK = 16384 };

/* Same shapes (residual adds): plain loops the compiler vectorizes, in chunks across threads. */
static void same_shape_chunk(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  size_t i0 = task * CHUNK, n = j->p->count - i0 < CHUNK ? j->p->count - i0 : CHUNK;
  const float *a = j->a + i0, *b = j->b + i0;
  float* y = j->y + i0;
  if (j->mul) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] * b[i];
  } else {
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  }
  if (j->p->act.type != SL_ACT_NONE) sl_f32_activation_ref(&j->p->act, y, y, n);
}

static void run_op(const sl_model_t* m, const sl_node_t* n, bool mul) {
  const binary_params_t* p = n->params;
  const float* a = sl_in(m, n, 0)->data;
  const float* b = sl_in(m, n, 1)->data;
  float* y = sl_out(m, n, 0)->data;
  if (p->same_shape) {
    job_t j = {p, a, b, y, mul};
    sl_parallel_for(m, (p->count + CHUNK - 1) / CHUNK, same_shape_chunk, &j);
    return;
  }
  int32_t idx[SL_MAX_RANK] = {0};
  size_t ai = 0, bi = 0;
  for (size_t i = 0; i < p->count; i++) {
    y[i] = sl_activation_scalar(&p->act, mul ? a[ai] * b[bi] : a[ai] + b[bi]);
    /* Advance the multi-index like an odometer, keeping both input offsets in step. */
    for (int32_t d = p->rank - 1; d >= 0; d--) {
      ai += p->a_stride[d];
      bi += p->b_stride[d];
      if (++idx[d] < p->shape[d]) break;
      ai -= p->a_stride[d] * (size_t)p->shape[d];
      bi -= p->b_stride[d] * (size_t)p->shape[d];
      idx[d] = 0;
    }
  }
}

static void run_add(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, false); }
static void run_mul(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, true); }

const sl_op_def_t sl_op_add = {"ADD", 2, 2, prepare, run_add};
const sl_op_def_t sl_op_mul = {"MUL", 2, 2, prepare, run_mul};
