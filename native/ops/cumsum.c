/* CUMSUM: running sums along one axis of float32, int32 or int64. x is outer x len x inner; a
 * unit walks the axis for a block of up to BLOCK inner positions, keeping their sums in a local
 * array: double for float32 (as torch's CPU kernel accumulates), unsigned for the integers so
 * that overflow wraps (as torch and numpy do) without undefined behaviour. exclusive leaves each
 * element out of its own sum; reverse walks the axis from its end. */
#include <string.h>

#include "op.h"

enum { BLOCK = 256, TASK_WORK = 1 << 15 }; /* inner positions per unit; elements worth a task */

typedef struct {
  sl_dtype_t dtype;
  bool exclusive, reverse;
  size_t outer, len, inner;
  size_t blocks;                /* units per outer index: ceil(inner / BLOCK) */
  size_t units_per_task, tasks; /* over outer * blocks units */
} cumsum_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  cumsum_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (x == NULL) return sl_node_fail(m, n, "input is missing");
  if (x->sparse != NULL) return sl_node_fail(m, n, "input (%s) is group-sparse: CUMSUM sums dense tensors", x->name);
  if (x->dtype != SL_DTYPE_FLOAT32 && x->dtype != SL_DTYPE_INT32 && x->dtype != SL_DTYPE_INT64)
    return sl_node_fail(m, n, "input (%s) is %s: CUMSUM sums float32, int32 or int64", x->name,
                        sl_schema_dtype_name(x->dtype));
  if (y->dtype != x->dtype)
    return sl_node_fail(m, n, "output (%s) is %s, the input %s: they must match", y->name,
                        sl_schema_dtype_name(y->dtype), sl_schema_dtype_name(x->dtype));
  sl_status_t st = sl_expect_shape(m, n, y, "output", x->rank, x->shape);
  if (st != SL_OK) return st;
  int32_t axis = sl_cumsum_options_axis(fb, &n->options);
  p->exclusive = sl_cumsum_options_exclusive(fb, &n->options);
  p->reverse = sl_cumsum_options_reverse(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (x->rank < 1) return sl_node_fail(m, n, "input (%s) is a scalar: CUMSUM needs an axis", x->name);
  if (axis < -x->rank || axis >= x->rank)
    return sl_node_fail(m, n, "axis %d is out of range for rank %d", axis, x->rank);
  if (axis < 0) axis += x->rank;
  p->dtype = x->dtype;
  p->outer = p->inner = 1;
  for (int32_t d = 0; d < axis; d++) p->outer *= (size_t)x->shape[d];
  for (int32_t d = axis + 1; d < x->rank; d++) p->inner *= (size_t)x->shape[d];
  p->len = (size_t)x->shape[axis];
  p->blocks = (p->inner + BLOCK - 1) / BLOCK;
  size_t unit_work = p->len * (p->inner < BLOCK ? p->inner : BLOCK); /* <= elements: the loader bounds them */
  p->units_per_task = unit_work >= TASK_WORK ? 1 : TASK_WORK / unit_work;
  p->tasks = (p->outer * p->blocks + p->units_per_task - 1) / p->units_per_task;
  return SL_OK;
}

/* One unit: inner positions [i0, i0 + w) of outer index o. An element is read before its output
 * is written, so the scan is right even where x and y share memory. */
#define DEFINE_SCAN(name, T, ACC)                                                                \
  static void name(const cumsum_params_t* p, const T* x, T* y, size_t o, size_t i0, size_t w) { \
    ACC acc[BLOCK];                                                                              \
    for (size_t j = 0; j < w; j++) acc[j] = 0;                                                   \
    for (size_t k = 0; k < p->len; k++) {                                                        \
      size_t at = (o * p->len + (p->reverse ? p->len - 1 - k : k)) * p->inner + i0;              \
      const T* xr = x + at;                                                                      \
      T* yr = y + at;                                                                            \
      if (p->exclusive) {                                                                        \
        for (size_t j = 0; j < w; j++) {                                                         \
          ACC v = xr[j];                                                                         \
          yr[j] = (T)acc[j];                                                                     \
          acc[j] += v;                                                                           \
        }                                                                                        \
      } else {                                                                                   \
        for (size_t j = 0; j < w; j++) {                                                         \
          acc[j] += xr[j];                                                                       \
          yr[j] = (T)acc[j];                                                                     \
        }                                                                                        \
      }                                                                                          \
    }                                                                                            \
  }
DEFINE_SCAN(scan_f32, float, double)
DEFINE_SCAN(scan_u32, uint32_t, uint32_t) /* int32 data, read as its unsigned type */
DEFINE_SCAN(scan_u64, uint64_t, uint64_t)

typedef struct {
  const cumsum_params_t* p;
  const void* x;
  void* y;
} job_t;

static void task(void* ctx, size_t t, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const cumsum_params_t* p = j->p;
  size_t units = p->outer * p->blocks, u1 = (t + 1) * p->units_per_task < units ? (t + 1) * p->units_per_task : units;
  for (size_t u = t * p->units_per_task; u < u1; u++) {
    size_t o = u / p->blocks, i0 = u % p->blocks * BLOCK, w = p->inner - i0 < BLOCK ? p->inner - i0 : BLOCK;
    switch (p->dtype) {
      case SL_DTYPE_FLOAT32: scan_f32(p, j->x, j->y, o, i0, w); break;
      case SL_DTYPE_INT32: scan_u32(p, j->x, j->y, o, i0, w); break;
      default: scan_u64(p, j->x, j->y, o, i0, w); break;
    }
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  job_t j = {n->params, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, j.p->tasks, task, &j);
}

const sl_op_def_t sl_op_cumsum = {SL_OP_SCHEMA(CUMSUM), 1, 1, prepare, run, prepare};
