/* COMPARE: EQUAL, NOT_EQUAL, LESS, LESS_EQUAL, GREATER or GREATER_EQUAL of two inputs of one dtype
 * (float32, int32, int64 or bool) with numpy broadcasting (sl_broadcast_plan), into BOOL. float32
 * compares as IEEE: NaN equals nothing, itself included, and is neither less nor greater; bools
 * compare as 0 and 1 (any nonzero byte is true), as numpy's do. */
#include "op.h"

typedef void (*compare_row_fn)(const void* a, size_t as, const void* b, size_t bs, uint8_t* y, size_t n);

#define AS_IS(v) (v)
#define AS_BIT(v) ((v) != 0)
#define ROW(KIND, OP, T, SUFFIX, LOAD)                                                                          \
  static void KIND##_##SUFFIX(const void* a_, size_t as, const void* b_, size_t bs, uint8_t* y, size_t n) { \
    const T *a = a_, *b = b_;                                                                                 \
    for (size_t i = 0; i < n; i++) y[i] = LOAD(a[i * as]) OP LOAD(b[i * bs]);                                \
  }
#define KINDS(T, SUFFIX, LOAD)                                                                        \
  ROW(eq, ==, T, SUFFIX, LOAD) ROW(ne, !=, T, SUFFIX, LOAD) ROW(lt, <, T, SUFFIX, LOAD)               \
  ROW(le, <=, T, SUFFIX, LOAD) ROW(gt, >, T, SUFFIX, LOAD) ROW(ge, >=, T, SUFFIX, LOAD)
KINDS(float, f32, AS_IS)
KINDS(int32_t, i32, AS_IS)
KINDS(int64_t, i64, AS_IS)
KINDS(uint8_t, b8, AS_BIT)

/* Per dtype, the rows in CompareKind's order. */
_Static_assert(SL_COMPARE_KIND_EQUAL == 0 && SL_COMPARE_KIND_NOT_EQUAL == 1 && SL_COMPARE_KIND_LESS == 2 &&
                   SL_COMPARE_KIND_LESS_EQUAL == 3 && SL_COMPARE_KIND_GREATER == 4 &&
                   SL_COMPARE_KIND_GREATER_EQUAL == 5 && SL_COMPARE_KIND_COUNT == 6,
               "compare.c: rows follow CompareKind");
#define KIND_ROWS(SUFFIX) {eq_##SUFFIX, ne_##SUFFIX, lt_##SUFFIX, le_##SUFFIX, gt_##SUFFIX, ge_##SUFFIX}
static const compare_row_fn rows_f32[] = KIND_ROWS(f32), rows_i32[] = KIND_ROWS(i32), rows_i64[] = KIND_ROWS(i64),
                            rows_bool[] = KIND_ROWS(b8);

typedef struct {
  compare_row_fn row;
  sl_broadcast_t bc;
} compare_params_t;

static const compare_row_fn* rows_of(sl_dtype_t t) {
  switch (t) {
    case SL_DTYPE_FLOAT32: return rows_f32;
    case SL_DTYPE_INT32: return rows_i32;
    case SL_DTYPE_INT64: return rows_i64;
    case SL_DTYPE_BOOL: return rows_bool;
    default: return NULL;
  }
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  compare_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  uint8_t kind = sl_compare_options_kind(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (kind >= SL_COMPARE_KIND_COUNT) return sl_node_fail(m, n, "unknown comparison %u", kind);
  sl_tensor_t *a = sl_in(m, n, 0), *b = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  const compare_row_fn* rows = rows_of(a->dtype);
  if (rows == NULL || b->dtype != a->dtype)
    return sl_node_fail(m, n, "inputs %s (%s) and %s (%s) must share one dtype of float32, int32, int64 or bool",
                        a->name, sl_dtype_name(a->dtype), b->name, sl_dtype_name(b->dtype));
  if (y->dtype != SL_DTYPE_BOOL)
    return sl_node_fail(m, n, "output (%s) must be bool, not %s", y->name, sl_dtype_name(y->dtype));
  p->row = rows[kind];
  return sl_broadcast_plan(m, n, 2, &p->bc);
}

static void row(const void* ctx, const void* const* in, const size_t* step, void* y, size_t len) {
  const compare_params_t* p = ctx;
  p->row(in[0], step[0], in[1], step[1], y, len);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const compare_params_t* p = n->params;
  sl_broadcast_run(m, n, &p->bc, row, p);
}

const sl_op_def_t sl_op_compare = {SL_OP_SCHEMA(COMPARE), 2, 2, prepare, run, prepare};
