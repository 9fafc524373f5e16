/* 1x1 convolutions and fully connected layers: per-layer choice between the
 * sparse (spmm) and dense (gemm) microkernels, packing, and the parallel run. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>
#include <time.h>

#include "linear.h"

/* Sizes come from a [rows][cols] weight of the file and the pixel stride, so each is computed
 * checked (on 32-bit targets, WASM, a byte count wraps first). A NULL from sl_model_alloc comes
 * with the model's message already set and returns SL_ERROR_OUT_OF_MEMORY as is. */
static sl_status_t too_large(sl_model_t* m, const sl_node_t* n, const sl_linear_t* L) {
  return sl_node_fail(m, n, "a %zu x %zu layer over %zu pixels does not fit in memory", L->rows, L->cols, L->stride);
}

/* Bytes of count + 1 elements (so an empty stream is still a block). */
static bool array_bytes(size_t count, size_t size, size_t* bytes) {
  return sl_size_add(count, 1, bytes) && sl_size_mul(*bytes, size, bytes);
}

/* Token-major data, and channel-major layers of few pixels but whole vectors of them, run gemm_nc. */
static bool wants_gemm_nc(const sl_linear_t* L) {
  bool whole_vectors = L->pixels >= SL_GEMM_WHOLE_VECTORS_FROM && L->pixels % 16 == 0; /* 16: any ISA's width divides it */
  return L->layout == SL_LINEAR_TOKEN_MAJOR || (L->pixels <= SL_GEMM_NC_MAX_PIXELS && !whole_vectors);
}

