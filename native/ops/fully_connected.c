/* FULLY_CONNECTED: y[..., OC] = x[..., K] * W[OC][K]^T + bias, W dense or group-sparse: a
 * token-major linear layer (ops/linear.c). With a dynamic row count the prepared (largest)
 * count sizes the scratch. */
#include "linear.h"

typedef struct {
  sl_activation_t act;
  size_t rows, cols, out_c;
  sl_linear_t linear;
} fc_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  fc_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  const sl_fb_table_t* o = &n->options;
  sl_status_t st = sl_parse_activation(m, n, sl_fully_connected_options_activation(fb, o),
                                       sl_fully_connected_options_act_min(fb, o),
                                       sl_fully_connected_options_act_max(fb, o), &p->act);
  if (st != SL_OK) return st;
  sl_tensor_t *x = sl_in(m, n, 0), *w = sl_in(m, n, 1), *b = n->num_inputs > 2 ? sl_in(m, n, 2) : NULL;
  sl_tensor_t* y = sl_out(m, n, 0);
  if ((st = sl_expect_f32(m, n, x, "input", -1)) != SL_OK) return st;
  if (x->rank < 1) return sl_node_fail(m, n, "input must have rank >= 1");
  if ((st = sl_expect_weights(m, n, w, 2)) != SL_OK) return st;
  int32_t k = x->shape[x->rank - 1], oc = w->shape[0];
  if (w->shape[1] != k)
    return sl_node_fail(m, n, "weights [%d,%d] do not match %d input features", oc, w->shape[1], k);
  if (b != NULL) {
    int32_t bshape[1] = {oc};
    if ((st = sl_expect_f32(m, n, b, "bias", -1)) != SL_OK) return st;
    if (!b->is_const) return sl_node_fail(m, n, "bias must be constant");
    if ((st = sl_expect_shape(m, n, b, "bias", 1, bshape)) != SL_OK) return st;
  }
  int32_t yshape[SL_MAX_RANK];
  for (int32_t d = 0; d < x->rank; d++) yshape[d] = x->shape[d];
  yshape[x->rank - 1] = oc;
  if ((st = sl_expect_f32(m, n, y, "output", x->rank)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", x->rank, yshape)) != SL_OK) return st;
  p->cols = (size_t)k;
  p->out_c = (size_t)oc;
  p->rows = x->num_elems / (size_t)k;
  /* One row is both layouts; channel-major runs it without transposed copies. */
  sl_linear_layout_t layout = p->rows > 1 ? SL_LINEAR_TOKEN_MAJOR : SL_LINEAR_CHANNEL_MAJOR;
  return sl_linear_prepare(m, n, &p->linear, w, b != NULL ? sl_const_f32(b) : NULL, layout, p->rows, p->rows,
                           &p->act);
}

static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  fc_params_t* p = n->params;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  p->rows = x->num_elems / p->cols;
  if (y->num_elems != p->rows * p->out_c)
    return sl_node_fail(m, n, "output (%s) holds %zu values for %zu rows of %zu", y->name, y->num_elems, p->rows,
                        p->out_c);
  sl_linear_resize(n, &p->linear, p->rows);
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const fc_params_t* p = n->params;
  sl_linear_run(m, n, &p->linear, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data, NULL);
}

const sl_op_def_t sl_op_fully_connected = {SL_OP_SCHEMA(FULLY_CONNECTED), 2, 3, prepare, run, resize};
