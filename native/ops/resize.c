/* RESIZE_BILINEAR and RESIZE_NEAREST (NCHW) to the output's height and width. Prepare maps every
 * output row and column to its source (ResizeCoordinates, in each framework's float arithmetic so
 * nearest picks the same pixel at ties): bilinear keeps the two neighbours and the weight, nearest
 * one index. TFLITE mode samples as TFLite: source y * scale (or (y + 0.5) * scale - 0.5 with
 * half-pixel centers), scale in / out (or (in - 1) / (out - 1) with aligned corners), neighbours
 * clamped to the input; nearest rounds as its RESIZE_NEAREST_NEIGHBOR. */
#include <math.h>
#include <string.h>

#include "op.h"

typedef struct {
  size_t planes; /* N * C */
  int32_t in_h, in_w, out_h, out_w;
  int32_t* lo; /* per output row then column: the (lower) source index; bilinear: upper, weight */
  int32_t* hi;
  float* frac;
  sl_bilinear_cols_t cols; /* bilinear: the columns as the row kernel takes them */
  const sl_ukernel_t* row;
} resize_params_t;

typedef struct {
  uint8_t mode, nearest_mode;
  bool align, half; /* TFLITE mode */
} sampling_t;

/* Clamps a source coordinate to [0, in - 1] before converting: near 2^31 (or for a NaN from a
 * hostile scale) a float cannot be converted safely. */
static int32_t clamp_index(double v, int32_t in) {
  if (!(v >= 0.0)) return 0;
  return v > (double)(in - 1) ? in - 1 : (int32_t)v;
}

/* The source coordinate of output index o in the ONNX modes; scale is out / in or the file's. */
static float onnx_source(uint8_t mode, int32_t o, int32_t in, int32_t out, float scale) {
  float x = (float)o;
  switch (mode) {
    case SL_RESIZE_COORDINATES_ALIGN_CORNERS: return out == 1 ? 0.0f : x * (float)(in - 1) / (float)(out - 1);
    case SL_RESIZE_COORDINATES_ASYMMETRIC: return x / scale;
    case SL_RESIZE_COORDINATES_PYTORCH_HALF_PIXEL: return out == 1 ? 0.0f : (x + 0.5f) / scale - 0.5f;
    default: return (x + 0.5f) / scale - 0.5f; /* HALF_PIXEL */
  }
}

static void bilinear_axis(const sampling_t* s, int32_t out, int32_t in, float file_scale, int32_t* lo, int32_t* hi,
                          float* frac) {
  if (s->mode == SL_RESIZE_COORDINATES_TFLITE) {
    float scale = (s->align && out > 1) ? (float)(in - 1) / (float)(out - 1) : (float)in / (float)out;
    for (int32_t o = 0; o < out; o++) {
      float src = s->half ? ((float)o + 0.5f) * scale - 0.5f : (float)o * scale;
      lo[o] = clamp_index(floorf(src), in);
      hi[o] = clamp_index(ceilf(src), in);
      frac[o] = src - (float)lo[o];
    }
    return;
  }
  float scale = file_scale > 0.0f ? file_scale : (float)out / (float)in;
  for (int32_t o = 0; o < out; o++) {
    float src = onnx_source(s->mode, o, in, out, scale);
    src = !(src > 0.0f) ? 0.0f : src > (float)(in - 1) ? (float)(in - 1) : src;
    lo[o] = clamp_index(floorf(src), in);
    hi[o] = lo[o] + 1 < in ? lo[o] + 1 : in - 1;
    frac[o] = src - (float)lo[o];
  }
}

static void nearest_axis(const sampling_t* s, int32_t out, int32_t in, float file_scale, int32_t* idx) {
  for (int32_t o = 0; o < out; o++) {
    double v;
    if (s->mode == SL_RESIZE_COORDINATES_TFLITE) {
      float scale = (s->align && out > 1) ? (float)(in - 1) / (float)(out - 1) : (float)in / (float)out;
      float src = ((float)o + (s->half ? 0.5f : 0.0f)) * scale;
      v = s->align ? roundf(src) : floorf(src);
    } else if (s->mode == SL_RESIZE_COORDINATES_TORCH_NEAREST ||
               s->mode == SL_RESIZE_COORDINATES_TORCH_NEAREST_EXACT) {
      float scale = file_scale > 0.0f ? file_scale : (float)in / (float)out;
      if (s->mode == SL_RESIZE_COORDINATES_TORCH_NEAREST_EXACT)
        v = floorf((float)(((double)o + 0.5) * (double)scale));
      else if (out == in || (int64_t)out == 2 * (int64_t)in) /* torch's shortcuts, whatever the scale */
        v = out == in ? o : o / 2;
      else
        v = floorf((float)o * scale);
    } else {
      float src = onnx_source(s->mode, o, in, out, file_scale > 0.0f ? file_scale : (float)out / (float)in);
      switch (s->nearest_mode) {
        case SL_RESIZE_NEAREST_MODE_ROUND_PREFER_FLOOR:
          v = src - floorf(src) == 0.5f ? floorf(src) : roundf(src);
          break;
        case SL_RESIZE_NEAREST_MODE_ROUND_PREFER_CEIL: v = roundf(src); break;
        case SL_RESIZE_NEAREST_MODE_FLOOR: v = floorf(src); break;
        default: v = ceilf(src); break;
      }
    }
    idx[o] = clamp_index(v, in);
  }
}

