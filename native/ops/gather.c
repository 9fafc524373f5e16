/* GATHER along axis 0: y[i..., :] = table[indices[i...], :]. Indices are int32 or int64; an
 * index outside the table (a bad token id) yields a zero row instead of reading out of bounds. */
#include <string.h>

#include "op.h"

typedef struct {
  size_t rows, row_size, count;
  bool wide; /* int64 indices */
} gather_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  gather_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *table = sl_in(m, n, 0), *idx = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, table, "table", -1);
  if (st != SL_OK) return st;
  if (table->rank < 1) return sl_node_fail(m, n, "table must have rank >= 1");
  if (idx->dtype != SL_DTYPE_INT32 && idx->dtype != SL_DTYPE_INT64)
    return sl_node_fail(m, n, "indices (%s) must be int32 or int64", idx->name);
  if (idx->rank + table->rank - 1 > SL_MAX_RANK) return sl_node_fail(m, n, "output rank exceeds %d", SL_MAX_RANK);
  int32_t yshape[SL_MAX_RANK];
  for (int32_t d = 0; d < idx->rank; d++) yshape[d] = idx->shape[d];
  for (int32_t d = 1; d < table->rank; d++) yshape[idx->rank + d - 1] = table->shape[d];
  int32_t rank = idx->rank + table->rank - 1;
  if ((st = sl_expect_f32(m, n, y, "output", rank)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", rank, yshape)) != SL_OK) return st;
  p->rows = (size_t)table->shape[0];
  p->row_size = p->rows > 0 ? table->num_elems / p->rows : 0;
  p->count = idx->num_elems;
  p->wide = idx->dtype == SL_DTYPE_INT64;
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const gather_params_t* p = n->params;
  const float* table = sl_in(m, n, 0)->data;
  const void* idx = sl_in(m, n, 1)->data;
  float* y = sl_out(m, n, 0)->data;
  for (size_t i = 0; i < p->count; i++) {
    int64_t row = p->wide ? ((const int64_t*)idx)[i] : ((const int32_t*)idx)[i];
    float* out = y + i * p->row_size;
    if (row < 0 || (uint64_t)row >= p->rows)
      memset(out, 0, p->row_size * sizeof(float));
    else
      memcpy(out, table + (size_t)row * p->row_size, p->row_size * sizeof(float));
  }
}

const sl_op_def_t sl_op_gather = {SL_OP_SCHEMA(GATHER), 2, 2, prepare, run, prepare};
