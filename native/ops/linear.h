/* 1x1 convolutions and fully connected layers (ops/linear.c), shared by CONV2D and
 * FULLY_CONNECTED. */
#ifndef SL_OPS_LINEAR_H
#define SL_OPS_LINEAR_H

#include "op.h"

/* Dense layers of at most this many pixels (7x7 to 11x11 maps) run gemm_nc: a gemm tile is whole
 * vectors of pixels, and its last, partial tile costs almost a full one. benchmarks/bench_kernels.py
 * (AVX-512): gemm_nc runs 49 pixels at 1.0-1.07x gemm's speed on the Intel Xeon and 1.16-1.33x on
 * the AMD EPYC, but 196 pixels at only 0.77-0.86x (Xeon) and 0.82-1.0x (EPYC): at 14x14, gemm's
 * 48-pixel tiles waste 6% and its panels stay in L1, where gemm_nc streams its panels from L2 once per
 * 6 pixels. (Whole-model A/B runs on the shared hosts were within their noise.) -D overrides it. */
#ifndef SL_GEMM_NC_MAX_PIXELS
#define SL_GEMM_NC_MAX_PIXELS 128
#endif
/* ... except channel-major layers whose pixels are whole vectors, from this many on (an 8x8 map):
 * no gemm lane idles there, and gemm_nc's transposes in and scattered stores out cost more. A
 * 128-channel 1x1 layer at 8x8 on the Zen 4 EPYC: 0.83x gemm_nc's time (AVX-512), 0.75x (AVX2);
 * at 4x4 AVX2's gemm lost 19%. */
#define SL_GEMM_WHOLE_VECTORS_FROM 64

/* Channel-major: x[cols][stride] -> y[rows][stride] (NCHW 1x1 convolutions); token-major:
 * x[pixels][cols] -> y[pixels][rows] (FC over tokens, NHWC). */
typedef enum { SL_LINEAR_CHANNEL_MAJOR, SL_LINEAR_TOKEN_MAJOR } sl_linear_layout_t;

/* A 1x1 convolution or fully connected layer, y = W[rows][cols] x + bias, then the activation.
 * Prepare picks sparse (spmm, with the block size r) or dense per layer from the kernels'
 * measured efficiencies, or by timing both when tuning. Dense runs gemm (vectors along
 * pixels) or gemm_nc (vectors along output channels: token-major data, and few pixels). */
typedef struct {
  sl_linear_layout_t layout;
  size_t rows, cols, pixels;
  size_t stride; /* channel-major pixel stride of x and y (token-major: of the spmm's transposed
                    copies), from the pixels prepare saw, as a resize may run fewer */
  sl_minmax_t mm;
  sl_activation_t post; /* applied after the kernel; NONE when the clamp is the activation */
  const sl_ukernel_t* vunary; /* runs post */
  const sl_ukernel_t* spmm;      /* NULL when the layer runs dense */
  const sl_ukernel_t* spmm_tail; /* r = 1, for the packed tail rows */
  sl_spmm_packed_t packed;
  const sl_ukernel_t* gemm; /* gemm or gemm_nc */
  float* panels;
  sl_epilogue_t epilogue; /* channel-major only; its residual is sl_linear_run's r */
  /* fp16 (sl_op_fp16; channel-major spmm and gemm layers): the kernel's f16 twin (and r = 1 one
   * for spmm's tail rows) on the packed values or panels as halves, x and y converted at the
   * layer's boundaries in the shared scratch. NULL: fp32. */
  const sl_ukernel_t *k16, *k16_tail, *to16, *from16;
  sl_f16* weights16;
  /* fp16 chains (sl_plan_halves): x already holds halves, y is written as halves (channel-major
   * only, no activation after the clamp), laid out as the floats would be. */
  bool half_in, half_out;
  size_t scratch_at; /* bytes into the shared scratch where its copies start: a caller's data (a
                        strided 1x1 conv's subsampled input) lies before them */
  size_t stage_pixels, stage_panels; /* sl_linear_stage's pieces: pixels (0: the kernels write y), and
                                        gemm panels (0: every row, in pieces of pixels) */
  bool residual_in_kernel; /* sl_linear_residual_in_kernel */
  size_t x_pad; /* sl_linear_pad_planes: x copied into planes this many floats apart first (0: read in place) */
} sl_linear_t;

