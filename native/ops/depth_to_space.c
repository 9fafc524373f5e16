/* DEPTH_TO_SPACE on NCHW with TensorFlow's channel order:
 * y[n][c][h*b + i][w*b + j] = x[n][(i*b + j)*C + c][h][w]. */
#include "op.h"

typedef struct {
  size_t batch, channels, in_h, in_w, block;
} d2s_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  d2s_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t b = sl_depth_to_space_options_block_size(fb, &n->options);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 4);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", 4);
  if (st == SL_OK) st = sl_expect_batch_only(m, n);
  if (st != SL_OK) return st;
  /* In 64 bits: an int32 b*b wraps (to 0 for b = 65536, to 4 for b = 2^30 + 2). Once b*b divides
   * the channels, H*b and W*b stay below 2^31: they are elements of the input divided by b. */
  int64_t bb = (int64_t)b * b;
  if (b < 1 || bb > x->shape[1] || x->shape[1] % bb != 0)
    return sl_node_fail(m, n, "block size %d does not divide the %d channels into b*b groups", b, x->shape[1]);
  int32_t yshape[4] = {x->shape[0], (int32_t)(x->shape[1] / bb), (int32_t)((int64_t)x->shape[2] * b),
                       (int32_t)((int64_t)x->shape[3] * b)};
  if ((st = sl_expect_shape(m, n, y, "output", 4, yshape)) != SL_OK) return st;
  p->batch = (size_t)x->shape[0];
  p->channels = (size_t)yshape[1];
  p->in_h = (size_t)x->shape[2];
  p->in_w = (size_t)x->shape[3];
  p->block = (size_t)b;
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const d2s_params_t* p = n->params;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  size_t b = p->block, out_w = p->in_w * b, plane = p->in_h * p->in_w;
  for (size_t bn = 0; bn < p->batch; bn++)
    for (size_t i = 0; i < b; i++)
      for (size_t j = 0; j < b; j++)
        for (size_t c = 0; c < p->channels; c++) {
          const float* src = x + (bn * p->channels * b * b + (i * b + j) * p->channels + c) * plane;
          float* dst = y + (bn * p->channels + c) * plane * b * b;
          for (size_t h = 0; h < p->in_h; h++)
            for (size_t w = 0; w < p->in_w; w++) dst[(h * b + i) * out_w + w * b + j] = src[h * p->in_w + w];
        }
}

static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  ((d2s_params_t*)n->params)->batch = (size_t)sl_in(m, n, 0)->shape[0];
  return SL_OK;
}

const sl_op_def_t sl_op_depth_to_space = {SL_OP_SCHEMA(DEPTH_TO_SPACE), 1, 1, prepare, run, resize};
