/* Convolution as one gemm whose columns are taps (XNNPACK's indirect convolution, with offsets
 * instead of pointers): each input channel is copied once into a zero-padded plane split into
 * stride_h x stride_w phases, so output (oy, ox) and tap (ky, kx) read phase
 * (ky*dh % sh, kx*dw % sw) at row oy + ky*dh / sh, column ox + kx*dw / sw. With rows of row_len
 * floats every tap is then one fixed offset from the flat output index oy * row_len + ox, and
 * the gemm reads the planes in place: no patch matrix is gathered. The flat outputs carry
 * row_len - out_w junk columns per row, dropped when each task's block is copied out. */
#include <string.h>

#include "implicit_conv.h"

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* Padded extents in 64 bits (out_h * stride can pass 2^32), then whether they fit. */
typedef struct {
  uint64_t row_len, phase_rows, plane, group_planes;
} extents_t;

static extents_t extents(const sl_conv2d_shape_t* s) {
  uint64_t pad_h = (uint64_t)(s->out_h - 1) * s->stride_h + (uint64_t)(s->kernel_h - 1) * s->dilation_h + 1;
  uint64_t pad_w = (uint64_t)(s->out_w - 1) * s->stride_w + (uint64_t)(s->kernel_w - 1) * s->dilation_w + 1;
  extents_t e = {ceil_div(pad_w, s->stride_w), ceil_div(pad_h, s->stride_h), 0, 0};
  e.plane = (uint64_t)s->stride_h * s->stride_w * e.phase_rows * e.row_len; /* < 2^96: checked below */
  e.group_planes = e.plane * (s->in_c / s->groups);
  return e;
}

bool sl_implicit_conv_fits(const sl_conv2d_shape_t* s) {
  /* Each factor below 2^32 keeps the products below 2^64 before the final test. */
  if ((uint64_t)s->stride_h * s->stride_w > UINT32_MAX) return false;
  extents_t e = extents(s);
  if (e.row_len > UINT32_MAX || e.phase_rows > UINT32_MAX || e.phase_rows * e.row_len > UINT32_MAX) return false;
  return e.plane <= UINT32_MAX && e.group_planes <= UINT32_MAX && e.plane * s->in_c <= SIZE_MAX / sizeof(float);
}

