/* WHERE(condition, x, y): condition ? x : y, the three broadcast (numpy rules, sl_broadcast_plan)
 * to the output. condition is BOOL (any nonzero byte is true); x, y and the output share one dtype
 * of float32, int32, int64 or bool, copied by width as bits (a NaN payload passes unchanged). */
#include "op.h"

typedef void (*where_row_fn)(const uint8_t* c, size_t cs, const void* x, size_t xs, const void* y, size_t ys,
                             void* out, size_t n);

#define ROW(T)                                                                                              \
  static void where_##T(const uint8_t* c, size_t cs, const void* x_, size_t xs, const void* y_, size_t ys, \
                        void* out_, size_t n) {                                                             \
    const T *x = x_, *y = y_;                                                                               \
    T* out = out_;                                                                                          \
    for (size_t i = 0; i < n; i++) out[i] = c[i * cs] ? x[i * xs] : y[i * ys];                              \
  }
ROW(uint8_t)
ROW(uint32_t)
ROW(uint64_t)

typedef struct {
  where_row_fn row;
  sl_broadcast_t bc;
} where_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  where_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *c = sl_in(m, n, 0), *x = sl_in(m, n, 1), *y = sl_in(m, n, 2), *out = sl_out(m, n, 0);
  if (c->dtype != SL_DTYPE_BOOL)
    return sl_node_fail(m, n, "condition (%s) must be bool, not %s", c->name, sl_dtype_name(c->dtype));
  switch (x->dtype) {
    case SL_DTYPE_BOOL: p->row = where_uint8_t; break;
    case SL_DTYPE_FLOAT32: case SL_DTYPE_INT32: p->row = where_uint32_t; break;
    case SL_DTYPE_INT64: p->row = where_uint64_t; break;
    default: p->row = NULL; break;
  }
  if (p->row == NULL || y->dtype != x->dtype || out->dtype != x->dtype)
    return sl_node_fail(m, n, "x (%s, %s), y (%s, %s) and the output (%s, %s) must share one dtype of float32, "
                        "int32, int64 or bool", x->name, sl_dtype_name(x->dtype), y->name, sl_dtype_name(y->dtype),
                        out->name, sl_dtype_name(out->dtype));
  return sl_broadcast_plan(m, n, 3, &p->bc);
}

static void row(const void* ctx, const void* const* in, const size_t* step, void* out, size_t len) {
  const where_params_t* p = ctx;
  p->row(in[0], step[0], in[1], step[1], in[2], step[2], out, len);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const where_params_t* p = n->params;
  sl_broadcast_run(m, n, &p->bc, row, p);
}

const sl_op_def_t sl_op_where = {SL_OP_SCHEMA(WHERE), 3, 3, prepare, run, prepare};