static sl_status_t prepare_dense(sl_model_t* m, const sl_node_t* n, sl_linear_t* L, const float* w,
                                 const float* bias) {
  L->gemm = sl_op_kernel(m, wants_gemm_nc(L) ? SL_FAMILY_gemm_nc : SL_FAMILY_gemm, 0);
  size_t bytes;
  if (!sl_gemm_pack_bytes(L->rows, L->cols, L->gemm->rows, &bytes)) return too_large(m, n, L);
  L->panels = sl_model_alloc(m, bytes);
  if (L->panels == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_gemm_pack(w, bias, L->rows, L->cols, L->gemm->rows, L->panels);
  return SL_OK;
}

/* Dense gemm panels from group-sparse weights (a layer that runs faster dense). */
static sl_status_t prepare_densified(sl_model_t* m, const sl_node_t* n, sl_linear_t* L,
                                     const sl_group_sparse_f32_t* w, const float* bias) {
  size_t bytes;
  if (!sl_size_mul(L->rows, L->cols, &bytes) || !sl_size_mul(bytes, sizeof(float), &bytes)) return too_large(m, n, L);
  float* dense = sl_model_alloc(m, bytes);
  if (dense == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_group_sparse_densify(w, dense);
  sl_status_t st = prepare_dense(m, n, L, dense, bias);
  sl_model_release(m, dense);
  return st;
}

static sl_status_t prepare_sparse(sl_model_t* m, const sl_node_t* n, sl_linear_t* L, const sl_group_sparse_f32_t* w,
                                  const float* bias, const sl_ukernel_t* k) {
  sl_spmm_packed_t* p = &L->packed;
  size_t nonzeros, values;
  p->r = k->rows;
  sl_spmm_pack_count(w, k->rows, &p->blocks, &p->tail_rows, &nonzeros, &values);
  size_t nb = (size_t)p->blocks + p->tail_rows, nz_bytes, offset_bytes, value_bytes, row_bytes;
  /* nz_start holds nonzero counts in 32 bits. */
  if (nonzeros >= UINT32_MAX || !array_bytes(nb, sizeof(uint32_t), &nz_bytes) ||
      !array_bytes(nonzeros, sizeof(uint32_t), &offset_bytes) || !array_bytes(values, sizeof(float), &value_bytes) ||
      !array_bytes(w->rows, sizeof(uint32_t), &row_bytes))
    return too_large(m, n, L);
  p->nz_start = sl_model_alloc(m, nz_bytes);
  p->x_offset = sl_model_alloc(m, offset_bytes);
  p->values = sl_model_alloc(m, value_bytes);
  p->out_row = sl_model_alloc(m, row_bytes);
  if (p->nz_start == NULL || p->x_offset == NULL || p->values == NULL || p->out_row == NULL)
    return SL_ERROR_OUT_OF_MEMORY;
  sl_spmm_pack(w, bias, L->stride, p);
  L->spmm = k;
  L->spmm_tail = sl_op_kernel(m, SL_FAMILY_spmm, 1);
  return SL_OK;
}

static void release_sparse(sl_model_t* m, sl_linear_t* L) {
  sl_model_release(m, L->packed.nz_start);
  sl_model_release(m, L->packed.x_offset);
  sl_model_release(m, L->packed.values);
  sl_model_release(m, L->packed.out_row);
  memset(&L->packed, 0, sizeof(L->packed));
  L->spmm = L->spmm_tail = NULL;
}

/* Stored weights a kernel with blocks of r would multiply per pixel. */
static size_t stored_weights(const sl_group_sparse_f32_t* w, uint32_t r) {
  uint32_t blocks, tails;
  size_t nonzeros, values;
  sl_spmm_pack_count(w, r, &blocks, &tails, &nonzeros, &values);
  return values - (size_t)blocks * r - tails;
}

/* The spmm kernel with the lowest modelled cost, in gemm-weight units per pixel. */
static const sl_ukernel_t* best_sparse(const sl_model_t* m, const sl_group_sparse_f32_t* w, double* cost) {
  const sl_ukernel_t* best = NULL;
  for (uint32_t r = 1; r <= w->r; r *= 2) {
    const sl_ukernel_t* k = sl_op_kernel(m, SL_FAMILY_spmm, r);
    if (k == NULL || w->r % r != 0) continue;
    double c = (double)stored_weights(w, r) / k->efficiency;
    if (best == NULL || c < *cost) {
      best = k;
      *cost = c;
    }
  }
  return best;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_kernels(const sl_model_t* m, const sl_node_t* n, const sl_linear_t* L, const float* x, float* y,
                        const float* r, const sl_f16* xh, sl_f16* yh);

/* Best of a few runs on scratch data. */
static double time_run(const sl_model_t* m, const sl_node_t* n, const sl_linear_t* L, const float* x, float* y) {
  double best = INFINITY;
  for (int i = 0; i < 5; i++) {
    double t0 = now_seconds();
    run_kernels(m, n, L, x, y, NULL, NULL, NULL);
    double t = now_seconds() - t0;
    if (t < best) best = t;
  }
  return best;
}

/* Times sparse against dense on this layer's shapes and keeps the faster. */
static sl_status_t tune(sl_model_t* m, const sl_node_t* n, sl_linear_t* L, const sl_group_sparse_f32_t* w,
                        const float* bias, const sl_ukernel_t* k) {
  size_t x_floats, y_floats, x_bytes, y_bytes;
  if (!sl_size_mul(L->cols, L->stride, &x_floats) || !array_bytes(x_floats, sizeof(float), &x_bytes) ||
      !sl_size_mul(L->rows, L->stride, &y_floats) || !array_bytes(y_floats, sizeof(float), &y_bytes))
    return too_large(m, n, L);
  sl_status_t st = prepare_sparse(m, n, L, w, bias, k);
  float* x = st == SL_OK ? sl_model_alloc(m, x_bytes) : NULL;
  float* y = x != NULL ? sl_model_alloc(m, y_bytes) : NULL;
  if (st == SL_OK && y == NULL) st = SL_ERROR_OUT_OF_MEMORY;
  if (st == SL_OK) {
    for (size_t i = 0; i < x_floats; i++) x[i] = (float)(i % 7) * 0.25f;
    double sparse_time = time_run(m, n, L, x, y);
    sl_linear_t D = *L;
    D.spmm = D.spmm_tail = NULL;
    memset(&D.packed, 0, sizeof(D.packed));
    st = prepare_densified(m, n, &D, w, bias);
    if (st == SL_OK && time_run(m, n, &D, x, y) < sparse_time) {
      release_sparse(m, L);
      *L = D;
    } else if (st == SL_OK) {
      sl_model_release(m, D.panels);
    }
  }
  sl_model_release(m, x);
  sl_model_release(m, y);
  return st;
}

/* gemm panels of `from` rows (pack.c's layout: a panel's biases, then its weights column by column)
 * as panels of `to` rows, in halves. */
static void repack_panels_f16(const float* panels, size_t rows, size_t cols, size_t from, size_t to, sl_f16* out) {
  const size_t padded = (rows + from - 1) / from * from, out_rows = (rows + to - 1) / to * to;
  for (size_t o = 0; o < out_rows; o++) {
    const float* src = panels + o / from * from * (cols + 1) + o % from;
    sl_f16* dst = out + o / to * to * (cols + 1) + o % to;
    for (size_t c = 0; c <= cols; c++) dst[c * to] = o < padded ? sl_f16_from_f32(src[c * from]) : 0;
  }
}

/* fp16: the chosen kernel's f16 twin where there is one. gemm's and gemm_nc's twins have panels of
 * their own height (f16 gemm 4 rows, the in-order f32 gemm 8): their weights are repacked. */
static sl_status_t prepare_f16(sl_model_t* m, const sl_node_t* n, sl_linear_t* L) {
  if (!sl_op_fp16(m)) return SL_OK;
  const sl_ukernel_t* to = sl_op_kernel(m, SL_FAMILY_f16_from_f32, 0);
  const sl_ukernel_t* from = sl_op_kernel(m, SL_FAMILY_f16_to_f32, 0);
  const bool nc = L->spmm == NULL && L->gemm->family == SL_FAMILY_gemm_nc;
  const sl_ukernel_t* k = L->spmm != NULL ? sl_op_kernel(m, SL_FAMILY_f16_spmm, L->spmm->rows)
                                          : sl_op_kernel(m, nc ? SL_FAMILY_f16_gemm_nc : SL_FAMILY_f16_gemm, 0);
  const sl_ukernel_t* tail = L->spmm != NULL ? sl_op_kernel(m, SL_FAMILY_f16_spmm, 1) : k;
  if (to == NULL || from == NULL || k == NULL || tail == NULL) return SL_OK;
  const sl_spmm_packed_t* p = &L->packed;
  size_t count = L->spmm != NULL ? sl_spmm_values_start(p, p->blocks + p->tail_rows)
                                 : sl_gemm_pack_size(L->rows, L->cols, k->rows), bytes;
  if (!array_bytes(count, sizeof(sl_f16), &bytes)) return too_large(m, n, L);
  L->weights16 = sl_model_alloc(m, bytes);
  if (L->weights16 == NULL) return SL_ERROR_OUT_OF_MEMORY;
  if (L->spmm == NULL) repack_panels_f16(L->panels, L->rows, L->cols, L->gemm->rows, k->rows, L->weights16);
  else sl_f16_from_f32_n(p->values, L->weights16, count);
  L->k16 = k;
  L->k16_tail = tail;
  L->to16 = to;
  L->from16 = from;
  return SL_OK;
}

/* Channel-major gemm_nc layers (7x7 maps) read x transposed, pixel-major: a tile's pixels then
 * read one row of columns each, where channel-major planes cost a cache line per column (AVX2
 * EPYC, 440 -> 440 channels at 7x7: 62 -> 79 GFLOP/s). */
static bool nc_pixel_major(const sl_linear_t* L) {
  return L->layout == SL_LINEAR_CHANNEL_MAJOR && L->spmm == NULL && L->k16 == NULL &&
         L->gemm->family == SL_FAMILY_gemm_nc && L->pixels > 1;
}

/* Token-major spmm works on transposed copies, [cols][stride] and [rows][stride]; fp16 on
 * converted ones, as halves (after the transposed floats where both are needed); channel-major
 * gemm_nc on x transposed, [pixels][cols]. */
static sl_status_t reserve_scratch(sl_model_t* m, sl_node_t* n, const sl_linear_t* L) {
  const bool transposed = L->layout == SL_LINEAR_TOKEN_MAJOR && L->spmm != NULL;
  size_t elements, bytes;
  if (nc_pixel_major(L)) {
    if (!sl_size_mul(L->cols, L->pixels, &elements) || !sl_size_mul(elements, sizeof(float), &bytes))
      return too_large(m, n, L);
    sl_reserve_scratch(m, n, bytes, 0);
    return SL_OK;
  }
  if (!transposed && L->k16 == NULL) return SL_OK;
  const size_t size = (transposed ? sizeof(float) : 0) + (L->k16 != NULL ? sizeof(sl_f16) : 0);
  if (!sl_size_add(L->rows, L->cols, &elements) || !sl_size_mul(elements, L->stride, &elements) ||
      !sl_size_mul(elements, size, &bytes))
    return too_large(m, n, L);
  sl_reserve_scratch(m, n, bytes, 0);
  return SL_OK;
}

sl_status_t sl_linear_prepare(sl_model_t* m, sl_node_t* n, sl_linear_t* L, const sl_tensor_t* w,
                              const float* bias, sl_linear_layout_t layout, size_t pixels, size_t stride,
                              const sl_activation_t* act) {
  L->layout = layout;
  L->rows = (size_t)w->shape[0];
  L->cols = (size_t)w->shape[1];
  L->pixels = pixels;
  /* Token-major: the stride of spmm's transposed copies, rows an odd number of 32-byte steps
   * apart (power-of-two strides, 128 tokens, would map a kernel's column loads onto a few L1
   * sets); a single row is both layouts. */
  L->stride = layout == SL_LINEAR_CHANNEL_MAJOR ? stride : pixels > 1 ? ((pixels + 7) / 8 * 8) | 8 : 1;
  L->post = sl_activation_split(act, &L->mm);
  L->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  L->k16 = L->k16_tail = L->to16 = L->from16 = NULL;
  L->weights16 = NULL;
  L->x_pad = 0;
  n->dense_flops = 2.0 * (double)L->rows * (double)L->cols * (double)pixels;
  sl_status_t st;
  const sl_group_sparse_f32_t* s = w->sparse;
  /* The packed offsets are 32-bit: columns * pixel stride must fit. */
  bool sparse_ok = s != NULL && (uint64_t)L->cols * stride <= UINT32_MAX;
  if (s != NULL && !sparse_ok) {
    st = prepare_densified(m, n, L, s, bias);
  } else if (s != NULL) {
    double sparse_cost = 0.0;
    const sl_ukernel_t* k = best_sparse(m, s, &sparse_cost);
    double dense_cost = (double)L->rows * (double)L->cols;
    if (sl_op_tuning(m)) {
      st = tune(m, n, L, s, bias, k);
    } else if (sparse_cost <= dense_cost) {
      st = prepare_sparse(m, n, L, s, bias, k);
    } else {
      st = prepare_densified(m, n, L, s, bias);
    }
  } else {
    st = prepare_dense(m, n, L, w->data, bias);
  }
  if (st != SL_OK) return st;
  if (L->spmm != NULL) {
    n->kernel = L->spmm->name;
    n->flops = 2.0 * (double)stored_weights(s, L->spmm->rows) * (double)pixels;
  } else {
    n->kernel = L->gemm->name;
    n->flops = n->dense_flops;
  }
  if ((st = prepare_f16(m, n, L)) != SL_OK) return st;
  if (L->k16 != NULL) n->kernel = L->k16->name;
  return reserve_scratch(m, n, L);
}

/* The copy reads and writes each input float once; the kernels load it once per block of rows
 * that keeps its column (spmm) or once per panel (gemm). With SL_PAD_MIN_READS such loads a column
 * or more it pays for spmm (the sparse BlazeFace's 6x6 layers, 29-115: 23-32% faster with planes 48
 * rather than 36 floats apart on an Intel Xeon); MobileNetV2's 90% 14x14 projections, ~2, took
 * 50-100% longer with it. gemm's loads stream from L2 at full speed, so the split ones cost less
 * there (a 14x14 map: 7-12%) and the copy needs more panels to pay: 128 (256 -> 1024 channels)
 * 3-7% faster, 64 ones 2-6%, 32 ones 0-2% on the Xeon (the copy included). */
#define SL_PAD_MIN_READS 8
#define SL_PAD_MIN_PANELS 64

static size_t spmm_nonzeros(const sl_spmm_packed_t* p) { return p->nz_start[(size_t)p->blocks + p->tail_rows]; }

/* The packed column offsets (plane index x `from`) for planes `to` floats apart. */
static void restride_offsets(sl_spmm_packed_t* p, size_t from, size_t to) {
  const size_t nonzeros = spmm_nonzeros(p);
  for (size_t i = 0; i < nonzeros; i++) p->x_offset[i] = (uint32_t)(p->x_offset[i] / from * to);
}

void sl_linear_pad_planes(sl_model_t* m, sl_node_t* n, sl_linear_t* L) {
  const size_t line = 64 / sizeof(float), pad = (L->stride + line - 1) / line * line;
  const sl_ukernel_t* k = L->spmm != NULL ? L->spmm : L->gemm;
  size_t bytes;
  if (L->layout != SL_LINEAR_CHANNEL_MAJOR || k->family == SL_FAMILY_gemm_nc || L->k16 != NULL ||
      (k->isa & SL_ISA_AVX512) == 0 || L->stride % line == 0 || L->pixels < line ||
      (uint64_t)L->cols * pad > UINT32_MAX || !sl_size_mul(L->cols, pad, &bytes) ||
      !sl_size_mul(bytes, sizeof(float), &bytes))
    return;
  if (L->spmm == NULL ? (L->rows + k->rows - 1) / k->rows < SL_PAD_MIN_PANELS
                      : spmm_nonzeros(&L->packed) < SL_PAD_MIN_READS * L->cols)
    return;
  if (L->spmm != NULL) restride_offsets(&L->packed, L->stride, pad);
  L->x_pad = pad;
  sl_reserve_scratch(m, n, bytes > n->scratch_shared ? bytes : n->scratch_shared, n->scratch_per_thread);
}

void sl_linear_unpad_planes(sl_linear_t* L) {
  if (L->x_pad == 0) return;
  if (L->spmm != NULL) restride_offsets(&L->packed, L->x_pad, L->stride);
  L->x_pad = 0;
}

/* --- run ------------------------------------------------------------------ */

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const sl_linear_t* L;
  const float* x;
  float* y;
  const float* r; /* the residual, channel-major as y */
  size_t tile, tiles, pixel_chunks, row_units, row_chunks;
  bool pixels_major; /* consecutive tasks share pixels: a thread's range of tasks covers its pixels */
  const sl_f16* xh; /* fp16: x and y as halves, laid out as they are */
  sl_f16* yh;
} job_t;

/* Where a channel-major kernel writes row o's pixel p: y[(o - r0) * stride + p - p0]. The output
 * itself (r0 = p0 = 0), or a thread's staging piece (sl_linear_stage). */
typedef struct {
  float* y;
  size_t stride, r0, p0;
} dest_t;

static float* dest_at(const dest_t* d, size_t row, size_t p) { return d->y + (row - d->r0) * d->stride + (p - d->p0); }

/* What follows the kernel on the channel-major block it wrote to d: the activation it could not
 * fuse, then the fused elementwise ops, which write y. */
static void epilogue(const job_t* j, const dest_t* d, const uint32_t* rows, size_t first, size_t count, size_t p0,
                     size_t p1) {
  const sl_linear_t* L = j->L;
  bool fused = sl_epilogue_on(&L->epilogue);
  if (L->post.type == SL_ACT_NONE && !fused) return;
  for (size_t i = 0; i < count; i++) {
    size_t row = rows != NULL ? rows[i] : first + i;
    float* src = dest_at(d, row, p0);
    if (L->post.type != SL_ACT_NONE) L->vunary->fn.vunary(&L->post, src, src, p1 - p0);
    if (fused) sl_epilogue_apply(&L->epilogue, src, j->y, j->r, row * L->stride + p0, row, p1 - p0);
  }
}

/* The kernel's output stage for rows from `first` on and pixels from p0 on: the fused ops
 * themselves where they follow its clamp (the residual, then the ADD's clamp, and PRELU; or PRELU
 * alone after an activation the clamp is all of), its clamp alone where the epilogue runs after. */
static bool kernel_epilogue(const job_t* j, size_t first, size_t p0, sl_matrix_out_t* out) {
  const sl_linear_t* L = j->L;
  const sl_epilogue_t* e = &L->epilogue;
  const bool in_kernel =
      L->residual_in_kernel || (!e->residual && e->slopes != NULL && L->post.type == SL_ACT_NONE);
  *out = (sl_matrix_out_t){.mm = L->mm};
  if (in_kernel) {
    out->mm = e->residual ? e->mm : L->mm;
    out->residual = e->residual ? j->r + first * L->stride + p0 : NULL;
    out->slopes = e->slopes != NULL ? e->slopes + first * e->slope_step : NULL;
    out->slope_step = e->slope_step;
  }
  return in_kernel;
}

static void run_spmm(const job_t* j, const dest_t* d, size_t p0, size_t p1, size_t u0, size_t u1, bool last) {
  const sl_linear_t* L = j->L;
  const sl_spmm_packed_t* p = &L->packed;
  const float* x = j->x + p0;
  float* y = dest_at(d, 0, p0);
  sl_matrix_out_t out;
  const bool in_kernel = kernel_epilogue(j, 0, p0, &out); /* out_row: absolute channels */
  L->spmm->fn.spmm(p1 - p0, u1 - u0, x, p->values + sl_spmm_values_start(p, (uint32_t)u0),
                   p->x_offset + p->nz_start[u0], p->nz_start + u0, p->out_row + u0 * p->r, y, d->stride, &out);
  if (!in_kernel) epilogue(j, d, p->out_row + u0 * p->r, 0, (u1 - u0) * p->r, p0, p1);
  if (last && p->tail_rows > 0) {
    uint32_t b = p->blocks;
    L->spmm_tail->fn.spmm(p1 - p0, p->tail_rows, x, p->values + sl_spmm_values_start(p, b),
                          p->x_offset + p->nz_start[b], p->nz_start + b, p->out_row + (size_t)b * p->r, y, d->stride,
                          &out);
    if (!in_kernel) epilogue(j, d, p->out_row + (size_t)b * p->r, 0, p->tail_rows, p0, p1);
  }
}

/* gemm_nc over pixels [p0, p1) and rows [r0, r1), either layout (token-major straight to y). */
static void run_gemm_nc(const job_t* j, const dest_t* d, size_t p0, size_t p1, size_t r0, size_t r1,
                        const float* panels) {
  const sl_linear_t* L = j->L;
  size_t pixels = p1 - p0, rows = r1 - r0;
  if (L->layout == SL_LINEAR_TOKEN_MAJOR) {
    float* y = j->y + p0 * L->rows + r0;
    L->gemm->fn.gemm_nc(pixels, rows, L->cols, j->x + p0 * L->cols, L->cols, 1, panels, y, L->rows, 1, &L->mm);
    if (L->post.type != SL_ACT_NONE)
      for (size_t p = 0; p < pixels; p++) L->vunary->fn.vunary(&L->post, y + p * L->rows, y + p * L->rows, rows);
    return;
  }
  const bool pixel_major = nc_pixel_major(L); /* x transposed by sl_linear_run */
  const size_t x_pixel_stride = pixel_major ? L->cols : 1, x_k_stride = pixel_major ? 1 : L->stride;
  L->gemm->fn.gemm_nc(pixels, rows, L->cols, j->x + p0 * x_pixel_stride, x_pixel_stride, x_k_stride, panels,
                      dest_at(d, r0, p0), 1, d->stride, &L->mm);
  epilogue(j, d, NULL, r0, rows, p0, p1);
}

/* fp16: the f16 twin on halves, its rows [p0, p1) widened into y (unless y takes halves), then the
 * epilogue (none when it does). Never staged. */
static void run_f16(const job_t* j, const dest_t* d, size_t p0, size_t p1, size_t u0, size_t u1, bool last) {
  const sl_linear_t* L = j->L;
  const sl_f16* x = j->xh + p0;
  sl_f16* yh = j->yh + p0;
  if (L->spmm != NULL) {
    const sl_spmm_packed_t* p = &L->packed;
    size_t first = u0 * p->r, count = (u1 - u0) * p->r;
    L->k16->fn.f16_spmm(p1 - p0, u1 - u0, x, L->weights16 + sl_spmm_values_start(p, (uint32_t)u0),
                        p->x_offset + p->nz_start[u0], p->nz_start + u0, p->out_row + first, yh, L->stride,
                        &(sl_matrix_out_t){.mm = L->mm});
    if (last && p->tail_rows > 0) {
      uint32_t b = p->blocks;
      L->k16_tail->fn.f16_spmm(p1 - p0, p->tail_rows, x, L->weights16 + sl_spmm_values_start(p, b),
                               p->x_offset + p->nz_start[b], p->nz_start + b, p->out_row + (size_t)b * p->r, yh,
                               L->stride, &(sl_matrix_out_t){.mm = L->mm});
      count += p->tail_rows;
    }
    for (size_t i = first; i < first + count && !L->half_out; i++) {
      size_t at = p->out_row[i] * L->stride + p0;
      L->from16->fn.f16_to_f32(j->yh + at, j->y + at, p1 - p0);
    }
    epilogue(j, d, p->out_row + first, 0, count, p0, p1);
    return;
  }
  uint32_t panel = L->k16->rows;
  size_t r0 = u0 * panel, r1 = u1 * panel < L->rows ? u1 * panel : L->rows;
  const sl_f16* panels = L->weights16 + u0 * panel * (L->cols + 1);
  if (L->k16->family == SL_FAMILY_f16_gemm_nc && L->layout == SL_LINEAR_TOKEN_MAJOR) {
    /* as run_gemm_nc: rows [r0, r1) of pixels [p0, p1), then the activation */
    const size_t pixels = p1 - p0, rows = r1 - r0;
    L->k16->fn.f16_gemm_nc(pixels, rows, L->cols, j->xh + p0 * L->cols, L->cols, 1, panels,
                           j->yh + p0 * L->rows + r0, L->rows, 1, &L->mm);
    for (size_t q = p0; q < p1; q++) {
      float* y = j->y + q * L->rows + r0;
      L->from16->fn.f16_to_f32(j->yh + q * L->rows + r0, y, rows);
      if (L->post.type != SL_ACT_NONE) L->vunary->fn.vunary(&L->post, y, y, rows);
    }
    return;
  }
  if (L->k16->family == SL_FAMILY_f16_gemm_nc)
    L->k16->fn.f16_gemm_nc(p1 - p0, r1 - r0, L->cols, x, 1, L->stride, panels, yh + r0 * L->stride, 1, L->stride,
                           &L->mm);
  else
    L->k16->fn.f16_gemm(p1 - p0, r1 - r0, L->cols, x, L->stride, NULL, panels, yh + r0 * L->stride, L->stride,
                        &(sl_matrix_out_t){.mm = L->mm});
  for (size_t o = r0; o < r1 && !L->half_out; o++)
    L->from16->fn.f16_to_f32(j->yh + o * L->stride + p0, j->y + o * L->stride + p0, p1 - p0);
  epilogue(j, d, NULL, r0, r1 - r0, p0, p1);
}

/* Pixels [p0, p1) of row units [u0, u1) (spmm blocks or gemm panels; last: the spmm's tail rows too). */
static void run_range(const job_t* j, const dest_t* d, size_t p0, size_t p1, size_t u0, size_t u1, bool last) {
  const sl_linear_t* L = j->L;
  if (j->xh != NULL) {
    run_f16(j, d, p0, p1, u0, u1, last);
    return;
  }
  if (L->spmm != NULL) {
    run_spmm(j, d, p0, p1, u0, u1, last);
    return;
  }
  uint32_t panel = L->gemm->rows;
  size_t r0 = u0 * panel, r1 = u1 * panel < L->rows ? u1 * panel : L->rows;
  const float* panels = L->panels + u0 * panel * (L->cols + 1);
  if (L->gemm->family == SL_FAMILY_gemm_nc) {
    run_gemm_nc(j, d, p0, p1, r0, r1, panels);
    return;
  }
  sl_matrix_out_t out;
  const bool in_kernel = kernel_epilogue(j, r0, p0, &out);
  L->gemm->fn.gemm(p1 - p0, r1 - r0, L->cols, j->x + p0, L->x_pad > 0 ? L->x_pad : L->stride, NULL, panels,
                   dest_at(d, r0, p0), d->stride, &out);
  if (!in_kernel) epilogue(j, d, NULL, r0, r1 - r0, p0, p1);
}

static void run_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const sl_linear_t* L = j->L;
  size_t pc = j->pixels_major ? task / j->row_chunks : task % j->pixel_chunks;
  size_t rc = j->pixels_major ? task % j->row_chunks : task / j->pixel_chunks;
  size_t p0 = pc * j->tiles / j->pixel_chunks * j->tile;
  size_t p1 = (pc + 1) * j->tiles / j->pixel_chunks * j->tile;
  if (p1 > L->pixels) p1 = L->pixels;
  size_t u0 = rc * j->row_units / j->row_chunks, u1 = (rc + 1) * j->row_units / j->row_chunks;
  const bool last = rc + 1 == j->row_chunks;
  if (L->stage_pixels == 0) {
    const dest_t y = {j->y, L->stride, 0, 0};
    run_range(j, &y, p0, p1, u0, u1, last);
    return;
  }
  dest_t piece = {sl_scratch_thread(j->m, j->n, thread), L->stage_pixels, 0, p0};
  if (L->stage_panels > 0) {
    for (size_t u = u0; u < u1; u += L->stage_panels) {
      const size_t end = u1 - u < L->stage_panels ? u1 : u + L->stage_panels;
      piece.r0 = u * L->gemm->rows;
      run_range(j, &piece, p0, p1, u, end, last && end == u1);
    }
    return;
  }
  for (; p0 < p1; p0 += L->stage_pixels) {
    piece.p0 = p0;
    run_range(j, &piece, p0, p1 - p0 < L->stage_pixels ? p1 : p0 + L->stage_pixels, u0, u1, last);
  }
}

/* A piece stays in L2 while the epilogue reads it back: whole tiles of pixels over every row, each
 * piece reading the weights again, or (dense, more rows than pixels: weights larger than inputs)
 * whole panels over every pixel, each reading the input again. */
#define SL_STAGE_BYTES (256 * 1024)

bool sl_linear_takes_residual(const sl_linear_t* L, const sl_epilogue_t* e) {
  return L->layout == SL_LINEAR_CHANNEL_MAJOR && L->k16 == NULL &&
         (L->spmm != NULL || L->gemm->family == SL_FAMILY_gemm) && L->post.type == SL_ACT_NONE &&
         L->mm.min == -INFINITY && L->mm.max == INFINITY && e->residual && e->first == 0 && e->channels >= L->rows &&
         e->post.type == SL_ACT_NONE;
}

bool sl_linear_residual_in_kernel(sl_linear_t* L) {
  L->residual_in_kernel = sl_linear_takes_residual(L, &L->epilogue);
  return L->residual_in_kernel;
}

bool sl_linear_stage(sl_model_t* m, sl_node_t* n, sl_linear_t* L) {
  if (L->layout != SL_LINEAR_CHANNEL_MAJOR || L->k16 != NULL || L->rows == 0 || L->pixels == 0) return false;
  const size_t tile = L->spmm != NULL ? L->spmm->pixels : L->gemm->pixels, all = (L->pixels + tile - 1) / tile * tile;
  size_t pixels = SL_STAGE_BYTES / sizeof(float) / L->rows / tile * tile, panels = 0;
  if (pixels < tile) pixels = tile;
  if (pixels > all) pixels = all;
  if (L->spmm == NULL && L->rows > L->pixels) {
    const size_t panel = L->gemm->rows;
    panels = SL_STAGE_BYTES / sizeof(float) / all / panel;
    if (panels == 0) panels = 1;
    pixels = all;
  }
  size_t bytes;
  if (!sl_size_mul(panels > 0 ? panels * L->gemm->rows : L->rows, pixels, &bytes) ||
      !sl_size_mul(bytes, sizeof(float), &bytes))
    return false;
  sl_reserve_scratch(m, n, n->scratch_shared, bytes > n->scratch_per_thread ? bytes : n->scratch_per_thread);
  L->stage_pixels = pixels;
  L->stage_panels = panels;
  return true;
}

static void* shared_scratch(const sl_model_t* m, const sl_linear_t* L) {
  return (char*)sl_scratch_shared(m) + L->scratch_at;
}

/* About `want` tasks: up to that many chunks of the first kind of units, then as many of the
 * second as make up the rest (at least one of each). */
static void split_tasks(size_t want, size_t first_units, size_t second_units, size_t* first, size_t* second) {
  *first = first_units < want ? first_units : want;
  if (*first == 0) *first = 1;
  size_t rest = (want + *first - 1) / *first;
  *second = rest < second_units ? rest : (second_units > 0 ? second_units : 1);
}

/* The kernels on channel-major data (token-major too for gemm_nc). */
static void run_kernels(const sl_model_t* m, const sl_node_t* n, const sl_linear_t* L, const float* x, float* y,
                        const float* r, const sl_f16* xh, sl_f16* yh) {
  job_t j = {m, n, L, x, y, r, 0, 0, 1, 0, 1, false, xh, yh};
  j.tile = xh != NULL ? L->k16->pixels : L->spmm != NULL ? L->spmm->pixels : L->gemm->pixels;
  j.tiles = (L->pixels + j.tile - 1) / j.tile;
  if (L->spmm != NULL) {
    j.row_units = L->packed.blocks;
  } else {
    const size_t panel = xh != NULL ? L->k16->rows : L->gemm->rows;
    j.row_units = (L->rows + panel - 1) / panel;
  }
  size_t threads = sl_op_threads(m);
  const bool weights_dominate = L->spmm == NULL && (L->gemm->family == SL_FAMILY_gemm_nc ||
                                                    L->rows * L->cols > (L->rows + L->cols) * L->pixels);
  if (threads > 1 && weights_dominate)
    /* Over panels first: every pixel chunk streams all the weights, which dominate gemm_nc's
     * layers (7x7 maps, token-major FC) and dense ones on few pixels (14x14 with 1024 channels). */
    split_tasks(4 * threads, j.row_units, j.tiles, &j.row_chunks, &j.pixel_chunks);
  else if (threads > 1) {
    /* Over pixels first, and over rows when there are few pixels, so every layer spreads; a
     * thread's tasks then take its share of the pixels, which it wrote in the layer before. */
    split_tasks(4 * threads, j.tiles, j.row_units, &j.pixel_chunks, &j.row_chunks);
    j.pixels_major = true;
  }
  sl_parallel_for(m, j.pixel_chunks * j.row_chunks, run_task, &j);
}

/* x's planes into whole-line ones (sl_linear_pad_planes), a share of the columns per task. */
typedef struct {
  const sl_linear_t* L;
  const float* x;
  float* padded;
  size_t tasks;
} pad_job_t;

static void pad_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const pad_job_t* j = ctx;
  const sl_linear_t* L = j->L;
  for (size_t c = task * L->cols / j->tasks; c < (task + 1) * L->cols / j->tasks; c++)
    memcpy(j->padded + c * L->x_pad, j->x + c * L->stride, L->pixels * sizeof(float));
}

