/* GATHER along axis 0: y[i..., :] = table[indices[i...], :], the table of any dtype. Indices are
 * int32 or int64; an index outside the table (a bad token id) yields a zero row instead of reading
 * out of bounds. */
#include <string.h>

#include "op.h"

typedef struct {
  size_t rows, row_bytes, count;
  bool wide; /* int64 indices */
} gather_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  gather_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *table = sl_in(m, n, 0), *idx = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  if (table->sparse != NULL)
    return sl_node_fail(m, n, "table (%s) is group-sparse, which only weights may be",
                        table->name);
  if (table->rank < 1) return sl_node_fail(m, n, "table must have rank >= 1");
  if (idx->dtype != SL_DTYPE_INT32 && idx->dtype != SL_DTYPE_INT64)
    return sl_node_fail(m, n, "indices (%s) must be int32 or int64", idx->name);
  if (idx->rank + table->rank - 1 > SL_MAX_RANK) return sl_node_fail(m, n, "output rank exceeds %d", SL_MAX_RANK);
  int32_t yshape[SL_MAX_RANK];
  for (int32_t d = 0; d < idx->rank; d++) yshape[d] = idx->shape[d];
  for (int32_t d = 1; d < table->rank; d++) yshape[idx->rank + d - 1] = table->shape[d];
  int32_t rank = idx->rank + table->rank - 1;
  if (y->dtype != table->dtype)
    return sl_node_fail(m, n, "output (%s) is %s, the table %s", y->name, sl_dtype_name(y->dtype),
                        sl_dtype_name(table->dtype));
  sl_status_t st = sl_expect_shape(m, n, y, "output", rank, yshape);
  if (st != SL_OK) return st;
  p->rows = (size_t)table->shape[0];
  p->row_bytes = table->num_bytes / p->rows; /* rows >= 1: every dimension is */
  p->count = idx->num_elems;
  p->wide = idx->dtype == SL_DTYPE_INT64;
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const gather_params_t* p = n->params;
  const char* table = sl_in(m, n, 0)->data;
  const void* idx = sl_in(m, n, 1)->data;
  char* y = sl_out(m, n, 0)->data;
  for (size_t i = 0; i < p->count; i++) {
    int64_t row = p->wide ? ((const int64_t*)idx)[i] : ((const int32_t*)idx)[i];
    char* out = y + i * p->row_bytes;
    if (row < 0 || (uint64_t)row >= p->rows)
      memset(out, 0, p->row_bytes);
    else
      memcpy(out, table + (size_t)row * p->row_bytes, p->row_bytes);
  }
}

const sl_op_def_t sl_op_gather = {SL_OP_SCHEMA(GATHER), 2, 2, prepare, run, prepare};
