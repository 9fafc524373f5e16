/* Depthwise convolution (groups == channels, no dilation, any kernel size and
 * stride) on NCHW data. Each channel is copied into a zero-padded plane split
 * into stride_h x stride_w phases: output (oy, ox) and tap (ky, kx) then read
 * phase (ky % sh, kx % sw) at (oy + ky / sh, ox + kx / sw), so with rows of
 * row_len floats every tap is one fixed offset from the flat output index and
 * the microkernel is a 1-D correlation over full vectors. The flat result has
 * row_len - out_w junk columns per row, dropped when copied to the output. */
#include <string.h>

#include "depthwise.h"

static uint32_t ceil_div(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

sl_status_t sl_depthwise_prepare(sl_model_t* m, sl_node_t* n, sl_depthwise_t* d, const sl_conv2d_shape_t* s,
                                 const float* weights, const float* bias, const sl_activation_t* act) {
  d->s = *s;
  d->k = sl_op_kernel(m, SL_FAMILY_dwconv, 0);
  d->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  d->weights = weights;
  d->bias = bias;
  d->post = sl_activation_split(act, &d->mm);
  /* The padded extent (out - 1) * stride + kernel is at most input + paddings < 2^32. */
  d->pad_h = (s->out_h - 1) * s->stride_h + s->kernel_h;
  d->pad_w = (s->out_w - 1) * s->stride_w + s->kernel_w;
  /* A padding past the padded extent (a stride larger than the input) places no input row or
   * column; clamping it keeps fill_planes' copy and zeroing inside each phase. */
  if (d->s.pad_top > d->pad_h) d->s.pad_top = d->pad_h;
  if (d->s.pad_left > d->pad_w) d->s.pad_left = d->pad_w;
  d->row_len = ceil_div(d->pad_w, s->stride_w);
  /* Tap offsets index the planes with 32 bits, so every phase together must stay below 2^32 floats. */
  size_t phases = (size_t)s->stride_h * s->stride_w, planes, scratch;
  d->count = (size_t)(s->out_h - 1) * d->row_len + s->out_w; /* <= phase_stride: exact once that fits */
  if (!sl_size_mul(ceil_div(d->pad_h, s->stride_h), d->row_len, &d->phase_stride) ||
      !sl_size_mul(phases, d->phase_stride, &planes) || planes > UINT32_MAX ||
      !sl_size_add(planes, d->count, &scratch) || !sl_size_mul(scratch, sizeof(float), &scratch))
    return sl_node_fail(m, n, "the padded input plane (%u x %u, stride %u x %u) is too large", d->pad_h, d->pad_w,
                        s->stride_h, s->stride_w);
  d->taps = s->kernel_h * s->kernel_w; /* a channel's weights: below 2^31 */
  size_t tap_bytes;
  if (!sl_size_mul(d->taps, sizeof(uint32_t), &tap_bytes))
    return sl_node_fail(m, n, "%u taps do not fit in memory", d->taps);
  d->tap_offset = sl_model_alloc(m, tap_bytes);
  if (d->tap_offset == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc has said why */
  for (uint32_t ky = 0; ky < s->kernel_h; ky++)
    for (uint32_t kx = 0; kx < s->kernel_w; kx++) {
      size_t phase = (ky % s->stride_h) * s->stride_w + kx % s->stride_w;
      d->tap_offset[ky * s->kernel_w + kx] =
          (uint32_t)(phase * d->phase_stride + (ky / s->stride_h) * d->row_len + kx / s->stride_w);
    }
  sl_reserve_scratch(m, n, 0, scratch);
  n->kernel = d->k->name;
  return SL_OK;
}

/* Phase index range [first, end) whose padded position i * s + q lies in [lo, hi). */
static void covered(uint32_t lo, uint32_t hi, uint32_t q, uint32_t s, uint32_t* first, uint32_t* end) {
  *first = lo > q ? ceil_div(lo - q, s) : 0;
  *end = hi > q ? ceil_div(hi - q, s) : 0;
}

/* Input column ix goes to padded column ix + pad_left; its phase is that mod 2. */
static void deinterleave2(const float* in, uint32_t cols, float* row, size_t phase_stride, uint32_t pad_left) {
  float* even = row + (pad_left % 2 == 0 ? 0 : phase_stride) + pad_left / 2;
  float* odd = row + (pad_left % 2 == 0 ? phase_stride : 0) + (pad_left + 1) / 2;
  uint32_t i = 0;
  for (; 2 * i + 1 < cols; i++) {
    even[i] = in[2 * i];
    odd[i] = in[2 * i + 1];
  }
  if (2 * i < cols) even[i] = in[2 * i];
}

/* Zeroes what the copy leaves in each phase: its padding rows and columns. */
static void zero_padding(const sl_depthwise_t* d, uint32_t rows, uint32_t cols, float* planes) {
  const sl_conv2d_shape_t* s = &d->s;
  uint32_t sh = s->stride_h, sw = s->stride_w;
  for (uint32_t qy = 0; qy < sh; qy++) {
    uint32_t r0, r1;
    covered(s->pad_top, s->pad_top + rows, qy, sh, &r0, &r1);
    for (uint32_t qx = 0; qx < sw; qx++) {
      float* phase = planes + (qy * sw + qx) * d->phase_stride;
      uint32_t c0, c1;
      covered(s->pad_left, s->pad_left + cols, qx, sw, &c0, &c1);
      memset(phase, 0, (size_t)r0 * d->row_len * sizeof(float));
      memset(phase + (size_t)r1 * d->row_len, 0, (d->phase_stride - (size_t)r1 * d->row_len) * sizeof(float));
      for (uint32_t r = r0; r < r1; r++) {
        float* row = phase + (size_t)r * d->row_len;
        memset(row, 0, c0 * sizeof(float));
        memset(row + c1, 0, (d->row_len - c1) * sizeof(float));
      }
    }
  }
}

static void fill_planes(const sl_depthwise_t* d, const float* x, float* planes) {
  const sl_conv2d_shape_t* s = &d->s;
  uint32_t sh = s->stride_h, sw = s->stride_w;
  uint32_t rows = s->in_h < d->pad_h - s->pad_top ? s->in_h : d->pad_h - s->pad_top;
  uint32_t cols = s->in_w < d->pad_w - s->pad_left ? s->in_w : d->pad_w - s->pad_left;
  size_t plane_floats = (size_t)sh * sw * d->phase_stride;
  if (plane_floats <= 4096) /* small planes are cheaper to clear in one go */
    memset(planes, 0, plane_floats * sizeof(float));
  else
    zero_padding(d, rows, cols, planes);
  for (uint32_t iy = 0; iy < rows; iy++) {
    uint32_t py = iy + s->pad_top;
    float* row = planes + (size_t)(py % sh) * sw * d->phase_stride + (size_t)(py / sh) * d->row_len;
    const float* in = x + (size_t)iy * s->in_w;
    if (sw == 1) {
      memcpy(row + s->pad_left, in, cols * sizeof(float));
    } else if (sw == 2) {
      deinterleave2(in, cols, row, d->phase_stride, s->pad_left);
    } else {
      for (uint32_t ix = 0; ix < cols; ix++) {
        uint32_t px = ix + s->pad_left;
        row[(px % sw) * d->phase_stride + px / sw] = in[ix];
      }
    }
  }
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const sl_depthwise_t* d;
  const float* x;
  float* y;
} job_t;

/* Task = (image, channel). */
static void channel_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const sl_depthwise_t* d = j->d;
  const sl_conv2d_shape_t* s = &d->s;
  size_t ch = task % s->in_c;
  const float* x = j->x + task * s->in_h * s->in_w;
  float* y = j->y + task * s->out_h * s->out_w;
  float* planes = sl_scratch_thread(j->m, j->n, thread);
  float* flat = planes + (size_t)s->stride_h * s->stride_w * d->phase_stride;
  fill_planes(d, x, planes);
  float bias = d->bias != NULL ? d->bias[ch] : 0.0f;
  d->k->fn.dwconv(d->count, d->taps, d->tap_offset, planes, d->weights + ch * d->taps, bias, flat, &d->mm);
  for (uint32_t oy = 0; oy < s->out_h; oy++) {
    float* out = y + (size_t)oy * s->out_w;
    memcpy(out, flat + (size_t)oy * d->row_len, s->out_w * sizeof(float));
    if (d->post.type != SL_ACT_NONE) d->vunary->fn.vunary(&d->post, out, out, s->out_w);
  }
}

void sl_depthwise_run(const sl_model_t* m, const sl_node_t* n, const sl_depthwise_t* d, const float* x, float* y,
                      size_t batch) {
  job_t j = {m, n, d, x, y};
  sl_parallel_for(m, batch * d->s.in_c, channel_task, &j);
}