/* w: dense [rows][cols] or group-sparse; bias may be NULL; channel-major x and y rows are
 * `stride` floats apart (>= pixels; token-major layers ignore it). Reserves the node's scratch;
 * sets n->kernel and flops. */
sl_status_t sl_linear_prepare(sl_model_t* m, sl_node_t* n, sl_linear_t* L, const sl_tensor_t* w,
                              const float* bias, sl_linear_layout_t layout, size_t pixels, size_t stride,
                              const sl_activation_t* act);
/* Whether L's kernels can start their sums from e's residual (sl_matrix_out_t), then apply the
 * ADD's clamp and any PRELU, with no pass after them: fp32 spmm and gemm, channel-major, a residual
 * over every channel, and the layer's own activation and the ADD's beyond its clamp none. Each tile
 * reads its residual before writing the same place of y, so y may share the residual's bytes. */
bool sl_linear_takes_residual(const sl_linear_t* L, const sl_epilogue_t* e);
/* For a fused residual ADD (ops/conv2d.c): sl_linear_takes_residual of L's own epilogue, kept for
 * its runs. */
bool sl_linear_residual_in_kernel(sl_linear_t* L);
/* For a fused residual ADD whose sum y may then share the residual's bytes (runtime/fuse.c),
 * which a kernel writing y would overwrite before the add reads them, where the kernels do not
 * take the residual: they write pieces of pixels into the node's per-thread scratch, from which
 * the epilogue writes y once. False (and nothing changed) where the layer cannot: fp16, or
 * token-major. */
bool sl_linear_stage(sl_model_t* m, sl_node_t* n, sl_linear_t* L);
/* For sl_linear_run (not _serial): where spmm would read channel-major planes that do not start on
 * a cache line (6x6, 7x7 and 14x14 maps) with AVX-512, whose 64-byte loads then straddle two lines,
 * x is copied into whole-line planes in the node's shared scratch (at scratch_at) before the kernels
 * run. Call right after sl_linear_prepare; does nothing elsewhere. */
void sl_linear_pad_planes(sl_model_t* m, sl_node_t* n, sl_linear_t* L);
/* sl_linear_run on a channel-major x whose planes already lie x_pad floats apart where the layer
 * asked for padded planes (a strided 1x1 conv's subsampled copy, written so). */
void sl_linear_run_planes(const sl_model_t* m, const sl_node_t* n, const sl_linear_t* L, const float* x, float* y,
                          const float* r);
/* Back to reading x in place: for callers that run the layer on x themselves (a fused block's expand). */
void sl_linear_unpad_planes(sl_linear_t* L);
/* n: the node that prepared L. r: the residual (sl_epilogue_t) when L->epilogue has one, else NULL. */
void sl_linear_run(const sl_model_t* m, const sl_node_t* n, const sl_linear_t* L, const float* x, float* y,
                   const float* r);
/* A channel-major layer over `pixels` pixels on the calling thread alone: x at the prepared
 * stride, y rows y_stride apart (a fused block's row bands). stage: the kernels' output stage
 * where sl_linear_takes_residual said they take one (NULL: the layer's own clamp). */
void sl_linear_run_serial(const sl_linear_t* L, const float* x, float* y, size_t y_stride, size_t pixels,
                          const sl_matrix_out_t* stage);
/* A layer's output rows in its kernels' order: position i computes channel sl_linear_row_channel(L, i)
 * (spmm's packed rows follow the weights' out_perm; sl_linear_out_rows: all of them, NULL for dense
 * layers). sl_linear_run_rows runs positions [first, first + count) as sl_linear_run_serial would
 * (the layer's own clamp); first must be a multiple of sl_linear_row_unit, and so must count unless
 * the run ends at the last row. Position i goes to y + out_row[i - first] * y_stride (spmm; out_row
 * 0, 1, 2, ... packs the run, sl_linear_out_rows() + first puts rows at their channels), dense
 * layers' to y + (i - first) * y_stride. */
size_t sl_linear_row_unit(const sl_linear_t* L);
size_t sl_linear_row_channel(const sl_linear_t* L, size_t i);
const uint32_t* sl_linear_out_rows(const sl_linear_t* L);
void sl_linear_run_rows(const sl_linear_t* L, size_t first, size_t count, const uint32_t* out_row, const float* x,
                        float* y, size_t y_stride, size_t pixels);
/* Runs `pixels` (<= the prepared count) from now on, with the same strides. */
void sl_linear_resize(sl_node_t* n, sl_linear_t* L, size_t pixels);

#endif
