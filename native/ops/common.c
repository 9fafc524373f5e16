/* Checks shared by the ops' prepare functions. */
#include <math.h>
#include <stdio.h>

#include "op.h"

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
  if (type >= SL_ACT_COUNT) return sl_node_fail(m, n, "unknown activation %u", type);
  if (type == SL_ACT_CLAMP && !(act->min <= act->max))
    return sl_node_fail(m, n, "clamp range [%g, %g] is empty", (double)act->min, (double)act->max);
  act->type = (sl_act_type_t)type;
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
