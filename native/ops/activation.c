/* ACTIVATION: ReLU, ReLU6, Clamp, HardSwish, HardSigmoid, Sigmoid, SiLU as one op. */
#include "../runtime/internal.h"

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  sl_activation_t* act = sl_node_params(m, n, sizeof(*act));
  if (act == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_status_t st = sl_parse_activation(m, n, fb, 0, act);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (st == SL_OK) st = sl_expect_f32(m, n, x, "input", -1);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", -1);
  if (st == SL_OK) st = sl_expect_shape(m, n, y, "output", x->rank, x->shape);
  return st;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const sl_tensor_t* x = sl_in(m, n, 0);
  sl_f32_activation(n->params, x->data, sl_out(m, n, 0)->data, x->num_elems);
}

const sl_op_def_t sl_op_activation = {"ACTIVATION", 1, 1, prepare, run, prepare};