/* The columns as the row kernel takes them (sl_bilinear_pack). */
static sl_status_t block_columns(sl_model_t* m, sl_node_t* node, resize_params_t* p) {
  const size_t n = (size_t)p->out_w, blocks = (n + SL_BILINEAR_BLOCK - 1) / SL_BILINEAR_BLOCK;
  const size_t padded = blocks * SL_BILINEAR_BLOCK;
  size_t ints, floats;
  if (!sl_size_mul(padded, 3 * sizeof(int32_t), &ints) || !sl_size_mul(padded, sizeof(float), &floats))
    return sl_node_fail(m, node, "column tables for %d output columns do not fit in memory", p->out_w);
  int32_t* base = sl_model_alloc(m, ints); /* blocks <= padded */
  float* frac = sl_model_alloc(m, floats);
  if (base == NULL || frac == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t *lo = base + blocks, *hi = lo + padded;
  sl_bilinear_pack(n, p->lo + p->out_h, p->hi + p->out_h, p->frac + p->out_h, base, lo, hi, frac);
  p->cols = (sl_bilinear_cols_t){base, lo, hi, frac};
  p->row = sl_op_kernel(m, SL_FAMILY_bilinear_row, 0);
  return SL_OK;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  resize_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  const sl_fb_table_t* o = &n->options;
  sampling_t s = {sl_resize_options_coordinates(fb, o), sl_resize_options_nearest_mode(fb, o),
                  sl_resize_options_align_corners(fb, o), sl_resize_options_half_pixel_centers(fb, o)};
  float scale_h = sl_resize_options_scale_h(fb, o), scale_w = sl_resize_options_scale_w(fb, o);
  if (fb->error) return SL_OK; /* reported by the loader */
  bool nearest = n->type == SL_OP_RESIZE_NEAREST;
  if (s.mode >= SL_RESIZE_COORDINATES_COUNT) return sl_node_fail(m, n, "unknown coordinate mode %u", s.mode);
  if (s.nearest_mode >= SL_RESIZE_NEAREST_MODE_COUNT)
    return sl_node_fail(m, n, "unknown nearest mode %u", s.nearest_mode);
  if (!nearest && (s.mode == SL_RESIZE_COORDINATES_TORCH_NEAREST || s.mode == SL_RESIZE_COORDINATES_TORCH_NEAREST_EXACT))
    return sl_node_fail(m, n, "coordinate mode %s is for RESIZE_NEAREST", sl_resize_coordinates_name(s.mode));
  if (!(scale_h >= 0.0f && scale_w >= 0.0f && scale_h < INFINITY && scale_w < INFINITY))
    return sl_node_fail(m, n, "scales %g x %g must be finite and >= 0", (double)scale_h, (double)scale_w);
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", 4);
  if (st == SL_OK) st = sl_expect_f32(m, n, y, "output", 4);
  if (st == SL_OK) st = sl_expect_batch_only(m, n);
  if (st != SL_OK) return st;
  if (x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
    return sl_node_fail(m, n, "input and output differ in batch or channels");
  p->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  p->in_h = x->shape[2];
  p->in_w = x->shape[3];
  p->out_h = y->shape[2];
  p->out_w = y->shape[3];
  size_t bytes; /* one 4-byte entry (int32 or float) per output row and column: up to 2^33 */
  if (!sl_size_mul((size_t)p->out_h + (size_t)p->out_w, sizeof(float), &bytes))
    return sl_node_fail(m, n, "sampling tables for %d x %d outputs do not fit in memory", p->out_h, p->out_w);
  p->lo = sl_model_alloc(m, bytes);
  if (p->lo == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc said why */
  if (nearest) {
    nearest_axis(&s, p->out_h, p->in_h, scale_h, p->lo);
    nearest_axis(&s, p->out_w, p->in_w, scale_w, p->lo + p->out_h);
    return SL_OK;
  }
  p->hi = sl_model_alloc(m, bytes);
  p->frac = sl_model_alloc(m, bytes);
  if (p->hi == NULL || p->frac == NULL) return SL_ERROR_OUT_OF_MEMORY;
  bilinear_axis(&s, p->out_h, p->in_h, scale_h, p->lo, p->hi, p->frac);
  bilinear_axis(&s, p->out_w, p->in_w, scale_w, p->lo + p->out_h, p->hi + p->out_h, p->frac + p->out_h);
  if ((st = block_columns(m, n, p)) != SL_OK) return st;
  size_t rows_bytes; /* two source rows for each thread */
  if (!sl_size_mul((size_t)p->out_w, 2 * sizeof(float), &rows_bytes))
    return sl_node_fail(m, n, "row buffers for %d output columns do not fit in memory", p->out_w);
  sl_reserve_scratch(m, n, 0, rows_bytes);
  return SL_OK;
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const resize_params_t* p;
  const float* x;
  float* y;
} job_t;

/* One source row interpolated along the output's columns. */
static void bilinear_row(const resize_params_t* p, const float* src, float* out) {
  p->row->fn.bilinear_row((size_t)p->out_w, src, (size_t)p->in_w, &p->cols, out);
}

/* Separable: each source row is interpolated along the columns once, into the thread's two row
 * buffers (upper and lower neighbour; sources only move down, so a buffer is reused or swapped),
 * then every output row is one contiguous blend of the two. */
static void bilinear_task(void* ctx, size_t plane, size_t thread) {
  const job_t* j = ctx;
  const resize_params_t* p = j->p;
  const float* x = j->x + plane * (size_t)p->in_h * (size_t)p->in_w;
  float* y = j->y + plane * (size_t)p->out_h * (size_t)p->out_w;
  float* top = sl_scratch_thread(j->m, j->n, thread);
  float* bottom = top + p->out_w;
  int32_t top_row = -1, bottom_row = -1;
  for (int32_t oy = 0; oy < p->out_h; oy++) {
    const int32_t lo = p->lo[oy], hi = p->hi[oy];
    if (lo != top_row && lo == bottom_row) {
      float* t = top;
      top = bottom;
      bottom = t;
      bottom_row = top_row;
      top_row = lo;
    } else if (lo != top_row) {
      bilinear_row(p, x + (size_t)lo * (size_t)p->in_w, top);
      top_row = lo;
    }
    if (hi != bottom_row && hi != lo) {
      bilinear_row(p, x + (size_t)hi * (size_t)p->in_w, bottom);
      bottom_row = hi;
    }
    const float* b = hi == lo ? top : bottom;
    const float dy = p->frac[oy];
    float* row = y + (size_t)oy * (size_t)p->out_w;
    for (int32_t ox = 0; ox < p->out_w; ox++) row[ox] = top[ox] * (1.0f - dy) + b[ox] * dy;
  }
}

/* Output rows with the same source row as the row before (upsampling) are copies of it. */
static void nearest_task(void* ctx, size_t plane, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const resize_params_t* p = j->p;
  size_t ow = (size_t)p->out_w;
  const float* x = j->x + plane * (size_t)p->in_h * (size_t)p->in_w;
  float* y = j->y + plane * (size_t)p->out_h * ow;
  const int32_t* cols = p->lo + p->out_h;
  for (int32_t oy = 0; oy < p->out_h; oy++) {
    float* row = y + (size_t)oy * ow;
    if (oy > 0 && p->lo[oy] == p->lo[oy - 1]) {
      memcpy(row, row - ow, ow * sizeof(float));
      continue;
    }
    const float* src = x + (size_t)p->lo[oy] * (size_t)p->in_w;
    for (size_t ox = 0; ox < ow; ox++) row[ox] = src[cols[ox]];
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  job_t j = {m, n, n->params, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, j.p->planes, n->type == SL_OP_RESIZE_NEAREST ? nearest_task : bilinear_task, &j);
}

/* A new batch (sl_expect_batch_only): the sampling tables stay. */
static sl_status_t resize(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  const sl_tensor_t* x = sl_in(m, n, 0);
  ((resize_params_t*)n->params)->planes = (size_t)x->shape[0] * (size_t)x->shape[1];
  return SL_OK;
}

const sl_op_def_t sl_op_resize_bilinear = {SL_OP_SCHEMA(RESIZE_BILINEAR), 1, 1, prepare, run, resize};
const sl_op_def_t sl_op_resize_nearest = {SL_OP_SCHEMA(RESIZE_NEAREST), 1, 1, prepare, run, resize};
