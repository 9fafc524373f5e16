/* LANDMARKS_TO_TRANSFORM_MATRIX (MediaPipe's Landmarks2TransformMatrix, version 2): per batch,
 * landmarks [N, D] (x, y first) -> the 4x4 matrix that maps an output pixel of a crop to the
 * landmarks' frame. The crop is rotated by r = target_rotation - atan2(right - left), centred on
 * the box of `subset` in that rotated frame, and covers scale_x / scale_y times the box:
 * M = shift(centre) * rotation(-r) * scale(scale * box / output size) * shift(-output size / 2).
 * Float arithmetic in MediaPipe's order (products as separate statements: no contraction), so
 * the result is the framework's to the rounding of sinf / cosf. */
#include <math.h>

#include "op.h"

typedef struct {
  size_t batch, landmarks, dims; /* N, D */
  int32_t left, right;
  float target_rotation, scale_x, scale_y;
  int32_t output_height, output_width;
  int32_t* subset;
  uint32_t subset_len;
} l2m_params_t;

static sl_status_t expect_index(sl_model_t* m, const sl_node_t* n, const char* what, int32_t index, size_t count) {
  if (index < 0 || (size_t)index >= count)
    return sl_node_fail(m, n, "%s landmark %d is out of range: the input has %zu landmarks", what, index, count);
  return SL_OK;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  l2m_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "landmarks", 3);
  if (st == SL_OK) st = sl_expect_transform_matrices(m, n, y, "output", x->shape[0]);
  if (st == SL_OK) st = sl_expect_batch_only(m, n);
  if (st != SL_OK) return st;
  const sl_fb_table_t* o = &n->options;
  sl_fb_vec_t subset = sl_landmarks_to_transform_matrix_options_subset(fb, o);
  p->left = sl_landmarks_to_transform_matrix_options_left_index(fb, o);
  p->right = sl_landmarks_to_transform_matrix_options_right_index(fb, o);
  p->target_rotation = sl_landmarks_to_transform_matrix_options_target_rotation(fb, o);
  p->output_height = sl_landmarks_to_transform_matrix_options_output_height(fb, o);
  p->output_width = sl_landmarks_to_transform_matrix_options_output_width(fb, o);
  p->scale_x = sl_landmarks_to_transform_matrix_options_scale_x(fb, o);
  p->scale_y = sl_landmarks_to_transform_matrix_options_scale_y(fb, o);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (x->shape[2] < 2)
    return sl_node_fail(m, n, "landmarks (%s) have %d values each: x and y are needed", x->name, x->shape[2]);
  p->landmarks = (size_t)x->shape[1];
  p->dims = (size_t)x->shape[2];
  p->batch = (size_t)x->shape[0];
  if ((st = expect_index(m, n, "left", p->left, p->landmarks)) != SL_OK) return st;
  if ((st = expect_index(m, n, "right", p->right, p->landmarks)) != SL_OK) return st;
  if (subset.len == 0) return sl_node_fail(m, n, "the subset of landmarks is empty");
  if (p->output_height < 1 || p->output_width < 1)
    return sl_node_fail(m, n, "output size %d x %d must be at least 1 x 1", p->output_width, p->output_height);
  if (!(p->scale_x > 0.0f) || !(p->scale_y > 0.0f) || isinf(p->scale_x) || isinf(p->scale_y))
    return sl_node_fail(m, n, "scale %g x %g must be positive and finite", (double)p->scale_x, (double)p->scale_y);
  if (!isfinite(p->target_rotation))
    return sl_node_fail(m, n, "target rotation %g must be finite", (double)p->target_rotation);
  if (p->subset == NULL) {
    p->subset = sl_model_alloc(m, (size_t)subset.len * sizeof(int32_t));
    if (p->subset == NULL) return SL_ERROR_OUT_OF_MEMORY;
    p->subset_len = subset.len;
    for (uint32_t i = 0; i < subset.len; i++) {
      p->subset[i] = sl_fb_vec_i32(fb, subset, i);
      if ((st = expect_index(m, n, "subset", p->subset[i], p->landmarks)) != SL_OK) return st;
    }
  }
  return SL_OK;
}

