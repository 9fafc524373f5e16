/* FULLY_CONNECTED: y[..., OC] = x[..., K] * W[OC][K]^T + bias, W dense or group-sparse. */
#include "../runtime/internal.h"

typedef struct {
  sl_activation_t act;
  size_t rows, cols, out_c;
  const sl_spmm_kernel_t* spmm;
  const sl_gemm_kernel_t* gemm;
} fc_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  fc_params_t* p = sl_model_alloc(m, sizeof(*p));
  if (p == NULL) return sl_fail(m, SL_ERROR_OUT_OF_MEMORY, "out of memory");
  n->params = p;
  sl_status_t st = sl_parse_activation(m, n, fb, 0, &p->act);
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
  if (w->sparse != NULL)
    p->spmm = sl_spmm_select(m->isa, w->sparse->r);
  else
    p->gemm = sl_gemm_select(m->isa);
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const fc_params_t* p = n->params;
  const sl_tensor_t* w = sl_in(m, n, 1);
  const float* bias = n->num_inputs > 2 ? sl_const_f32(sl_in(m, n, 2)) : NULL;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  /* Row-major rows are one pixel each in the channel-major kernels. */
  for (size_t r = 0; r < p->rows; r++) {
    if (p->spmm != NULL)
      p->spmm->fn(w->sparse, bias, 1, x + r * p->cols, y + r * p->out_c, &p->act);
    else
      p->gemm->fn(w->data, bias, p->out_c, p->cols, 1, x + r * p->cols, y + r * p->out_c, &p->act);
  }
}

const sl_op_def_t sl_op_fully_connected = {"FULLY_CONNECTED", 2, 3, prepare, run};
