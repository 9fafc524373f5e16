/* LOGICAL: AND, OR and XOR of two BOOL inputs with numpy broadcasting (sl_broadcast_plan), NOT of
 * one, into BOOL. Any nonzero byte reads as true; outputs are 0 or 1. */
#include "op.h"

typedef void (*logical_row_fn)(const uint8_t* a, size_t as, const uint8_t* b, size_t bs, uint8_t* y, size_t n);

#define ROW(KIND, EXPR)                                                                                    \
  static void KIND##_row(const uint8_t* a, size_t as, const uint8_t* b, size_t bs, uint8_t* y, size_t n) { \
    for (size_t i = 0; i < n; i++) {                                                                       \
      bool x = a[i * as] != 0, z = b[i * bs] != 0;                                                         \
      y[i] = (EXPR);                                                                                       \
    }                                                                                                      \
  }
ROW(and, x && z)
ROW(or, x || z)
ROW(xor, x != z)

static void not_row(const uint8_t* a, size_t as, const uint8_t* b, size_t bs, uint8_t* y, size_t n) {
  (void)b;
  (void)bs;
  for (size_t i = 0; i < n; i++) y[i] = a[i * as] == 0;
}

_Static_assert(SL_LOGICAL_KIND_AND == 0 && SL_LOGICAL_KIND_OR == 1 && SL_LOGICAL_KIND_XOR == 2 &&
                   SL_LOGICAL_KIND_NOT == 3 && SL_LOGICAL_KIND_COUNT == 4,
               "logical.c: rows follow LogicalKind");
static const logical_row_fn rows[SL_LOGICAL_KIND_COUNT] = {and_row, or_row, xor_row, not_row};

typedef struct {
  logical_row_fn row;
  sl_broadcast_t bc;
} logical_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  logical_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  uint8_t kind = sl_logical_options_kind(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (kind >= SL_LOGICAL_KIND_COUNT) return sl_node_fail(m, n, "unknown logical op %u", kind);
  int32_t count = kind == SL_LOGICAL_KIND_NOT ? 1 : 2;
  if (n->num_inputs != count)
    return sl_node_fail(m, n, "%s takes %d input%s, got %d", sl_logical_kind_name(kind), count, count > 1 ? "s" : "",
                        n->num_inputs);
  for (int32_t i = 0; i < count; i++) {
    const sl_tensor_t* t = sl_in(m, n, i);
    if (t == NULL) return sl_node_fail(m, n, "input %d is missing", i);
    if (t->dtype != SL_DTYPE_BOOL)
      return sl_node_fail(m, n, "input %d (%s) must be bool, not %s", i, t->name, sl_dtype_name(t->dtype));
  }
  const sl_tensor_t* y = sl_out(m, n, 0);
  if (y->dtype != SL_DTYPE_BOOL)
    return sl_node_fail(m, n, "output (%s) must be bool, not %s", y->name, sl_dtype_name(y->dtype));
  p->row = rows[kind];
  return sl_broadcast_plan(m, n, count, &p->bc);
}

static void row(const void* ctx, const void* const* in, const size_t* step, void* y, size_t len) {
  const logical_params_t* p = ctx;
  bool unary = p->bc.inputs == 1; /* NOT: its row ignores the second operand */
  p->row(in[0], step[0], unary ? in[0] : in[1], unary ? 0 : step[1], y, len);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const logical_params_t* p = n->params;
  sl_broadcast_run(m, n, &p->bc, row, p);
}

const sl_op_def_t sl_op_logical = {SL_OP_SCHEMA(LOGICAL), 1, 2, prepare, run, prepare};
