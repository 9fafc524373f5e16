/* GATHER_ELEMENTS (ONNX GatherElements, torch.gather): y[i][j][k] = x[index[i][j][k]][j][k] along
 * `axis`, for data of any dtype and int32 / int64 indices of the same rank; y has the index's
 * shape, each of whose other axes is at most the data's. A negative index counts from the end;
 * one outside [-n, n) yields a zero element (as GATHER's rows), so a bad index never reads out of
 * bounds. Run walks rows of the index's last axis, split over the threads. */
#include <string.h>

#include "op.h"

enum { TASK_WORK = 1 << 14 }; /* elements worth a task */

typedef struct {
  int32_t rank, axis;
  size_t elem;                        /* bytes per data element */
  bool wide;                          /* int64 indices */
  int64_t axis_len;                   /* the data's size along axis */
  size_t index_shape[SL_MAX_RANK];
  size_t data_stride[SL_MAX_RANK];    /* elements */
  size_t inner, rows;                 /* the index's last axis; the rows of it */
  size_t rows_per_task, tasks;
} gather_elements_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  gather_elements_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *idx = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  if (x == NULL || idx == NULL) return sl_node_fail(m, n, "needs the data and the indices");
  if (x->sparse != NULL || x->dtype != y->dtype)
    return sl_node_fail(m, n, "data (%s) and output (%s) must have one dense dtype", x->name, y->name);
  if (idx->dtype != SL_DTYPE_INT32 && idx->dtype != SL_DTYPE_INT64)
    return sl_node_fail(m, n, "indices (%s) are %s: they must be int32 or int64", idx->name,
                        sl_schema_dtype_name(idx->dtype));
  if (x->rank < 1 || idx->rank != x->rank)
    return sl_node_fail(m, n, "data (%s) of rank %d and indices (%s) of rank %d: they need one rank >= 1", x->name,
                        x->rank, idx->name, idx->rank);
  sl_status_t st = sl_expect_shape(m, n, y, "output", idx->rank, idx->shape);
  if (st != SL_OK) return st;
  int32_t axis = sl_gather_elements_options_axis(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (axis < -x->rank || axis >= x->rank)
    return sl_node_fail(m, n, "axis %d is out of range for rank %d", axis, x->rank);
  if (axis < 0) axis += x->rank;
  size_t stride = 1;
  for (int32_t d = x->rank - 1; d >= 0; d--) {
    if (d != axis && idx->shape[d] > x->shape[d])
      return sl_node_fail(m, n, "indices (%s) axis %d has %d entries, more than the data's %d", idx->name, d,
                          idx->shape[d], x->shape[d]);
    if (d != axis && x->dynamic[d] != 0 && idx->dynamic[d] != x->dynamic[d] && idx->shape[d] != 1)
      return sl_node_fail(m, n, "data (%s) axis %d follows a dynamic dimension the indices' does not", x->name, d);
    p->index_shape[d] = (size_t)idx->shape[d];
    p->data_stride[d] = stride;
    stride *= (size_t)x->shape[d];
  }
  p->rank = x->rank;
  p->axis = axis;
  p->elem = x->num_bytes / x->num_elems;
  p->wide = idx->dtype == SL_DTYPE_INT64;
  p->axis_len = x->shape[axis];
  p->inner = p->index_shape[p->rank - 1];
  p->rows = idx->num_elems / p->inner;
  p->rows_per_task = p->inner >= TASK_WORK ? 1 : TASK_WORK / p->inner;
  p->tasks = (p->rows + p->rows_per_task - 1) / p->rows_per_task;
  return SL_OK;
}

typedef struct {
  const gather_elements_params_t* p;
  const char* x;
  const void* idx;
  char* y;
} job_t;

/* One row: out[j] = x[base + j * j_step + k * k_step] for k = idx[j] (negative counting from n),
 * or zero when k lies outside [0, n). The element size is a constant, so each memcpy is one load
 * and store. */
#define DEFINE_ROW(name, ELEM, IDX)                                                                      \
  static void name(const char* x, const IDX* idx, char* out, size_t len, size_t base, size_t j_step,   \
                   size_t k_step, int64_t n) {                                                         \
    for (size_t j = 0; j < len; j++) {                                                                 \
      int64_t k = idx[j];                                                                              \
      if (k < 0) k += n;                                                                               \
      if (k >= 0 && k < n)                                                                             \
        memcpy(out + j * (ELEM), x + (base + j * j_step + (size_t)k * k_step) * (ELEM), ELEM);         \
      else                                                                                             \
        memset(out + j * (ELEM), 0, ELEM);                                                             \
    }                                                                                                  \
  }
#define DEFINE_ROWS(ELEM)                            \
  DEFINE_ROW(row_##ELEM##_i32, ELEM, int32_t)        \
  DEFINE_ROW(row_##ELEM##_i64, ELEM, int64_t)
DEFINE_ROWS(1)
DEFINE_ROWS(2)
DEFINE_ROWS(4)
DEFINE_ROWS(8)

static void task(void* ctx, size_t t, size_t thread) {
  (void)thread;
  const job_t* jb = ctx;
  const gather_elements_params_t* p = jb->p;
  size_t r1 = (t + 1) * p->rows_per_task < p->rows ? (t + 1) * p->rows_per_task : p->rows;
  for (size_t r = t * p->rows_per_task; r < r1; r++) {
    size_t base = 0, rest = r; /* the data offset of the row's coordinates off the axis */
    for (int32_t d = p->rank - 2; d >= 0; d--) {
      if (d != p->axis) base += rest % p->index_shape[d] * p->data_stride[d];
      rest /= p->index_shape[d];
    }
    char* out = jb->y + r * p->inner * p->elem;
    /* Along the last axis the index is the column; otherwise the column is j and the index steps rows. */
    bool last = p->axis == p->rank - 1;
    size_t j_step = last ? 0 : 1, k_step = last ? 1 : p->data_stride[p->axis];
    const void* idx = (const char*)jb->idx + r * p->inner * (p->wide ? 8 : 4);
#define ROW(ELEM)                                                                                        \
  (p->wide ? row_##ELEM##_i64(jb->x, idx, out, p->inner, base, j_step, k_step, p->axis_len)             \
           : row_##ELEM##_i32(jb->x, idx, out, p->inner, base, j_step, k_step, p->axis_len))
    switch (p->elem) {
      case 1: ROW(1); break;
      case 2: ROW(2); break;
      case 4: ROW(4); break;
      default: ROW(8); break;
    }
#undef ROW
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  job_t j = {n->params, sl_in(m, n, 0)->data, sl_in(m, n, 1)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, j.p->tasks, task, &j);
}

const sl_op_def_t sl_op_gather_elements = {SL_OP_SCHEMA(GATHER_ELEMENTS), 2, 2, prepare, run, prepare};
