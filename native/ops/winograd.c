/* Winograd F(m x m, 3x3) convolution (Lavin and Gray): each m x m tile of outputs is
 * A^T [sum over input channels of U (.) V] A, with U = G g G^T per (output, input) channel pair
 * (transformed once at load) and V = B^T d B per tile and input channel, d its (m + 2)^2 inputs.
 * The sum is alpha^2 independent products, one per point xi: M[xi] = U[xi] V[xi], [OC][IC] times
 * [IC][tiles], which run on the registry's dense gemm with the tiles as its pixels. Each input
 * channel is first copied into a zero-padded plane as large as the tiles need, so the transform
 * kernels never test an edge; the output transform cuts the bottom and right tiles short.
 * A task is a block of tiles, sized so its V stays in L2, and a range of output channels. */
#include <math.h>
#include <string.h>

#include "../kernels/f32-winograd_in/matrices.h"
#include "implicit_conv.h"
#include "winograd.h"

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* V of a task's block stays within half of L2, and at least 512 KB (tuned on 1 MB L2s), where the
 * block can still hold a gemm tile. With 2 MB (the Intel Xeon) that is 1 MB: a 14x14 F(2x2) layer's
 * 49 tiles in one block instead of 25 + 24, whose gemm tiles were three quarters empty (ResNet-50's
 * 256-channel layers 1.41-1.46 -> 1.10-1.17 ms, its 28x28 F(4x4) ones 12-20% less). */
#define SL_WINOGRAD_V_BYTES (512 * 1024)
static size_t v_bytes(void) {
  const size_t half = sl_cpu_l2_bytes() / 2;
  return half > SL_WINOGRAD_V_BYTES ? half : SL_WINOGRAD_V_BYTES;
}

/* Single layers on this session's AVX-512 EPYC, one thread, ms (implicit GEMM or im2col / F(2x2) /
 * F(4x4)); ResNet-50's: 64ch 56x56 1.07 / 0.73 / 0.59, 128ch 28x28 1.08 / 0.70 / 0.48, 256ch 14x14
 * 1.08 / 0.74 / 0.81, 512ch 7x7 1.37 / 1.03 / 2.07 (F(4x4)'s 36 points stream 2.25x F(2x2)'s
 * weights for 4 tiles); few channels: 16ch 56x56 0.083 / 0.075 / 0.065, 3 -> 32ch 112x112 0.20 /
 * 0.33 / 0.28 (transforms outweigh a 27-long sum). Maps below 7x7 are not measured: im2col.
 * Inside a whole model the 7x7 layers' weights arrive cold, and there F(2x2)'s 16/9 more weight
 * bytes for 16 tiles lose: ResNet-50 80%, EPYC, in the model 2.5 ms (F(2x2)) against 1.4 (implicit)
 * per 512ch 7x7 layer, while 256ch 14x14 stays ahead (1.2 against 1.33); the lent Xeon's 7x7 layers
 * took 2.7 ms each with F(2x2). So F(2x2) from 10x10 maps. */
uint32_t sl_winograd_tile(const sl_conv2d_shape_t* s, int choice) {
  if (s->kernel_h != 3 || s->kernel_w != 3 || s->stride_h != 1 || s->stride_w != 1 || s->dilation_h != 1 ||
      s->dilation_w != 1 || s->groups != 1)
    return 0;
  if (choice >= 0) return (uint32_t)choice; /* sl_model_set_winograd: off, or a tile on every such layer */
  if (s->in_c < 16 || s->out_c < 16) return 0;
  size_t pixels = (size_t)s->out_h * s->out_w;
  return pixels >= 400 ? 4 : pixels >= 100 ? 2 : 0;
}

