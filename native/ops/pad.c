/* PAD with a constant value; pads are all begins then all ends, non-negative. */
#include <string.h>

#include "op.h"

typedef struct {
  int32_t rank;
  int32_t in_shape[SL_MAX_RANK], out_shape[SL_MAX_RANK], begin[SL_MAX_RANK];
  float value;
} pad_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  pad_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", -1);
  if (st != SL_OK) return st;
  sl_fb_vec_t pads = sl_pad_options_pads(fb, &n->options);
  p->value = sl_pad_options_value(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (x->rank < 1) return sl_node_fail(m, n, "input must have rank >= 1"); /* run copies rows of the last axis */
  p->rank = x->rank;
  if (pads.len != 2u * (uint32_t)x->rank)
    return sl_node_fail(m, n, "%u pads given, expected %d (begin and end per dimension)", pads.len, 2 * x->rank);
  for (int32_t d = 0; d < x->rank; d++) {
    int32_t b = sl_fb_vec_i32(fb, pads, (uint32_t)d), e = sl_fb_vec_i32(fb, pads, (uint32_t)(d + x->rank));
    const int32_t ends[2] = {b, e};
    if ((st = sl_expect_window(m, n, "pads", 0, 2, ends)) != SL_OK) return st;
    int64_t padded = (int64_t)x->shape[d] + b + e;
    if (padded > INT32_MAX) return sl_node_fail(m, n, "dimension %d would pad to %lld", d, (long long)padded);
    p->in_shape[d] = x->shape[d];
    p->begin[d] = b;
    p->out_shape[d] = (int32_t)padded;
  }
  if ((st = sl_expect_f32(m, n, y, "output", x->rank)) != SL_OK) return st;
  return sl_expect_shape(m, n, y, "output", x->rank, p->out_shape);
}

bool sl_pad_channels_only(const sl_node_t* pad, size_t* before) {
  const pad_params_t* p = pad->params;
  if (p == NULL || p->rank != 4 || p->value != 0.0f) return false;
  for (int32_t d = 0; d < 4; d++)
    if (d != 1 && p->in_shape[d] != p->out_shape[d]) return false;
  *before = (size_t)p->begin[1];
  return true;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const pad_params_t* p = n->params;
  const sl_tensor_t* xt = sl_in(m, n, 0);
  const sl_tensor_t* yt = sl_out(m, n, 0);
  float* y = yt->data;
  for (size_t i = 0; i < yt->num_elems; i++) y[i] = p->value;
  const float* x = xt->data;
  int32_t last = p->rank - 1;
  size_t out_stride[SL_MAX_RANK];
  size_t s = 1;
  for (int32_t d = last; d >= 0; d--) {
    out_stride[d] = s;
    s *= (size_t)p->out_shape[d];
  }
  /* One memcpy per innermost input row; the odometer walks the outer dims. */
  size_t row = (size_t)p->in_shape[last], rows = xt->num_elems / (row > 0 ? row : 1);
  int32_t idx[SL_MAX_RANK] = {0};
  for (size_t i = 0; i < rows && row > 0; i++) {
    size_t o = (size_t)p->begin[last];
    for (int32_t d = 0; d < last; d++) o += (size_t)(idx[d] + p->begin[d]) * out_stride[d];
    memcpy(y + o, x + i * row, row * sizeof(float));
    for (int32_t d = last - 1; d >= 0; d--) {
      if (++idx[d] < p->in_shape[d]) break;
      idx[d] = 0;
    }
  }
}

const sl_op_def_t sl_op_pad = {SL_OP_SCHEMA(PAD), 1, 1, prepare, run, prepare};
