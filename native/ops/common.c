/* Checks shared by the ops' prepare functions. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "op.h"

const char* sl_dtype_name(sl_dtype_t t) {
#define DTYPE_NAME(NAME, name, value) [value] = #name,
  static const char* const names[SL_SCHEMA_DTYPE_COUNT] = {SL_SCHEMA_DTYPE_LIST(DTYPE_NAME)};
#undef DTYPE_NAME
  return (unsigned)t < SL_SCHEMA_DTYPE_COUNT ? names[t] : "unknown";
}

sl_status_t sl_expect_f32(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                          int32_t rank) {
  if (t == NULL) return sl_node_fail(m, n, "%s is missing", what);
  if (t->dtype != SL_DTYPE_FLOAT32) return sl_node_fail(m, n, "%s (%s) must be float32", what, t->name);
  if (rank >= 0 && t->rank != rank)
    return sl_node_fail(m, n, "%s (%s) has rank %d, expected %d", what, t->name, t->rank, rank);
  if (t->sparse != NULL)
    return sl_node_fail(m, n, "%s (%s) is group-sparse, which only weights may be", what, t->name);
  return SL_OK;
}

sl_status_t sl_expect_weights(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, int32_t rank) {
  if (t == NULL) return sl_node_fail(m, n, "weights are missing");
  if (t->dtype != SL_DTYPE_FLOAT32 || t->rank != rank || !t->is_const)
    return sl_node_fail(m, n, "weights (%s) must be a constant float32 tensor of rank %d", t->name, rank);
  return SL_OK;
}

sl_status_t sl_expect_shape(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                            int32_t rank, const int32_t* shape) {
  bool same = t->rank == rank;
  for (int32_t d = 0; same && d < rank; d++) same = t->shape[d] == shape[d];
  if (same) return SL_OK;
  char want[128] = "", got[128] = "";
  size_t a = 0, b = 0;
  for (int32_t d = 0; d < rank && a < sizeof(want); d++)
    a += (size_t)snprintf(want + a, sizeof(want) - a, d ? ",%d" : "%d", shape[d]);
  for (int32_t d = 0; d < t->rank && b < sizeof(got); d++)
    b += (size_t)snprintf(got + b, sizeof(got) - b, d ? ",%d" : "%d", t->shape[d]);
  return sl_node_fail(m, n, "%s (%s) has shape [%s], expected [%s]", what, t->name, got, want);
}

sl_status_t sl_expect_transform_matrices(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                                         int32_t batch) {
  sl_status_t st = sl_expect_f32(m, n, t, what, 3);
  if (st != SL_OK) return st;
  int32_t shape[3] = {batch, 4, 4};
  return sl_expect_shape(m, n, t, what, 3, shape);
}

void sl_broadcast_strides(const sl_tensor_t* t, int32_t rank, size_t* stride) {
  size_t s = 1;
  for (int32_t d = rank - 1; d >= 0; d--) {
    int32_t td = d - (rank - t->rank);
    int32_t dim = td >= 0 ? t->shape[td] : 1;
    stride[d] = dim == 1 ? 0 : s;
    s *= (size_t)dim;
  }
}

sl_status_t sl_parse_activation(sl_model_t* m, const sl_node_t* n, uint8_t type, float min, float max,
                                sl_activation_t* act) {
  act->min = min;
  act->max = max;
  act->exponent = 1.0f;
  if (type >= SL_ACT_COUNT) return sl_node_fail(m, n, "unknown activation %u", type);
  if (type >= SL_ACT_NEG)
    return sl_node_fail(m, n, "activation %s cannot be fused into an op: it runs as an ACTIVATION op of its own",
                        sl_act_type_name(type));
  if (type == SL_ACT_CLAMP && !(act->min <= act->max))
    return sl_node_fail(m, n, "clamp range [%g, %g] is empty", (double)act->min, (double)act->max);
  act->type = (sl_act_type_t)type;
  return SL_OK;
}

sl_status_t sl_parse_unary(sl_model_t* m, const sl_node_t* n, uint8_t type, float min, float max, float exponent,
                           sl_activation_t* act) {
  bool elementwise = type >= SL_ACT_NEG && type < SL_ACT_COUNT;
  sl_status_t st = sl_parse_activation(m, n, elementwise ? SL_ACT_NONE : type, min, max, act);
  if (st != SL_OK || !elementwise) return st;
  if (type == SL_ACT_POW && !isfinite(exponent))
    return sl_node_fail(m, n, "POW's exponent %g must be finite", (double)exponent);
  act->type = (sl_act_type_t)type;
  act->exponent = exponent;
  return SL_OK;
}

void* sl_node_params(sl_model_t* m, sl_node_t* n, size_t size) {
  if (n->params == NULL) n->params = sl_model_alloc(m, size); /* which records why it failed */
  return n->params;
}

