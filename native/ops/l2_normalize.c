/* L2_NORMALIZE over the last dimension: y = x / max(||x||, epsilon), as torch's
 * F.normalize (sentence embeddings). */
#include <math.h>

#include "op.h"

typedef struct {
  float epsilon;
  size_t rows, cols;
} l2_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  l2_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  p->epsilon = sl_l2_normalize_options_epsilon(fb, &n->options);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", -1);
  if (st == SL_OK && x->rank < 1) st = sl_node_fail(m, n, "input must have rank >= 1");
  if (st == SL_OK && !(p->epsilon >= 0.0f)) st = sl_node_fail(m, n, "epsilon must be >= 0");
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", -1);
  if (st == SL_OK) st = sl_expect_shape(m, n, y, "output", x->rank, x->shape);
  if (st != SL_OK) return st;
  p->cols = (size_t)x->shape[x->rank - 1];
  p->rows = x->num_elems / p->cols;
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const l2_params_t* p = n->params;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  for (size_t r = 0; r < p->rows; r++) {
    const float* in = x + r * p->cols;
    double sq = 0.0;
    for (size_t c = 0; c < p->cols; c++) sq += (double)in[c] * in[c];
    double norm = sqrt(sq);
    float inv = (float)(1.0 / (norm > p->epsilon ? norm : p->epsilon));
    for (size_t c = 0; c < p->cols; c++) y[r * p->cols + c] = in[c] * inv;
  }
}

const sl_op_def_t sl_op_l2_normalize = {SL_OP_SCHEMA(L2_NORMALIZE), 1, 1, prepare, run, prepare};
