/* CONV2D: NCHW input, [OC][IC/groups][KH][KW] weights (dense or group-sparse 1x1),
 * optional bias, fused activation. 1x1 stride-1 convs run as SpMM or GEMM over pixels. */
#include "../runtime/internal.h"

enum { F_STRIDE_H, F_STRIDE_W, F_DIL_H, F_DIL_W, F_PAD_T, F_PAD_L, F_PAD_B, F_PAD_R, F_GROUPS, F_ACT };

typedef struct {
  sl_conv2d_shape_t s;
  sl_activation_t act;
  uint32_t batch;
  const sl_spmm_kernel_t* spmm;
  const sl_gemm_kernel_t* gemm;
  const sl_conv2d_kernel_t* conv;
} conv_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  conv_params_t* p = sl_model_alloc(m, sizeof(*p));
  if (p == NULL) return sl_fail(m, SL_ERROR_OUT_OF_MEMORY, "out of memory");
  n->params = p;
  const sl_fb_table_t* o = &n->options;
  int32_t sh = sl_fb_i32(fb, o, F_STRIDE_H, 1), sw = sl_fb_i32(fb, o, F_STRIDE_W, 1);
  int32_t dh = sl_fb_i32(fb, o, F_DIL_H, 1), dw = sl_fb_i32(fb, o, F_DIL_W, 1);
  int32_t pt = sl_fb_i32(fb, o, F_PAD_T, 0), pl = sl_fb_i32(fb, o, F_PAD_L, 0);
  int32_t pb = sl_fb_i32(fb, o, F_PAD_B, 0), pr = sl_fb_i32(fb, o, F_PAD_R, 0);
  int32_t groups = sl_fb_i32(fb, o, F_GROUPS, 1);
  sl_status_t st = sl_parse_activation(m, n, fb, F_ACT, &p->act);
  if (st != SL_OK) return st;
  if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || sh > 65536 || sw > 65536 || dh > 65536 || dw > 65536)
    return sl_node_fail(m, n, "strides and dilations must be 1..65536");
  if (pt < 0 || pl < 0 || pb < 0 || pr < 0 || pt > 65536 || pl > 65536 || pb > 65536 || pr > 65536)
    return sl_node_fail(m, n, "paddings must be 0..65536");
  sl_tensor_t *x = sl_in(m, n, 0), *w = sl_in(m, n, 1), *b = n->num_inputs > 2 ? sl_in(m, n, 2) : NULL;
  sl_tensor_t* y = sl_out(m, n, 0);
  if ((st = sl_expect_f32(m, n, x, "input", 4)) != SL_OK) return st;
  if ((st = sl_expect_weights(m, n, w, 4)) != SL_OK) return st;
  int32_t c = x->shape[1], oc = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  if (groups < 1 || c % groups != 0 || oc % groups != 0 || w->shape[1] != c / groups)
    return sl_node_fail(m, n, "%d groups do not fit %d input and %d output channels (weights [%d,%d,%d,%d])",
                        groups, c, oc, oc, w->shape[1], kh, kw);
  if (b != NULL) {
    if ((st = sl_expect_f32(m, n, b, "bias", -1)) != SL_OK) return st;
    int32_t bshape[1] = {oc};
    if (!b->is_const) return sl_node_fail(m, n, "bias must be constant");
    if ((st = sl_expect_shape(m, n, b, "bias", 1, bshape)) != SL_OK) return st;
  }
  int64_t eh = (int64_t)dh * (kh - 1) + 1, ew = (int64_t)dw * (kw - 1) + 1;
  int64_t oh = ((int64_t)x->shape[2] + pt + pb - eh) / sh + 1;
  int64_t ow = ((int64_t)x->shape[3] + pl + pr - ew) / sw + 1;
  if ((int64_t)x->shape[2] + pt + pb < eh || (int64_t)x->shape[3] + pl + pr < ew)
    return sl_node_fail(m, n, "the %dx%d kernel is larger than the padded input", kh, kw);
  int32_t yshape[4] = {x->shape[0], oc, (int32_t)oh, (int32_t)ow};
  if ((st = sl_expect_f32(m, n, y, "output", 4)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", 4, yshape)) != SL_OK) return st;

  sl_conv2d_shape_t s = {(uint32_t)c, (uint32_t)x->shape[2], (uint32_t)x->shape[3], (uint32_t)oc,
                         (uint32_t)oh, (uint32_t)ow, (uint32_t)kh, (uint32_t)kw, (uint32_t)sh,
                         (uint32_t)sw, (uint32_t)dh, (uint32_t)dw, (uint32_t)pt, (uint32_t)pl,
                         (uint32_t)groups};
  p->s = s;
  p->batch = (uint32_t)x->shape[0];
  bool pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt + pl + pb + pr == 0 && groups == 1;
  if (w->sparse != NULL) {
    if (!pointwise)
      return sl_fail(m, SL_ERROR_UNSUPPORTED,
                     "operator %d (%s): group-sparse weights are supported on 1x1, stride-1, unpadded, "
                     "ungrouped convolutions only",
                     (int)(n - m->nodes), n->name);
    p->spmm = sl_spmm_select(m->isa, w->sparse->r);
  } else if (pointwise) {
    p->gemm = sl_gemm_select(m->isa);
  } else {
    p->conv = sl_conv2d_select(m->isa);
  }
  return SL_OK;
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const conv_params_t* p = n->params;
  const sl_tensor_t *x = sl_in(m, n, 0), *w = sl_in(m, n, 1);
  const float* bias = n->num_inputs > 2 ? sl_const_f32(sl_in(m, n, 2)) : NULL;
  size_t in_size = (size_t)p->s.in_c * p->s.in_h * p->s.in_w;
  size_t out_pixels = (size_t)p->s.out_h * p->s.out_w;
  size_t out_size = (size_t)p->s.out_c * out_pixels;
  for (uint32_t b = 0; b < p->batch; b++) {
    const float* xb = (const float*)x->data + b * in_size;
    float* yb = (float*)sl_out(m, n, 0)->data + b * out_size;
    if (p->spmm != NULL)
      p->spmm->fn(w->sparse, bias, out_pixels, xb, yb, &p->act);
    else if (p->gemm != NULL)
      p->gemm->fn(w->data, bias, p->s.out_c, p->s.in_c, out_pixels, xb, yb, &p->act);
    else
      p->conv->fn(&p->s, w->data, bias, xb, yb, &p->act);
  }
}

const sl_op_def_t sl_op_conv2d = {"CONV2D", 2, 3, prepare, run};