bool sl_gemm_pack_bytes(size_t rows, size_t k, uint32_t panel_rows, size_t* bytes) {
  size_t padded_rows, row_floats;
  return sl_size_add(rows, panel_rows - 1, &padded_rows) && sl_size_add(k, 1, &row_floats) &&
         sl_size_mul(padded_rows / panel_rows * panel_rows, row_floats, bytes) &&
         sl_size_mul(*bytes, sizeof(float), bytes);
}

static bool needs_pass(const sl_activation_t* act, sl_minmax_t* mm) {
  mm->min = -INFINITY;
  mm->max = INFINITY;
  switch (act->type) {
    case SL_ACT_NONE: return false;
    case SL_ACT_RELU: mm->min = 0.0f; return false;
    case SL_ACT_RELU6: mm->min = 0.0f; mm->max = 6.0f; return false;
    case SL_ACT_CLAMP: mm->min = act->min; mm->max = act->max; return false;
    default: return true;
  }
}

sl_activation_t sl_activation_split(const sl_activation_t* act, sl_minmax_t* mm) {
  sl_activation_t post = *act;
  if (!needs_pass(act, mm)) post.type = SL_ACT_NONE;
  return post;
}

void sl_epilogue_add_channels(sl_model_t* m, sl_epilogue_t* e, const sl_activation_t* act, size_t first,
                              size_t channels, size_t plane) {
  e->residual = true;
  e->post = sl_activation_split(act, &e->mm);
  e->clamp = (sl_activation_t){.type = SL_ACT_CLAMP, .min = e->mm.min, .max = e->mm.max};
  e->first = first;
  e->channels = channels;
  e->plane = plane;
  e->vbinary = sl_op_kernel(m, SL_FAMILY_vbinary, 0);
  e->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
}

void sl_epilogue_add(sl_model_t* m, sl_epilogue_t* e, const sl_activation_t* act) {
  sl_epilogue_add_channels(m, e, act, 0, SIZE_MAX, 0);
}

void sl_epilogue_prelu(sl_model_t* m, sl_epilogue_t* e, const float* slopes, bool per_channel) {
  e->slopes = slopes;
  e->slope_step = per_channel ? 1 : 0;
  e->vbinary = sl_op_kernel(m, SL_FAMILY_vbinary, 0);
}

void sl_epilogue_apply(const sl_epilogue_t* e, const float* src, float* y, const float* r, size_t at, size_t channel,
                       size_t n) {
  static const sl_minmax_t unclamped = {-INFINITY, INFINITY};
  y += at;
  const float* slope = e->slopes != NULL ? e->slopes + channel * e->slope_step : NULL;
  if (e->residual) {
    /* Channels outside the residual's add zero: only the activation applies. */
    if (channel - e->first < e->channels) { /* unsigned: also false below first */
      bool one_pass = e->post.type == SL_ACT_NONE; /* the sum and its PRELU together */
      e->vbinary->fn.vbinary(SL_BINARY_ADD, src, 1, r + at - e->first * e->plane, 1, y, n, &e->mm,
                             one_pass ? slope : NULL);
      if (one_pass) return;
    } else if (e->mm.min > -INFINITY || e->mm.max < INFINITY)
      e->vunary->fn.vunary(&e->clamp, src, y, n);
    else if (src != y)
      memcpy(y, src, n * sizeof(float));
    src = y;
    if (e->post.type != SL_ACT_NONE) e->vunary->fn.vunary(&e->post, y, y, n);
  }
  if (slope != NULL) e->vbinary->fn.vbinary(SL_BINARY_PRELU, src, 1, slope, 0, y, n, &unclamped, NULL);
}

