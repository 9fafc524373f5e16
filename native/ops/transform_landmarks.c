/* TRANSFORM_LANDMARKS (MediaPipe's TransformLandmarks, version 2): per batch, landmarks [N, D]
 * (D 2 or 3) -> x' = m0 x + m1 y + m3, y' = m4 x + m5 y + m7 by the first two rows of a 4x4
 * matrix (z read as 0), z copied; float sums in MediaPipe's order. */
#include "op.h"

typedef struct {
  size_t batch, landmarks, dims;
} tl_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  tl_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *matrix = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "landmarks", 3);
  if (st == SL_OK) st = sl_expect_transform_matrices(m, n, matrix, "matrix", x->shape[0]);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", 3);
  if (st == SL_OK) st = sl_expect_batch_only(m, n);
  if (st != SL_OK) return st;
  if (x->shape[2] != 2 && x->shape[2] != 3)
    return sl_node_fail(m, n, "landmarks (%s) have %d values each: 2 (x, y) or 3 (x, y, z) are expected", x->name,
                        x->shape[2]);
  if ((st = sl_expect_shape(m, n, y, "output", 3, x->shape)) != SL_OK) return st;
  p->batch = (size_t)x->shape[0];
  p->landmarks = (size_t)x->shape[1];
  p->dims = (size_t)x->shape[2];
  return SL_OK;
}

/* ((r0 * u + r1 * v) + r2 * 0) + r3 * 1, each product rounded (no contraction). */
static float transformed(const float* row, float u, float v) {
  float a = row[0] * u, b = row[1] * v, c = row[2] * 0.0f;
  float sum = a + b;
  sum += c;
  return sum + row[3];
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const tl_params_t* p = n->params;
  const float *x = sl_in(m, n, 0)->data, *matrix = sl_in(m, n, 1)->data;
  float* y = sl_out(m, n, 0)->data;
  size_t d = p->dims;
  for (size_t b = 0; b < p->batch; b++) {
    const float* t = matrix + b * 16;
    for (size_t i = 0; i < p->landmarks; i++) {
      const float* in = x + (b * p->landmarks + i) * d;
      float* out = y + (b * p->landmarks + i) * d;
      float u = transformed(t, in[0], in[1]), v = transformed(t + 4, in[0], in[1]);
      out[0] = u;
      out[1] = v;
      if (d == 3) out[2] = in[2];
    }
  }
}

static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  ((tl_params_t*)n->params)->batch = (size_t)sl_in(m, n, 0)->shape[0];
  return SL_OK;
}

const sl_op_def_t sl_op_transform_landmarks = {SL_OP_SCHEMA(TRANSFORM_LANDMARKS), 2, 2, prepare, run, resize};