/* c = a * b, each sum from 0 in k order as MediaPipe's Mat4. */
static void mat4_mul(const float* a, const float* b, float* c) {
  for (int r = 0; r < 4; r++)
    for (int col = 0; col < 4; col++) {
      float sum = 0.0f;
      for (int k = 0; k < 4; k++) {
        float product = a[r * 4 + k] * b[k * 4 + col];
        sum += product;
      }
      c[r * 4 + col] = sum;
    }
}

/* (cos * u) + (-sin * v): a rotated coordinate, rounded as MediaPipe's Mat3 * float3. */
static float rotate(float cosine, float sine, float u, float v) {
  float a = cosine * u, b = -sine * v;
  return a + b;
}

static void transform_matrix(const l2m_params_t* p, const float* lm, float* out) {
  size_t d = p->dims;
  const float *left = lm + (size_t)p->left * d, *right = lm + (size_t)p->right * d;
  float r = p->target_rotation - atan2f(right[1] - left[1], right[0] - left[0]);
  float c = cosf(r), s = sinf(r);
  float max_x = 0.0f, max_y = 0.0f, min_x = 0.0f, min_y = 0.0f;
  for (uint32_t i = 0; i < p->subset_len; i++) {
    const float* point = lm + (size_t)p->subset[i] * d;
    float u = rotate(c, s, point[0], point[1]), v = rotate(s, -c, point[0], point[1]);
    if (i == 0 || max_x < u) max_x = u;
    if (i == 0 || max_y < v) max_y = v;
    if (i == 0 || min_x > u) min_x = u;
    if (i == 0 || min_y > v) min_y = v;
  }
  float width = max_x - min_x, height = max_y - min_y;
  float mid_x = (min_x + max_x) / 2.0f, mid_y = (min_y + max_y) / 2.0f;
  float ci = cosf(-r), si = sinf(-r);
  float centre_x = rotate(ci, si, mid_x, mid_y), centre_y = rotate(si, -ci, mid_x, mid_y);
  float scale_x = p->scale_x * width / (float)p->output_width;
  float scale_y = p->scale_y * height / (float)p->output_height;
  float shift_x = (float)(-1.0 * (p->output_width / 2.0)), shift_y = (float)(-1.0 * (p->output_height / 2.0));
  const float shift[16] = {1, 0, 0, centre_x, 0, 1, 0, centre_y, 0, 0, 1, 0, 0, 0, 0, 1};
  const float rotation[16] = {ci, -si, 0, 0, si, ci, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  const float scale[16] = {scale_x, 0, 0, 0, 0, scale_y, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  const float shift2[16] = {1, 0, 0, shift_x, 0, 1, 0, shift_y, 0, 0, 1, 0, 0, 0, 0, 1};
  const float identity[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  float t[16], u[16];
  mat4_mul(identity, shift, t);
  mat4_mul(t, rotation, u);
  mat4_mul(u, scale, t);
  mat4_mul(t, shift2, out);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const l2m_params_t* p = n->params;
  const float* x = sl_in(m, n, 0)->data;
  float* y = sl_out(m, n, 0)->data;
  for (size_t b = 0; b < p->batch; b++) transform_matrix(p, x + b * p->landmarks * p->dims, y + b * 16);
}

static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  ((l2m_params_t*)n->params)->batch = (size_t)sl_in(m, n, 0)->shape[0];
  return SL_OK;
}

const sl_op_def_t sl_op_landmarks_to_transform_matrix = {SL_OP_SCHEMA(LANDMARKS_TO_TRANSFORM_MATRIX), 1, 1, prepare,
                                                         run, resize};