sl_status_t sl_expect_window(sl_model_t* m, const sl_node_t* n, const char* what, int32_t lo, int count,
                             const int32_t* values) {
  for (int i = 0; i < count; i++)
    if (values[i] < lo || values[i] > SL_MAX_WINDOW)
      return sl_node_fail(m, n, "%s must be %d..%d (got %d)", what, lo, SL_MAX_WINDOW, values[i]);
  return SL_OK;
}

static sl_status_t batch_only(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t) {
  if (t == NULL) return SL_OK;
  for (int32_t d = 1; d < t->rank; d++)
    if (t->dynamic[d])
      return sl_node_unsupported(m, n, "supports a dynamic batch (axis 0) only, but %s varies along axis %d "
                                 "(re-convert with that axis fixed)", t->name, d);
  return SL_OK;
}

sl_status_t sl_expect_batch_only(sl_model_t* m, const sl_node_t* n) {
  sl_status_t st = SL_OK;
  for (int32_t i = 0; i < n->num_inputs && st == SL_OK; i++) st = batch_only(m, n, sl_in(m, n, i));
  for (int32_t i = 0; i < n->num_outputs && st == SL_OK; i++) st = batch_only(m, n, sl_out(m, n, i));
  return st;
}

sl_status_t sl_broadcast_plan(sl_model_t* m, const sl_node_t* n, int32_t count, sl_broadcast_t* b) {
  const sl_tensor_t* in[SL_BROADCAST_MAX_INPUTS];
  int32_t rank = 0;
  for (int32_t i = 0; i < count; i++) {
    in[i] = sl_in(m, n, i);
    if (in[i] == NULL) return sl_node_fail(m, n, "input %d is missing", i);
    if (in[i]->sparse != NULL)
      return sl_node_fail(m, n, "input %d (%s) is group-sparse, which only weights may be", i, in[i]->name);
    if (in[i]->rank > rank) rank = in[i]->rank;
  }
  int32_t shape[SL_MAX_RANK] = {0};
  for (int32_t d = 0; d < rank; d++) {
    int32_t size = 1, from = 0;
    for (int32_t i = 0; i < count; i++) {
      int32_t id = d - (rank - in[i]->rank), dim = id >= 0 ? in[i]->shape[id] : 1;
      if (dim == 1 || dim == size) continue;
      if (size != 1)
        return sl_node_fail(m, n, "inputs %s and %s do not broadcast along dimension %d (%d vs %d)", in[from]->name,
                            in[i]->name, d, size, dim);
      size = dim;
      from = i;
    }
    shape[d] = size;
  }
  const sl_tensor_t* y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_shape(m, n, y, "output", rank, shape);
  if (st != SL_OK) return st;
  size_t strides[SL_BROADCAST_MAX_INPUTS][SL_MAX_RANK];
  for (int32_t i = 0; i < count; i++) sl_broadcast_strides(in[i], rank, strides[i]);
  /* From the innermost dimension out, skipping size-1 ones: d joins the run inside it when one
   * step along d equals a whole pass of that run, in every input. Stored innermost first. */
  b->inputs = count;
  b->rank = 0;
  for (int32_t d = rank - 1; d >= 0; d--) {
    if (shape[d] == 1) continue;
    int32_t last = b->rank - 1;
    bool merges = last >= 0;
    for (int32_t i = 0; merges && i < count; i++) merges = strides[i][d] == b->stride[i][last] * b->shape[last];
    if (merges) {
      b->shape[last] *= (size_t)shape[d];
      continue;
    }
    b->shape[b->rank] = (size_t)shape[d];
    for (int32_t i = 0; i < count; i++) b->stride[i][b->rank] = strides[i][d];
    b->rank++;
  }
  if (b->rank == 0) { /* one element */
    b->shape[0] = 1;
    for (int32_t i = 0; i < count; i++) b->stride[i][0] = 0;
    b->rank = 1;
  }
  for (int32_t lo = 0, hi = b->rank - 1; lo < hi; lo++, hi--) { /* into outer-to-inner order */
    size_t t = b->shape[lo];
    b->shape[lo] = b->shape[hi];
    b->shape[hi] = t;
    for (int32_t i = 0; i < count; i++) {
      t = b->stride[i][lo];
      b->stride[i][lo] = b->stride[i][hi];
      b->stride[i][hi] = t;
    }
  }
  for (int32_t i = 0; i < count; i++) b->elem[i] = in[i]->num_bytes / in[i]->num_elems;
  b->out_elem = y->num_bytes / y->num_elems;
  b->row_len = b->shape[b->rank - 1];
  b->rows = y->num_elems / b->row_len;
  return SL_OK;
}

