/* ACTIVATION: any activation of the schema as one op, on the vunary kernel. */
#include "op.h"

typedef struct {
  sl_activation_t act;
  const sl_ukernel_t* k; /* vunary */
} activation_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  activation_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_activation_t* act = &p->act;
  const sl_fb_table_t* o = &n->options;
  sl_status_t st = sl_parse_unary(m, n, sl_activation_options_activation(fb, o), sl_activation_options_min(fb, o),
                                  sl_activation_options_max(fb, o), sl_activation_options_exponent(fb, o), act);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (st == SL_OK) st = sl_expect_f32(m, n, x, "input", -1);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", -1);
  if (st == SL_OK) st = sl_expect_shape(m, n, y, "output", x->rank, x->shape);
  p->k = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  n->kernel = p->k->name;
  return st;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const sl_tensor_t* x = sl_in(m, n, 0);
  const activation_params_t* p = n->params;
  p->k->fn.vunary(&p->act, x->data, sl_out(m, n, 0)->data, x->num_elems);
}

const sl_op_def_t sl_op_activation = {SL_OP_SCHEMA(ACTIVATION), 1, 1, prepare, run, prepare};
