/* CONCAT along one axis of same-rank inputs of one dtype (any). */
#include <string.h>

#include "op.h"

typedef struct {
  size_t outer; /* elements before the axis */
} concat_params_t;

/* Fails unless t is dense, of input 0's dtype and rank. */
static sl_status_t expect_like(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                               int32_t index, const sl_tensor_t* first) {
  if (t == NULL) return sl_node_fail(m, n, "%s %d is missing", what, index);
  if (t->sparse != NULL || t->dtype != first->dtype || t->rank != first->rank)
    return sl_node_fail(m, n, "%s %d (%s, %s of rank %d) must be dense %s of rank %d like input 0 (%s)", what, index,
                        t->name, sl_dtype_name(t->dtype), t->rank, sl_dtype_name(first->dtype), first->rank,
                        first->name);
  return SL_OK;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  concat_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t axis = sl_concat_options_axis(fb, &n->options);
  sl_tensor_t *first = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st;
  int32_t rank = first->rank;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return sl_node_fail(m, n, "axis is out of range for rank %d", rank);
  /* Summed in 64 bits: 65,536 inputs of 65,536 would wrap an int32 sum to a small output. */
  int64_t total = 0;
  for (int32_t i = 0; i < n->num_inputs; i++) {
    sl_tensor_t* t = sl_in(m, n, i);
    if ((st = expect_like(m, n, t, "input", i, first)) != SL_OK) return st;
    for (int32_t d = 0; d < rank; d++)
      if (d != axis && t->shape[d] != first->shape[d])
        return sl_node_fail(m, n, "input %d (%s) differs from input 0 in dimension %d", i, t->name, d);
    total += t->shape[axis];
    if (total > INT32_MAX)
      return sl_node_fail(m, n, "the inputs add up to more than %d along axis %d", INT32_MAX, axis);
  }
  int32_t shape[SL_MAX_RANK];
  memcpy(shape, first->shape, sizeof(shape));
  shape[axis] = (int32_t)total;
  if (y->dtype != first->dtype)
    return sl_node_fail(m, n, "output (%s) is %s, the inputs %s", y->name, sl_dtype_name(y->dtype),
                        sl_dtype_name(first->dtype));
  if ((st = sl_expect_shape(m, n, y, "output", rank, shape)) != SL_OK) return st;
  p->outer = 1;
  for (int32_t d = 0; d < axis; d++) p->outer *= (size_t)shape[d];
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const concat_params_t* p = n->params;
  char* y = sl_out(m, n, 0)->data;
  for (size_t o = 0; o < p->outer; o++) {
    for (int32_t i = 0; i < n->num_inputs; i++) {
      const sl_tensor_t* t = sl_in(m, n, i);
      size_t chunk = t->num_bytes / p->outer;
      memcpy(y, (const char*)t->data + o * chunk, chunk);
      y += chunk;
    }
  }
}

const sl_op_def_t sl_op_concat = {SL_OP_SCHEMA(CONCAT), 1, -1, prepare, run, prepare};
