/* TRANSPOSE: output dimension d is input dimension perm[d]. */
#include <string.h>

#include "op.h"

typedef struct {
  int32_t rank;
  int32_t out_shape[SL_MAX_RANK];
  size_t in_stride[SL_MAX_RANK]; /* input stride of each output dimension */
  size_t run;                    /* > 1: the last dimension stays last, copied as runs of this length */
} transpose_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  transpose_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", -1);
  if (st != SL_OK) return st;
  sl_fb_vec_t perm = sl_transpose_options_perm(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (perm.len != (uint32_t)x->rank)
    return sl_node_fail(m, n, "perm has %u entries for an input of rank %d", perm.len, x->rank);
  size_t stride[SL_MAX_RANK], s = 1;
  for (int32_t d = x->rank - 1; d >= 0; d--) {
    stride[d] = s;
    s *= (size_t)x->shape[d];
  }
  bool seen[SL_MAX_RANK] = {false};
  p->rank = x->rank;
  for (int32_t d = 0; d < x->rank; d++) {
    int32_t from = sl_fb_vec_i32(fb, perm, (uint32_t)d);
    if (from < 0 || from >= x->rank || seen[from])
      return sl_node_fail(m, n, "perm is not a permutation of 0..%d", x->rank - 1);
    seen[from] = true;
    p->out_shape[d] = x->shape[from];
    p->in_stride[d] = stride[from];
  }
  if ((st = sl_expect_f32(m, n, y, "output", x->rank)) != SL_OK) return st;
  p->run = x->rank > 1 && p->in_stride[x->rank - 1] == 1 ? (size_t)x->shape[x->rank - 1] : 1;
  return sl_expect_shape(m, n, y, "output", x->rank, p->out_shape);
}

typedef struct {
  const transpose_params_t* p;
  const float* x;
  float* y;
  size_t units, per_task; /* output elements, or D-long runs when the last dimension stays */
} job_t;

static void chunk_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const transpose_params_t* p = j->p;
  size_t u0 = task * j->per_task, u1 = u0 + j->per_task < j->units ? u0 + j->per_task : j->units;
  /* Heads ([B,T,H,D] <-> [B,H,T,D]) keep D last: copy D-long runs, stepping the outer dimensions. */
  int32_t last = p->run > 1 ? p->rank - 2 : p->rank - 1;
  int32_t idx[SL_MAX_RANK] = {0};
  size_t in = 0, rest = u0;
  for (int32_t d = last; d >= 0; d--) {
    idx[d] = (int32_t)(rest % (size_t)p->out_shape[d]);
    rest /= (size_t)p->out_shape[d];
    in += (size_t)idx[d] * p->in_stride[d];
  }
  for (size_t u = u0; u < u1; u++) {
    if (p->run > 1)
      memcpy(j->y + u * p->run, j->x + in, p->run * sizeof(float));
    else
      j->y[u] = j->x[in];
    /* Odometer over output indices, keeping the input offset in step. */
    for (int32_t d = last; d >= 0; d--) {
      in += p->in_stride[d];
      if (++idx[d] < p->out_shape[d]) break;
      in -= p->in_stride[d] * (size_t)p->out_shape[d];
      idx[d] = 0;
    }
  }
}

enum { CHUNK = 16384 }; /* elements per task */

static void run(const sl_model_t* m, const sl_node_t* n) {
  const transpose_params_t* p = n->params;
  const sl_tensor_t* yt = sl_out(m, n, 0);
  job_t j = {p, sl_in(m, n, 0)->data, yt->data, yt->num_elems / p->run, CHUNK / p->run};
  if (j.per_task == 0) j.per_task = 1;
  sl_parallel_for(m, (j.units + j.per_task - 1) / j.per_task, chunk_task, &j);
}

const sl_op_def_t sl_op_transpose = {SL_OP_SCHEMA(TRANSPOSE), 1, 1, prepare, run, prepare};
