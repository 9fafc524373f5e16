/* ADD, SUB, MUL, DIV and PRELU (x > 0 ? x : alpha * x) with numpy broadcasting (sl_broadcast_plan).
 * float32 rows run on the vbinary kernel (with the clamp-like activations fused), others on
 * vunary. ADD, SUB, MUL and DIV also take int32 and int64 (both inputs and the output of one
 * dtype, no fused activation), in plain C: products and sums wrap (two's complement), DIV
 * truncates toward zero as ONNX and C do, x / 0 is 0 (integer division by zero has no answer;
 * 0 keeps a run from trapping) and INT_MIN / -1 wraps to INT_MIN. */
#include "op.h"

typedef void (*int_row_fn)(const void* a, size_t as, const void* b, size_t bs, void* y, size_t n);

typedef struct {
  sl_activation_t post; /* what the kernel's clamp cannot do, NONE otherwise */
  sl_minmax_t mm;
  const sl_ukernel_t *vbinary, *vunary;
  int_row_fn int_row; /* integer dtypes; NULL for float32 */
  sl_broadcast_t bc;
} binary_params_t;

/* Wrapping arithmetic through the unsigned type of the same width (signed overflow is undefined;
 * the conversion back is modulo 2^N on every compiler this builds with). */
#define INT_OPS(T, U, SUFFIX)                                                                       \
  static T add_##SUFFIX(T a, T b) { return (T)((U)a + (U)b); }                                      \
  static T sub_##SUFFIX(T a, T b) { return (T)((U)a - (U)b); }                                      \
  static T mul_##SUFFIX(T a, T b) { return (T)((U)a * (U)b); }                                      \
  static T div_##SUFFIX(T a, T b) { return b == 0 ? 0 : b == -1 ? (T)((U)0 - (U)a) : (T)(a / b); } \
  INT_ROW(add, T, SUFFIX)                                                                           \
  INT_ROW(sub, T, SUFFIX)                                                                           \
  INT_ROW(mul, T, SUFFIX)                                                                           \
  INT_ROW(div, T, SUFFIX)
#define INT_ROW(OP, T, SUFFIX)                                                                              \
  static void OP##_row_##SUFFIX(const void* a_, size_t as, const void* b_, size_t bs, void* y_, size_t n) { \
    const T *a = a_, *b = b_;                                                                               \
    T* y = y_;                                                                                              \
    for (size_t i = 0; i < n; i++) y[i] = OP##_##SUFFIX(a[i * as], b[i * bs]);                              \
  }
INT_OPS(int32_t, uint32_t, i32)
INT_OPS(int64_t, uint64_t, i64)

_Static_assert(SL_BINARY_ADD == 0 && SL_BINARY_SUB == 1 && SL_BINARY_MUL == 2 && SL_BINARY_DIV == 3,
               "binary.c: int_rows follow sl_binary_op_t");
static const int_row_fn int_rows[2][4] = { /* [int64][op] */
    {add_row_i32, sub_row_i32, mul_row_i32, div_row_i32},
    {add_row_i64, sub_row_i64, mul_row_i64, div_row_i64},
};

static bool is_int(sl_dtype_t t) { return t == SL_DTYPE_INT32 || t == SL_DTYPE_INT64; }

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb, sl_binary_op_t op) {
  binary_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  const sl_fb_table_t* o = &n->options;
  sl_activation_t act;
  sl_status_t st = sl_parse_activation(m, n, sl_binary_options_activation(fb, o), sl_binary_options_act_min(fb, o),
                                       sl_binary_options_act_max(fb, o), &act);
  if (st != SL_OK) return st;
  sl_tensor_t *a = sl_in(m, n, 0), *b = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  p->int_row = NULL;
  if (op != SL_BINARY_PRELU && is_int(a->dtype)) {
    if (b->dtype != a->dtype || y->dtype != a->dtype)
      return sl_node_fail(m, n, "inputs %s (%s), %s (%s) and the output (%s, %s) must share one dtype of float32, "
                          "int32 or int64", a->name, sl_dtype_name(a->dtype), b->name, sl_dtype_name(b->dtype), y->name,
                          sl_dtype_name(y->dtype));
    if (act.type != SL_ACT_NONE)
      return sl_node_fail(m, n, "fused activations apply to float32 only, and %s is %s", a->name,
                          sl_dtype_name(a->dtype));
    p->int_row = int_rows[a->dtype == SL_DTYPE_INT64][op];
    return sl_broadcast_plan(m, n, 2, &p->bc);
  }
  if ((st = sl_expect_f32(m, n, a, "first input", -1)) != SL_OK) return st;
  if ((st = sl_expect_f32(m, n, b, "second input", -1)) != SL_OK) return st;
  if ((st = sl_expect_f32(m, n, y, "output", -1)) != SL_OK) return st;
  if ((st = sl_broadcast_plan(m, n, 2, &p->bc)) != SL_OK) return st;
  p->post = sl_activation_split(&act, &p->mm);
  p->vbinary = sl_op_kernel(m, SL_FAMILY_vbinary, 0);
  p->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  n->kernel = p->vbinary->name;
  return SL_OK;
}

typedef struct {
  const binary_params_t* p;
  sl_binary_op_t op;
} job_t;

static void float_row(const void* ctx, const void* const* in, const size_t* step, void* y, size_t len) {
  const job_t* j = ctx;
  const binary_params_t* p = j->p;
  p->vbinary->fn.vbinary(j->op, in[0], step[0], in[1], step[1], y, len, &p->mm, NULL);
  if (p->post.type != SL_ACT_NONE) p->vunary->fn.vunary(&p->post, y, y, len);
}

static void int_row(const void* ctx, const void* const* in, const size_t* step, void* y, size_t len) {
  const job_t* j = ctx;
  j->p->int_row(in[0], step[0], in[1], step[1], y, len);
}

static void run_op(const sl_model_t* m, const sl_node_t* n, sl_binary_op_t op) {
  const binary_params_t* p = n->params;
  job_t j = {p, op};
  sl_broadcast_run(m, n, &p->bc, p->int_row != NULL ? int_row : float_row, &j);
}

#define BINARY_OP(NAME, name)                                                                              \
  static sl_status_t prepare_##name(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {                           \
    return prepare(m, n, fb, SL_BINARY_##NAME);                                                            \
  }                                                                                                        \
  static void run_##name(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, SL_BINARY_##NAME); }      \
  const sl_op_def_t sl_op_##name = {SL_OP_SCHEMA(NAME), 2, 2, prepare_##name, run_##name, prepare_##name};
BINARY_OP(ADD, add)
BINARY_OP(SUB, sub)
BINARY_OP(MUL, mul)
BINARY_OP(DIV, div)
BINARY_OP(PRELU, prelu)