sl_status_t sl_winograd_prepare(sl_model_t* m, sl_node_t* n, sl_winograd_t* c, const sl_conv2d_shape_t* s,
                                uint32_t tile, const float* weights, const float* bias, const sl_activation_t* act) {
  c->s = *s;
  c->m = tile;
  c->in = sl_op_kernel(m, SL_FAMILY_winograd_in, tile);
  c->out = sl_op_kernel(m, SL_FAMILY_winograd_out, tile);
  c->gemm = sl_op_kernel(m, SL_FAMILY_gemm, 0);
  c->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  c->post = sl_activation_split(act, &c->mm);
  const size_t a = tile + 2, points = a * a, ic = s->in_c, oc = s->out_c;
  /* Shapes come from int32 tensor sides: out_h + 2 and m * tiles stay far below 2^64. */
  size_t tiles_h = ceil_div(s->out_h, tile);
  c->tiles_w = ceil_div(s->out_w, tile);
  c->row_len = tile * c->tiles_w + 2;
  size_t panel_bytes, panels_bytes, pairs, dense_bytes, tiles, plane, planes_bytes;
  if (!sl_size_mul(tiles_h, c->tiles_w, &tiles) || !sl_size_mul(tile * tiles_h + 2, c->row_len, &plane) ||
      !sl_size_mul(plane, ic, &planes_bytes) || !sl_size_mul(planes_bytes, sizeof(float), &planes_bytes) ||
      !sl_gemm_pack_bytes(oc, ic, c->gemm->rows, &panel_bytes) || !sl_size_mul(panel_bytes, points, &panels_bytes) ||
      !sl_size_mul(oc, ic, &pairs) || !sl_size_mul(pairs, points * sizeof(float), &dense_bytes))
    return sl_node_fail(m, n, "the padded planes or transformed weights of this convolution do not fit in memory");
  c->tiles = tiles;
  c->plane = plane;
  c->panel_size = panel_bytes / sizeof(float);
  /* Blocks as even as the budget allows, each at least a gemm tile. */
  size_t most = v_bytes() / (points * sizeof(float)) / ic;
  if (most < c->gemm->pixels) most = c->gemm->pixels;
  c->block = ceil_div(tiles, ceil_div(tiles, most));
  /* Blocks that do not split evenly over the threads (and are fewer than four a thread) split
   * over output channels too, each range transforming the block's inputs again: as few ranges as
   * balance the threads, since those transforms cost a tenth to a third of a range's work. */
  size_t blocks = ceil_div(tiles, c->block), threads = sl_op_threads(m), panels = ceil_div(oc, c->gemm->rows);
  c->oc_chunks = 1;
  while (c->oc_chunks < panels && blocks * c->oc_chunks % threads != 0 && blocks * c->oc_chunks < 4 * threads)
    c->oc_chunks++;
  c->chunk_rows = ceil_div(panels, c->oc_chunks) * c->gemm->rows;
  size_t task_bytes; /* V and M: points x (IC + chunk_rows) x block floats */
  if (!sl_size_mul(points * sizeof(float), c->block, &task_bytes) ||
      !sl_size_mul(task_bytes, ic + c->chunk_rows, &task_bytes))
    return sl_node_fail(m, n, "the transformed tiles of this convolution do not fit in memory");

  c->panels = sl_model_alloc(m, panels_bytes);
  c->bias = sl_model_alloc(m, oc * sizeof(float));
  float* u = sl_model_alloc(m, dense_bytes); /* [xi][OC][IC], packed then released */
  if (c->panels == NULL || c->bias == NULL || u == NULL) return SL_ERROR_OUT_OF_MEMORY; /* sl_model_alloc said why */
  if (bias != NULL) memcpy(c->bias, bias, oc * sizeof(float));
  const double* g = tile == 2 ? &sl_wino_g2[0][0] : &sl_wino_g4[0][0];
  for (size_t o = 0; o < oc; o++)
    for (size_t i = 0; i < ic; i++) {
      const float* w = weights + (o * ic + i) * 9;
      double gw[6][3]; /* G w */
      for (size_t r = 0; r < a; r++)
        for (size_t col = 0; col < 3; col++)
          gw[r][col] = g[r * 3] * w[col] + g[r * 3 + 1] * w[3 + col] + g[r * 3 + 2] * w[6 + col];
      for (size_t r = 0; r < a; r++)
        for (size_t col = 0; col < a; col++) /* (G w) G^T */
          u[((r * a + col) * oc + o) * ic + i] =
              (float)(gw[r][0] * g[col * 3] + gw[r][1] * g[col * 3 + 1] + gw[r][2] * g[col * 3 + 2]);
    }
  for (size_t xi = 0; xi < points; xi++)
    sl_gemm_pack(u + xi * oc * ic, NULL, oc, ic, c->gemm->rows, c->panels + xi * c->panel_size);
  sl_model_release(m, u);
  sl_reserve_scratch(m, n, planes_bytes, task_bytes);
  n->kernel = c->in->name;
  return SL_OK;
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const sl_winograd_t* c;
  const float* x; /* one image */
  float* y;
  float* planes;
} job_t;