void sl_linear_run(const sl_model_t* m, const sl_node_t* n, const sl_linear_t* L, const float* x, float* y,
                   const float* r) {
  if (L->layout == SL_LINEAR_CHANNEL_MAJOR || L->spmm == NULL) {
    if (nc_pixel_major(L)) {
      float* xt = shared_scratch(m, L);
      sl_transpose_2d(m, x, L->stride, xt, L->cols, L->cols, L->pixels); /* [cols][stride] -> [pixels][cols] */
      run_kernels(m, n, L, xt, y, r, NULL, NULL);
      return;
    }
    if (L->x_pad > 0) { /* never with fp16: sl_linear_pad_planes */
      pad_job_t job = {L, x, shared_scratch(m, L), sl_op_threads(m)};
      sl_parallel_for(m, job.tasks, pad_task, &job);
      run_kernels(m, n, L, job.padded, y, r, NULL, NULL);
      return;
    }
    if (L->k16 == NULL) {
      run_kernels(m, n, L, x, y, r, NULL, NULL);
      return;
    }
    sl_f16* scratch = shared_scratch(m, L);
    const sl_f16* xh = L->half_in ? (const sl_f16*)(const void*)x : scratch;
    if (!L->half_in && L->layout == SL_LINEAR_TOKEN_MAJOR)
      L->to16->fn.f16_from_f32(x, scratch, L->pixels * L->cols);
    else if (!L->half_in)
      for (size_t c = 0; c < L->cols; c++)
        L->to16->fn.f16_from_f32(x + c * L->stride, scratch + c * L->stride, L->pixels);
    run_kernels(m, n, L, x, y, r, xh, L->half_out ? (sl_f16*)(void*)y : scratch + L->cols * L->stride);
    return;
  }
  /* Token-major through spmm: the kernels are channel-major, so transpose in and out. */
  float* xt = shared_scratch(m, L);
  float* yt = xt + L->cols * L->stride;
  sl_transpose_2d(m, x, L->cols, xt, L->stride, L->pixels, L->cols); /* [pixels][cols] -> [cols][ld] */
  sl_f16* xh = NULL;
  if (L->k16 != NULL) {
    xh = (sl_f16*)(yt + L->rows * L->stride);
    for (size_t c = 0; c < L->cols; c++) L->to16->fn.f16_from_f32(xt + c * L->stride, xh + c * L->stride, L->pixels);
  }
  run_kernels(m, n, L, xt, yt, NULL, xh, xh != NULL ? xh + L->cols * L->stride : NULL);
  sl_transpose_2d(m, yt, L->stride, y, L->rows, L->rows, L->pixels); /* [rows][ld] -> [pixels][rows] */
}