typedef struct {
  const sl_broadcast_t* b;
  const char* in[SL_BROADCAST_MAX_INPUTS];
  char* y;
  sl_broadcast_row_fn row;
  const void* ctx;
  size_t rows_per_task;
} broadcast_job_t;

static void broadcast_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const broadcast_job_t* j = ctx;
  const sl_broadcast_t* b = j->b;
  size_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task < b->rows ? r0 + j->rows_per_task : b->rows;
  int32_t inner = b->rank - 1, count = b->inputs;
  size_t idx[SL_MAX_RANK] = {0}, off[SL_BROADCAST_MAX_INPUTS] = {0}, step[SL_BROADCAST_MAX_INPUTS], rest = r0;
  for (int32_t d = inner - 1; d >= 0; d--) {
    idx[d] = rest % b->shape[d];
    rest /= b->shape[d];
    for (int32_t i = 0; i < count; i++) off[i] += idx[d] * b->stride[i][d];
  }
  for (int32_t i = 0; i < count; i++) step[i] = b->stride[i][inner];
  const void* row_in[SL_BROADCAST_MAX_INPUTS];
  for (size_t r = r0; r < r1; r++) {
    for (int32_t i = 0; i < count; i++) row_in[i] = j->in[i] + off[i] * b->elem[i];
    j->row(j->ctx, row_in, step, j->y + r * b->row_len * b->out_elem, b->row_len);
    /* Odometer over the outer dimensions, keeping every input's offset in step. */
    for (int32_t d = inner - 1; d >= 0; d--) {
      for (int32_t i = 0; i < count; i++) off[i] += b->stride[i][d];
      if (++idx[d] < b->shape[d]) break;
      for (int32_t i = 0; i < count; i++) off[i] -= b->stride[i][d] * b->shape[d];
      idx[d] = 0;
    }
  }
}

enum { BROADCAST_CHUNK = 16384 }; /* elements per task */

void sl_broadcast_run(const sl_model_t* m, const sl_node_t* n, const sl_broadcast_t* b, sl_broadcast_row_fn row,
                      const void* ctx) {
  size_t per_task = BROADCAST_CHUNK / b->row_len;
  broadcast_job_t j = {.b = b, .y = sl_out(m, n, 0)->data, .row = row, .ctx = ctx,
                       .rows_per_task = per_task ? per_task : 1};
  for (int32_t i = 0; i < b->inputs; i++) j.in[i] = sl_in(m, n, i)->data;
  sl_parallel_for(m, (b->rows + j.rows_per_task - 1) / j.rows_per_task, broadcast_task, &j);
}

sl_status_t sl_dense_weights(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* w, const float** dense) {
  *dense = w->data;
  if (w->sparse == NULL) return SL_OK;
  size_t bytes;
  if (!sl_size_mul(w->num_elems, sizeof(float), &bytes))
    return sl_node_fail(m, n, "%zu densified weights do not fit in memory", w->num_elems);
  float* values = sl_model_alloc(m, bytes);
  if (values == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc has said why */
  sl_group_sparse_densify(w->sparse, values);
  *dense = values;
  return SL_OK;
}

void sl_release_dense_weights(sl_model_t* m, const sl_tensor_t* w, const float* dense) {
  if (w->sparse != NULL) sl_model_release(m, (void*)dense);
}
