/* TRANSFORM_TENSOR_BILINEAR (MediaPipe's TransformTensorBilinear, version 2): per batch, output
 * pixel (ox, oy) samples x bilinearly at (u, v) = the first two rows of the 4x4 matrix applied to
 * (ox + 0.5, oy + 0.5, 0, 1), less 0.5 (pixel centres); a sample with u outside [0, W - 1] or v
 * outside [0, H - 1] is 0. NCHW. Float and double arithmetic in MediaPipe's order, so outputs are
 * the framework's. */
#include <math.h>

#include "op.h"

typedef struct {
  size_t batch, channels, in_h, in_w, out_h, out_w;
} ttb_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  ttb_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *matrix = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 4);
  if (st == SL_OK) st = sl_expect_transform_matrices(m, n, matrix, "matrix", x->shape[0]);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", 4);
  if (st == SL_OK) st = sl_expect_batch_only(m, n);
  if (st != SL_OK) return st;
  if (y->shape[0] != x->shape[0] || y->shape[1] != x->shape[1])
    return sl_node_fail(m, n, "output (%s) is [%d, %d, ...]: it keeps the input's batch and channels [%d, %d]",
                        y->name, y->shape[0], y->shape[1], x->shape[0], x->shape[1]);
  p->batch = (size_t)x->shape[0];
  p->channels = (size_t)x->shape[1];
  p->in_h = (size_t)x->shape[2];
  p->in_w = (size_t)x->shape[3];
  p->out_h = (size_t)y->shape[2];
  p->out_w = (size_t)y->shape[3];
  return SL_OK;
}

/* MediaPipe's coordinate: ((m0 * ox + m1 * oy) + m2 * 0) + m3, in float. */
static float coordinate(const float* row, float m3, float ox, float oy) {
  float a = row[0] * ox, b = row[1] * oy, c = row[2] * 0.0f;
  float sum = a + b;
  sum += c;
  return sum + m3;
}

/* (1 - w) * a + w * b as MediaPipe rounds it: the first product in double, the second in float. */
static float mix(float w, float a, float b) {
  float second = w * b;
  return (float)((1.0 - (double)w) * (double)a + (double)second);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const ttb_params_t* p = n->params;
  const float *x = sl_in(m, n, 0)->data, *matrix = sl_in(m, n, 1)->data;
  float* y = sl_out(m, n, 0)->data;
  size_t in_plane = p->in_h * p->in_w, out_plane = p->out_h * p->out_w;
  for (size_t b = 0; b < p->batch; b++) {
    const float* t = matrix + b * 16;
    /* The pixel-centre correction folded into the translation, in double as MediaPipe does. */
    float x3 = (float)((double)t[3] + ((double)t[0] * 0.5 + (double)t[1] * 0.5 - 0.5));
    float y3 = (float)((double)t[7] + ((double)t[4] * 0.5 + (double)t[5] * 0.5 - 0.5));
    const float* image = x + b * p->channels * in_plane;
    float* out = y + b * p->channels * out_plane;
    for (size_t oy = 0; oy < p->out_h; oy++)
      for (size_t ox = 0; ox < p->out_w; ox++) {
        float u = coordinate(t, x3, (float)ox, (float)oy), v = coordinate(t + 4, y3, (float)ox, (float)oy);
        size_t at = oy * p->out_w + ox;
        if (!(u >= 0.0f && u <= (float)(p->in_w - 1) && v >= 0.0f && v <= (float)(p->in_h - 1))) {
          for (size_t c = 0; c < p->channels; c++) out[c * out_plane + at] = 0.0f;
          continue;
        }
        float fu = floorf(u), fv = floorf(v);
        size_t col = (size_t)fu, row = (size_t)fv; /* u <= W - 1, v <= H - 1: in range */
        bool right_in = col + 1 < p->in_w, lower_in = row + 1 < p->in_h;
        float wu = u - fu, wv = v - fv;
        for (size_t c = 0; c < p->channels; c++) {
          const float* q = image + c * in_plane + row * p->in_w + col;
          float q11 = q[0], q21 = right_in ? q[1] : 0.0f;
          float q12 = lower_in ? q[p->in_w] : 0.0f, q22 = right_in && lower_in ? q[p->in_w + 1] : 0.0f;
          float upper = mix(wu, q11, q21), lower = mix(wu, q12, q22);
          out[c * out_plane + at] = mix(wv, upper, lower);
        }
      }
  }
}

static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  ((ttb_params_t*)n->params)->batch = (size_t)sl_in(m, n, 0)->shape[0];
  return SL_OK;
}

const sl_op_def_t sl_op_transform_tensor_bilinear = {SL_OP_SCHEMA(TRANSFORM_TENSOR_BILINEAR), 2, 2, prepare, run,
                                                     resize};