sl_status_t sl_implicit_conv_prepare(sl_model_t* m, sl_node_t* n, sl_implicit_conv_t* c, const sl_conv2d_shape_t* s,
                                     const float* weights, const float* bias, const sl_activation_t* act) {
  c->s = *s;
  c->gemm = sl_op_kernel(m, SL_FAMILY_gemm, 0);
  c->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  c->post = sl_activation_split(act, &c->mm);
  extents_t e = extents(s);
  c->row_len = e.row_len;
  c->phase_rows = e.phase_rows;
  c->phase_stride = e.phase_rows * e.row_len;
  c->plane = e.plane;
  c->unzip = sl_op_kernel(m, SL_FAMILY_unzip, 0);
  size_t icg = s->in_c / s->groups, ocg = s->out_c / s->groups;
  c->patch = icg * s->kernel_h * s->kernel_w; /* a weight row: below 2^31 */
  c->direct = (c->patch <= SL_IMPLICIT_CONV_DIRECT_MAX_PATCH && 3 * (size_t)s->out_w >= 2 * (size_t)c->gemm->pixels) ||
              (c->patch <= SL_IMPLICIT_CONV_DIRECT_WIDE_PATCH && s->out_w >= 2 * c->gemm->pixels);
  c->seamless = !c->direct && c->row_len == s->out_w;
  /* Whole flat rows per task (direct: output rows), about four gemm tiles' worth; where that
   * leaves fewer than four tasks a thread (a 14x14 map is two blocks), they split the output
   * channels too. */
  size_t tile = 4 * (size_t)c->gemm->pixels, row = c->direct ? s->out_w : c->row_len;
  /* Rows per block: a last block of a few rows would stream every weight again for little work
   * (ResNet-50's 28x28 -> 14x14 layer: 13 rows and 1), so the rows spread over whole blocks. */
  size_t rows = ceil_div(tile, row), blocks = s->out_h / rows > 1 ? s->out_h / rows : 1;
  rows = ceil_div(s->out_h, blocks);
  if (c->direct) {
    c->count = s->out_h;
    c->block = rows;
  } else {
    c->count = (size_t)(s->out_h - 1) * c->row_len + s->out_w;
    c->block = rows * c->row_len;
  }
  size_t tasks = s->groups * ceil_div(c->count, c->block), want = 4 * sl_op_threads(m);
  size_t panels = ceil_div(ocg, c->gemm->rows);
  c->row_chunks = tasks >= want ? 1 : ceil_div(want, tasks) < panels ? ceil_div(want, tasks) : panels;
  size_t panel_bytes, panels_bytes, offset_bytes, planes_bytes, out_bytes;
  if (!sl_gemm_pack_bytes(ocg, c->patch, c->gemm->rows, &panel_bytes) ||
      !sl_size_mul(panel_bytes, s->groups, &panels_bytes) || !sl_size_mul(c->patch, sizeof(uint32_t), &offset_bytes) ||
      !sl_size_mul(c->plane, s->in_c, &planes_bytes) || !sl_size_mul(planes_bytes, sizeof(float), &planes_bytes) ||
      !sl_size_mul(c->direct || c->seamless ? 0 : ocg, c->block, &out_bytes) || !sl_size_mul(out_bytes, sizeof(float), &out_bytes))
    return sl_node_fail(m, n, "the padded planes or packed weights of this convolution do not fit in memory");
  c->panels = sl_model_alloc(m, panels_bytes);
  c->x_offset = sl_model_alloc(m, offset_bytes);
  if (c->panels == NULL || c->x_offset == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc has said why */
  c->panel_size = panel_bytes / sizeof(float);
  for (uint32_t g = 0; g < s->groups; g++)
    sl_gemm_pack(weights + g * ocg * c->patch, bias != NULL ? bias + g * ocg : NULL, ocg, c->patch, c->gemm->rows,
                 c->panels + g * c->panel_size);
  uint32_t* offset = c->x_offset;
  for (size_t ic = 0; ic < icg; ic++)
    for (uint32_t ky = 0; ky < s->kernel_h; ky++)
      for (uint32_t kx = 0; kx < s->kernel_w; kx++) {
        size_t py = (size_t)ky * s->dilation_h, px = (size_t)kx * s->dilation_w;
        size_t phase = (py % s->stride_h) * s->stride_w + px % s->stride_w;
        *offset++ = (uint32_t)(ic * c->plane + phase * c->phase_stride + py / s->stride_h * c->row_len +
                               px / s->stride_w);
      }
  sl_reserve_scratch(m, n, planes_bytes, out_bytes);
  n->kernel = c->gemm->name;
  return SL_OK;
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const sl_implicit_conv_t* c;
  const float* x; /* one image */
  float* y;
  const float* r; /* the residual, as y */
  float* planes;
} job_t;

/* The phase indexes [*lo, *hi) below count whose input index (index * stride + q - pad) lies in
 * [0, extent): rows of row phase q, or columns of column phase q. */
static void inside(size_t pad, size_t q, size_t stride, size_t extent, size_t count, size_t* lo, size_t* hi) {
  size_t end = extent + pad;
  *hi = ceil_div(end > q ? end - q : 0, stride);
  if (*hi > count) *hi = count;
  *lo = ceil_div(pad > q ? pad - q : 0, stride);
  if (*lo > *hi) *lo = *hi;
}

/* Column stride 2: rows of one row phase split by the unzip kernel in one call into their even
 * and odd columns, written straight into the two column phases they belong to (parity p lands in
 * phase (p + pad_left) % 2 at column (p + pad_left) / 2 onward). */
static void unzip_rows(const sl_conv2d_shape_t* s, const sl_ukernel_t* unzip, size_t rows, const float* in,
                       size_t in_stride, float* phase0, float* phase1, size_t row_len) {
  size_t off[2] = {s->pad_left / 2, (s->pad_left + 1) / 2};
  float* dst[2] = {s->pad_left % 2 == 0 ? phase0 : phase1, s->pad_left % 2 == 0 ? phase1 : phase0};
  /* Input columns that land inside both rows: parity p writes ceil((n - p) / 2) floats from off[p]. */
  size_t n = s->in_w;
  if (off[0] >= row_len) n = 0;
  else if (n > 2 * (row_len - off[0])) n = 2 * (row_len - off[0]);
  if (off[1] >= row_len) n = n < 1 ? n : 1;
  else if (n > 2 * (row_len - off[1]) + 1) n = 2 * (row_len - off[1]) + 1;
  if (n > 0) unzip->fn.unzip(rows, n, in, in_stride, dst[0] + off[0], dst[1] + off[1], row_len);
}

void sl_conv2d_fill_planes(const sl_conv2d_shape_t* s, const sl_ukernel_t* unzip, const float* in, float* plane,
                           size_t row_len, size_t phase_rows, size_t phase_stride) {
  /* The padding and the columns past the input, all at once: per row it cost more than the copy
   * on small maps (RegNet's 14x14 stride-2 layers). */
  const size_t sh = s->stride_h, sw = s->stride_w, in_stride = sh * s->in_w;
  memset(plane, 0, sh * sw * phase_stride * sizeof(float));
  for (uint32_t qy = 0; qy < sh; qy++) {
    size_t r0, r1;
    inside(s->pad_top, qy, sh, s->in_h, phase_rows, &r0, &r1);
    if (r0 == r1) continue;
    const float* src = in + (r0 * sh + qy - s->pad_top) * s->in_w;
    float* rows = plane + qy * sw * phase_stride + r0 * row_len; /* phase (qy, 0) */
    if (sw == 2 && unzip != NULL) {
      unzip_rows(s, unzip, r1 - r0, src, in_stride, rows, rows + phase_stride, row_len);
      continue;
    }
    for (uint32_t qx = 0; qx < sw; qx++) {
      size_t c0, c1; /* column col holds input column col * sw + qx - pad_left */
      inside(s->pad_left, qx, sw, s->in_w, row_len, &c0, &c1);
      if (c0 == c1) continue;
      for (size_t r = 0; r < r1 - r0; r++) {
        const float* from = src + r * in_stride + (c0 * sw + qx - s->pad_left);
        float* to = rows + qx * phase_stride + r * row_len;
        if (sw == 1)
          memcpy(to + c0, from, (c1 - c0) * sizeof(float));
        else
          for (size_t col = c0; col < c1; col++) to[col] = from[(col - c0) * sw];
      }
    }
  }
}

/* Task = input channel: its phases of the padded plane. */
static void fill_task(void* ctx, size_t ic, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const sl_implicit_conv_t* c = j->c;
  const sl_conv2d_shape_t* s = &c->s;
  sl_conv2d_fill_planes(s, c->unzip, j->x + ic * s->in_h * s->in_w, j->planes + ic * c->plane, c->row_len, c->phase_rows,
                        c->phase_stride);
}

/* n outputs of output channels [r0, r1) of group g, straight into y: the gemm over the flat
 * outputs from `flat` into y's pixels from `at`. */
static void gemm_in_place(const job_t* j, size_t g, size_t flat, size_t at, size_t n, size_t r0, size_t r1) {
  const sl_implicit_conv_t* c = j->c;
  const sl_conv2d_shape_t* s = &c->s;
  size_t icg = s->in_c / s->groups, ocg = s->out_c / s->groups, pixels = (size_t)s->out_h * s->out_w;
  size_t first = g * ocg + r0; /* output channel */
  c->gemm->fn.gemm(n, r1 - r0, c->patch, j->planes + g * icg * c->plane + flat, 0, c->x_offset,
                   c->panels + g * c->panel_size + r0 * (c->patch + 1), j->y + first * pixels + at, pixels,
                   &(sl_matrix_out_t){.mm = c->mm});
}

/* The activation and epilogue on y's pixels [at, at + n) of those channels, once the gemm wrote
 * them: one call per channel over a block of rows, not per row (a 32-wide stem's PRELU ran
 * 2048 calls of two vectors each). */
static void finish_in_place(const job_t* j, size_t g, size_t at, size_t n, size_t r0, size_t r1) {
  const sl_implicit_conv_t* c = j->c;
  const sl_conv2d_shape_t* s = &c->s;
  size_t ocg = s->out_c / s->groups, pixels = (size_t)s->out_h * s->out_w, first = g * ocg + r0;
  for (size_t o = first, y = first * pixels + at; o < first + r1 - r0; o++, y += pixels) {
    if (c->post.type != SL_ACT_NONE) c->vunary->fn.vunary(&c->post, j->y + y, j->y + y, n);
    if (sl_epilogue_on(&c->epilogue)) sl_epilogue_apply(&c->epilogue, j->y + y, j->y, j->r, y, o, n);
  }
}

/* Task = (group, block of flat outputs, range of output channels): the gemm into the thread's
 * scratch, then its valid columns into y (direct and seamless: straight into y). */
static void gemm_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const sl_implicit_conv_t* c = j->c;
  const sl_conv2d_shape_t* s = &c->s;
  size_t blocks = ceil_div(c->count, c->block), chunk = task % c->row_chunks, b = task / c->row_chunks % blocks;
  size_t g = task / c->row_chunks / blocks;
  size_t f0 = b * c->block, f1 = f0 + c->block < c->count ? f0 + c->block : c->count, n = f1 - f0;
  size_t icg = s->in_c / s->groups, ocg = s->out_c / s->groups, pixels = (size_t)s->out_h * s->out_w;
  size_t rows = c->gemm->rows, panels = ceil_div(ocg, rows);
  size_t r0 = chunk * panels / c->row_chunks * rows, r1 = (chunk + 1) * panels / c->row_chunks * rows;
  if (r1 > ocg) r1 = ocg;
  if (c->direct) { /* blocks of output rows, each row one gemm */
    for (size_t oy = f0; oy < f1; oy++) gemm_in_place(j, g, oy * c->row_len, oy * s->out_w, s->out_w, r0, r1);
    finish_in_place(j, g, f0 * s->out_w, (f1 - f0) * s->out_w, r0, r1);
    return;
  }
  if (c->seamless) { /* flat outputs are y's pixels */
    gemm_in_place(j, g, f0, f0, n, r0, r1);
    finish_in_place(j, g, f0, n, r0, r1);
    return;
  }
  float* out = sl_scratch_thread(j->m, j->n, thread);
  c->gemm->fn.gemm(n, r1 - r0, c->patch, j->planes + g * icg * c->plane + f0, 0, c->x_offset,
                   c->panels + g * c->panel_size + r0 * (c->patch + 1), out, n, &(sl_matrix_out_t){.mm = c->mm});
  if (c->post.type != SL_ACT_NONE) c->vunary->fn.vunary(&c->post, out, out, (r1 - r0) * n);
  for (size_t o = r0; o < r1; o++) {
    float* y = j->y + (g * ocg + o) * pixels;
    const float* row_out = out + (o - r0) * n;
    for (size_t f = f0 - f0 % c->row_len; f < f1; f += c->row_len) { /* f: the start of a flat row */
      size_t lo = f > f0 ? f : f0, hi = f + s->out_w < f1 ? f + s->out_w : f1;
      if (lo >= hi) continue;
      size_t at = f / c->row_len * s->out_w + (lo - f);
      memcpy(y + at, row_out + (lo - f0), (hi - lo) * sizeof(float));
      if (sl_epilogue_on(&c->epilogue))
        sl_epilogue_apply(&c->epilogue, j->y + (g * ocg + o) * pixels + at, j->y, j->r, (g * ocg + o) * pixels + at,
                          g * ocg + o, hi - lo);
    }
  }
}

void sl_implicit_conv_run(const sl_model_t* m, const sl_node_t* n, const sl_implicit_conv_t* c, const float* x,
                          float* y, const float* r, size_t r_image, size_t batch) {
  const sl_conv2d_shape_t* s = &c->s;
  size_t out_size = (size_t)s->out_c * s->out_h * s->out_w;
  for (size_t b = 0; b < batch; b++) {
    job_t j = {m, n, c, x + b * s->in_c * s->in_h * s->in_w, y + b * out_size, r != NULL ? r + b * r_image : NULL,
               sl_scratch_shared(m)};
    sl_parallel_for(m, s->in_c, fill_task, &j);
    sl_parallel_for(m, s->groups * ceil_div(c->count, c->block) * c->row_chunks, gemm_task, &j);
  }
}