/* Task = input channel: its zero-padded plane (m * tiles + 2 >= out + 2 = in + both paddings per
 * side, so the tiles never read past it). */
static void fill_task(void* ctx, size_t ic, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const sl_winograd_t* c = j->c;
  const sl_conv2d_shape_t* s = &c->s;
  sl_conv2d_fill_planes(s, NULL, j->x + ic * s->in_h * s->in_w, j->planes + ic * c->plane, c->row_len,
                        c->plane / c->row_len, c->plane);
}

/* Task = (block of tiles, range of output channels): input transforms into the thread's V, the
 * products per point into its M, output transforms into y, row segment by row segment. */
static void block_task(void* ctx, size_t task, size_t thread) {
  static const sl_minmax_t unclamped = {-INFINITY, INFINITY};
  const job_t* j = ctx;
  const sl_winograd_t* c = j->c;
  const sl_conv2d_shape_t* s = &c->s;
  const size_t m = c->m, points = (m + 2) * (m + 2), ic = s->in_c, oc = s->out_c, block = c->block;
  const size_t chunk = task % c->oc_chunks, t0 = task / c->oc_chunks * block;
  const size_t t1 = t0 + block < c->tiles ? t0 + block : c->tiles;
  const size_t rows = c->gemm->rows, panels = ceil_div(oc, rows);
  const size_t r0 = chunk * panels / c->oc_chunks * rows;
  size_t r1 = (chunk + 1) * panels / c->oc_chunks * rows;
  if (r1 > oc) r1 = oc;
  float* v = sl_scratch_thread(j->m, j->n, thread);
  float* mt = v + points * ic * block;
  for (size_t t = t0; t < t1;) {
    size_t ty = t / c->tiles_w, tx = t % c->tiles_w, count = c->tiles_w - tx < t1 - t ? c->tiles_w - tx : t1 - t;
    c->in->fn.winograd_in(count, ic, j->planes + m * ty * c->row_len + m * tx, c->row_len, c->plane, v + (t - t0),
                          ic * block, block);
    t += count;
  }
  for (size_t xi = 0; xi < points; xi++)
    c->gemm->fn.gemm(t1 - t0, r1 - r0, ic, v + xi * ic * block, block, NULL,
                     c->panels + xi * c->panel_size + r0 * (ic + 1), mt + xi * c->chunk_rows * block, block,
                     &(sl_matrix_out_t){.mm = unclamped});
  const size_t ow = s->out_w, ohw = (size_t)s->out_h * ow;
  for (size_t t = t0; t < t1;) {
    size_t ty = t / c->tiles_w, tx = t % c->tiles_w, count = c->tiles_w - tx < t1 - t ? c->tiles_w - tx : t1 - t;
    size_t out_rows = s->out_h - m * ty < m ? s->out_h - m * ty : m;
    size_t cols = ow - m * tx < m * count ? ow - m * tx : m * count;
    float* y = j->y + r0 * ohw + m * ty * ow + m * tx;
    c->out->fn.winograd_out(count, r1 - r0, mt + (t - t0), c->chunk_rows * block, block, c->bias + r0, y, ow, ohw,
                            out_rows, cols, &c->mm);
    if (c->post.type != SL_ACT_NONE)
      for (size_t o = r0; o < r1; o++)
        for (size_t i = 0; i < out_rows; i++) {
          float* row = y + (o - r0) * ohw + i * ow;
          c->vunary->fn.vunary(&c->post, row, row, cols);
        }
    t += count;
  }
}

void sl_winograd_run(const sl_model_t* m, const sl_node_t* n, const sl_winograd_t* c, const float* x, float* y,
                     size_t batch) {
  const sl_conv2d_shape_t* s = &c->s;
  for (size_t b = 0; b < batch; b++) {
    job_t j = {m, n, c, x + b * s->in_c * s->in_h * s->in_w, y + b * s->out_c * s->out_h * s->out_w,
               sl_scratch_shared(m)};
    sl_parallel_for(m, s->in_c, fill_task, &j);
    sl_parallel_for(m, ceil_div(c->tiles, c->block) * c->oc_chunks, block_task, &j);
  }
}
