/* Convolutions as one gemm over padded input planes (ops/implicit_conv.c), CONV2D's path for
 * kernels other than 1x1 and depthwise on maps of more than SL_IMPLICIT_CONV_MIN_PIXELS outputs. */
#ifndef SL_OPS_IMPLICIT_CONV_H
#define SL_OPS_IMPLICIT_CONV_H

#include "op.h"

/* Smaller maps gather patches for gemm_nc instead: their junk columns and partial pixel tiles
 * cost more than the gather. ResNet-50's 3x3 layers on this session's AVX-512 EPYC: 14x14 runs
 * implicitly at 219 GFLOP/s against 197 gathered, 7x7 at 155 against 170. */
#define SL_IMPLICIT_CONV_MIN_PIXELS 64
/* Layers with at most this many weights per output channel (3-channel stems: 27 for 3x3, 75 for
 * 5x5) run the gemm one output row at a time straight into the output: with so little work per
 * output, copying a block out of scratch would cost about as much as computing it. Rows of at least
 * two thirds of a gemm tile qualify (iris_landmark's 32-wide stem: 6% faster alone, Zen 4 EPYC). */
#define SL_IMPLICIT_CONV_DIRECT_MAX_PATCH 80
/* Up to this many, rows at least two gemm tiles wide also run in place: their partial vector is
 * a small share of a row, less than the junk columns and the copy (ResNet-50's 7x7 stem, 147
 * weights, 112-wide rows: 1.12 -> 1.06 ms alone, 1.32 -> 1.19 in the model, EPYC). */
#define SL_IMPLICIT_CONV_DIRECT_WIDE_PATCH 160

typedef struct {
  sl_conv2d_shape_t s;
  const sl_ukernel_t* gemm;
  const sl_ukernel_t* vunary; /* runs post */
  const sl_ukernel_t* unzip;  /* fills the planes of a column stride of 2 */
  sl_minmax_t mm;
  sl_activation_t post;
  float* panels;       /* per group, packed for gemm */
  size_t panel_size;   /* floats of one group's panels */
  size_t patch;        /* weights per output channel: a gemm column per tap */
  uint32_t* x_offset;  /* per tap: its offset in one group's planes */
  size_t row_len, phase_rows, phase_stride, plane; /* padded planes, per input channel */
  bool direct;         /* the gemm writes output rows in place (SL_IMPLICIT_CONV_DIRECT_*_PATCH) */
  bool seamless;       /* rows have no junk columns (a kernel no wider than its stride, unpadded: 2x2 stride 2
                          downsampling, patch embeddings), so flat outputs are y's pixels, written in place */
  size_t count, block; /* flat outputs (rows of row_len) and per task; direct: output rows */
  size_t row_chunks;   /* output channel ranges per block */
  sl_epilogue_t epilogue; /* its residual is sl_implicit_conv_run's r */
} sl_implicit_conv_t;

/* One input channel `in` as its stride phases in `plane`: phase (qy, qx) at qy * stride_w + qx times
 * phase_stride, each phase_rows rows of row_len with the padding and what lies past the input zero.
 * Stride 1 gives one zero-padded plane (the Winograd path's). `unzip` (may be NULL) splits the
 * rows of a column stride of 2. */
void sl_conv2d_fill_planes(const sl_conv2d_shape_t* s, const sl_ukernel_t* unzip, const float* in, float* plane, size_t row_len,
                           size_t phase_rows, size_t phase_stride);
/* Whether this shape's planes and tap offsets fit the kernel's 32-bit offsets. */
bool sl_implicit_conv_fits(const sl_conv2d_shape_t* s);
/* weights: dense [OC][IC/groups][KH][KW]; bias may be NULL. */
sl_status_t sl_implicit_conv_prepare(sl_model_t* m, sl_node_t* n, sl_implicit_conv_t* c, const sl_conv2d_shape_t* s,
                                     const float* weights, const float* bias, const sl_activation_t* act);
/* r: the residual, r_image floats an image, when c->epilogue has one, else NULL. */
void sl_implicit_conv_run(const sl_model_t* m, const sl_node_t* n, const sl_implicit_conv_t* c, const float* x,
                          float* y, const float* r, size_t r_image, size_t batch);

#endif