void sl_linear_run_planes(const sl_model_t* m, const sl_node_t* n, const sl_linear_t* L, const float* x, float* y,
                          const float* r) {
  if (L->x_pad == 0) {
    sl_linear_run(m, n, L, x, y, r);
    return;
  }
  run_kernels(m, n, L, x, y, r, NULL, NULL);
}

/* Rows [first, first + count) in the kernels' order, as sl_linear_run_rows says, through `stage`. */
static void run_rows(const sl_linear_t* L, size_t first, size_t count, const uint32_t* out_row, const float* x,
                     float* y, size_t y_stride, size_t pixels, const sl_matrix_out_t* stage) {
  const size_t end = first + count;
  if (L->spmm != NULL) {
    const sl_spmm_packed_t* p = &L->packed;
    const size_t full = (size_t)p->blocks * p->r;
    if (first < full) {
      const size_t u0 = first / p->r, u1 = (end < full ? end : full) / p->r;
      L->spmm->fn.spmm(pixels, u1 - u0, x, p->values + sl_spmm_values_start(p, (uint32_t)u0), p->x_offset + p->nz_start[u0],
                       p->nz_start + u0, out_row, y, y_stride, stage);
    }
    if (end > full) { /* tail rows are blocks of one */
      const size_t t0 = first > full ? first : full, b = p->blocks + (t0 - full);
      L->spmm_tail->fn.spmm(pixels, end - t0, x, p->values + sl_spmm_values_start(p, (uint32_t)b),
                            p->x_offset + p->nz_start[b], p->nz_start + b, out_row + (t0 - first), y, y_stride, stage);
    }
  } else if (L->gemm->family == SL_FAMILY_gemm_nc) {
    L->gemm->fn.gemm_nc(pixels, count, L->cols, x, 1, L->stride, L->panels + first * (L->cols + 1), y, 1, y_stride,
                        &L->mm);
  } else {
    L->gemm->fn.gemm(pixels, count, L->cols, x, L->stride, NULL, L->panels + first * (L->cols + 1), y, y_stride, stage);
  }
  if (L->post.type != SL_ACT_NONE)
    for (size_t o = 0; o < count; o++) L->vunary->fn.vunary(&L->post, y + o * y_stride, y + o * y_stride, pixels);
}

