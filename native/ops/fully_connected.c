/* FULLY_CONNECTED: y[..., OC] = x[..., K] * W[OC][K]^T + bias, W dense or group-sparse.
 * The kernels are channel-major, so several rows (tokens) are transposed into
 * scratch first and the result transposed back; a single row needs neither. With a
 * dynamic row count the scratch keeps the prepared (largest) row stride. */
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
  /* Rows of the transposed scratch an odd number of 32-byte steps apart: power-of-two strides
   * (128 tokens) would map a kernel's column loads onto a few L1 sets. */
  size_t ld = p->rows > 1 ? ((p->rows + 7) / 8 * 8) | 8 : 1, scratch;
  if (!sl_size_mul(p->cols + p->out_c, ld, &scratch) || !sl_size_mul(scratch, sizeof(float), &scratch))
    return sl_node_fail(m, n, "%zu rows of %zu inputs and %zu outputs do not fit in memory", p->rows, p->cols,
                        p->out_c);
  if (ld > 1) sl_reserve_scratch(m, n, scratch, 0);
  return sl_linear_prepare(m, n, &p->linear, w, b != NULL ? sl_const_f32(b) : NULL, p->rows, ld, &p->act);
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

/* Element (r, c) of a rows x cols matrix moves from in[r * in_r + c * in_c] to
 * out[r * out_r + c * out_c], in 32 x 32 blocks, one task per block of columns. */
typedef struct {
  const float* in;
  float* out;
  size_t rows, cols, in_r, in_c, out_r, out_c;
} transpose_job_t;

enum { BLOCK = 32 };

static void transpose_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const transpose_job_t* j = ctx;
  size_t c0 = task * BLOCK, c1 = c0 + BLOCK < j->cols ? c0 + BLOCK : j->cols;
  for (size_t r0 = 0; r0 < j->rows; r0 += BLOCK)
    for (size_t r = r0; r < r0 + BLOCK && r < j->rows; r++)
      for (size_t c = c0; c < c1; c++) j->out[r * j->out_r + c * j->out_c] = j->in[r * j->in_r + c * j->in_c];
}

static void transpose(const sl_model_t* m, const transpose_job_t* j) {
  sl_parallel_for(m, (j->cols + BLOCK - 1) / BLOCK, transpose_task, (void*)j);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const fc_params_t* p = n->params;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  size_t ld = p->linear.stride;
  if (ld == 1) {
    sl_linear_run(m, &p->linear, x, y);
    return;
  }
  float* xt = sl_scratch_shared(m);
  float* yt = xt + p->cols * ld;
  transpose_job_t in = {x, xt, p->rows, p->cols, p->cols, 1, 1, ld};          /* [rows][cols] -> [cols][ld] */
  transpose(m, &in);
  sl_linear_run(m, &p->linear, xt, yt);
  transpose_job_t out = {yt, y, p->rows, p->out_c, 1, ld, p->out_c, 1};      /* [out_c][ld] -> [rows][out_c] */
  transpose(m, &out);
}

const sl_op_def_t sl_op_fully_connected = {SL_OP_SCHEMA(FULLY_CONNECTED), 2, 3, prepare, run, resize};
