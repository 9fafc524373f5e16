/* MEAN_POOL over the tokens of x [B, T, C] with an optional mask [B, T] (float32, int32 or
 * int64) as weights: y[b] = sum_t mask[b,t] x[b,t] / max(sum_t mask[b,t], 1e-9), the
 * sentence-transformers pooling; without a mask, the plain mean. */
#include <string.h>

#include "op.h"

typedef struct {
  size_t batch, tokens, channels;
} mean_pool_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  mean_pool_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *mask = n->num_inputs > 1 ? sl_in(m, n, 1) : NULL, *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 3);
  if (st != SL_OK) return st;
  if (mask != NULL) {
    if ((mask->dtype != SL_DTYPE_FLOAT32 && mask->dtype != SL_DTYPE_INT32 && mask->dtype != SL_DTYPE_INT64) ||
        mask->sparse != NULL) /* run reads mask->data, which a group-sparse constant lacks */
      return sl_node_fail(m, n, "mask (%s) must be dense float32, int32 or int64", mask->name);
    if ((st = sl_expect_shape(m, n, mask, "mask", 2, x->shape)) != SL_OK) return st;
  }
  int32_t yshape[2] = {x->shape[0], x->shape[2]};
  if ((st = sl_expect_f32(m, n, y, "output", 2)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", 2, yshape)) != SL_OK) return st;
  p->batch = (size_t)x->shape[0];
  p->tokens = (size_t)x->shape[1];
  p->channels = (size_t)x->shape[2];
  return SL_OK;
}

static float weight(const sl_tensor_t* mask, size_t i) {
  if (mask == NULL) return 1.0f;
  switch (mask->dtype) {
    case SL_DTYPE_INT32: return (float)((const int32_t*)mask->data)[i];
    case SL_DTYPE_INT64: return (float)((const int64_t*)mask->data)[i];
    default: return ((const float*)mask->data)[i];
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const mean_pool_params_t* p = n->params;
  const sl_tensor_t* mask = n->num_inputs > 1 ? sl_in(m, n, 1) : NULL;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  for (size_t b = 0; b < p->batch; b++) {
    float* out = y + b * p->channels;
    memset(out, 0, p->channels * sizeof(float));
    float total = 0.0f;
    for (size_t t = 0; t < p->tokens; t++) {
      float w = weight(mask, b * p->tokens + t);
      if (w == 0.0f) continue;
      total += w;
      const float* row = x + (b * p->tokens + t) * p->channels;
      for (size_t c = 0; c < p->channels; c++) out[c] += w * row[c];
    }
    float inv = 1.0f / (total > 1e-9f ? total : 1e-9f);
    for (size_t c = 0; c < p->channels; c++) out[c] *= inv;
  }
}

const sl_op_def_t sl_op_mean_pool = {SL_OP_SCHEMA(MEAN_POOL), 1, 2, prepare, run, prepare};