void sl_linear_run_serial(const sl_linear_t* L, const float* x, float* y, size_t y_stride, size_t pixels,
                          const sl_matrix_out_t* stage) {
  const sl_matrix_out_t own = {.mm = L->mm};
  run_rows(L, 0, L->rows, L->spmm != NULL ? L->packed.out_row : NULL, x, y, y_stride, pixels,
           stage != NULL ? stage : &own);
}

size_t sl_linear_row_unit(const sl_linear_t* L) {
  return L->spmm != NULL ? L->packed.r : L->gemm->rows; /* gemm and gemm_nc: the panel height */
}

size_t sl_linear_row_channel(const sl_linear_t* L, size_t i) { return L->spmm != NULL ? L->packed.out_row[i] : i; }

const uint32_t* sl_linear_out_rows(const sl_linear_t* L) { return L->spmm != NULL ? L->packed.out_row : NULL; }

void sl_linear_run_rows(const sl_linear_t* L, size_t first, size_t count, const uint32_t* out_row, const float* x,
                        float* y, size_t y_stride, size_t pixels) {
  run_rows(L, first, count, out_row, x, y, y_stride, pixels, &(sl_matrix_out_t){.mm = L->mm});
}

void sl_linear_resize(sl_node_t* n, sl_linear_t* L, size_t pixels) {
  double scale = (double)pixels / (double)(L->pixels > 0 ? L->pixels : 1);
  n->flops *= scale;
  n->dense_flops *= scale;
  L->pixels = pixels;
}
