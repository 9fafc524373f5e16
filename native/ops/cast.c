/* CAST between float32, int32, int64 and bool (the output tensor's dtype). Float to integer
 * truncates toward zero and saturates; NaN becomes 0. To bool, anything nonzero (NaN included, as
 * numpy and torch) is 1; from bool, any nonzero byte is 1. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "op.h"

static bool castable(sl_dtype_t t) {
  return t == SL_DTYPE_FLOAT32 || t == SL_DTYPE_INT32 || t == SL_DTYPE_INT64 || t == SL_DTYPE_BOOL;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (!castable(x->dtype) || !castable(y->dtype) || x->sparse != NULL)
    return sl_node_fail(m, n, "casts only between float32, int32, int64 and bool (%s %s -> %s %s)", x->name,
                        sl_dtype_name(x->dtype), y->name, sl_dtype_name(y->dtype));
  return sl_expect_shape(m, n, y, "output", x->rank, x->shape);
}

static double load(const void* x, sl_dtype_t t, size_t i) {
  switch (t) {
    case SL_DTYPE_INT32: return ((const int32_t*)x)[i];
    case SL_DTYPE_INT64: return (double)((const int64_t*)x)[i];
    case SL_DTYPE_BOOL: return ((const uint8_t*)x)[i] != 0;
    default: return ((const float*)x)[i];
  }
}

/* Whether element i is nonzero, read in its own type (an int64 is never rounded to a double). */
static bool nonzero(const void* x, sl_dtype_t t, size_t i) {
  switch (t) {
    case SL_DTYPE_INT32: return ((const int32_t*)x)[i] != 0;
    case SL_DTYPE_INT64: return ((const int64_t*)x)[i] != 0;
    case SL_DTYPE_BOOL: return ((const uint8_t*)x)[i] != 0;
    default: return ((const float*)x)[i] != 0.0f; /* NaN != 0 */
  }
}

/* Doubles at or past these bounds would overflow the conversion (undefined in C). */
static int64_t to_int(double v, double lo, double hi_exclusive, int64_t min, int64_t max) {
  if (isnan(v)) return 0;
  v = trunc(v);
  return v < lo ? min : v >= hi_exclusive ? max : (int64_t)v;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (x->dtype == y->dtype && x->dtype != SL_DTYPE_BOOL) {
    memcpy(y->data, x->data, x->num_bytes);
    return;
  }
  if (y->dtype == SL_DTYPE_BOOL) { /* bool to bool too: any nonzero byte becomes 1 */
    for (size_t i = 0; i < x->num_elems; i++) ((uint8_t*)y->data)[i] = nonzero(x->data, x->dtype, i);
    return;
  }
  for (size_t i = 0; i < x->num_elems; i++) {
    double v = load(x->data, x->dtype, i);
    switch (y->dtype) {
      case SL_DTYPE_INT32:
        ((int32_t*)y->data)[i] = (int32_t)to_int(v, INT32_MIN, 0x1p31, INT32_MIN, INT32_MAX);
        break;
      case SL_DTYPE_INT64: ((int64_t*)y->data)[i] = to_int(v, -0x1p63, 0x1p63, INT64_MIN, INT64_MAX); break;
      default: ((float*)y->data)[i] = (float)v; break;
    }
  }
}

const sl_op_def_t sl_op_cast = {SL_OP_SCHEMA(CAST), 1, 1, prepare, run, prepare};
