/* Depthwise convolution (ops/depthwise.c), CONV2D's path for groups == channels. */
#ifndef SL_OPS_DEPTHWISE_H
#define SL_OPS_DEPTHWISE_H

#include "op.h"

/* One plane of a channel's padded input: rows [dr0, dr1) and columns [c0, c1) hold input rows
 * in_row + r * stride_h and columns in_col + c * stride_w (counted from dr0 and c0); the rest
 * is zero. */
typedef struct {
  uint32_t dr0, dr1, c0, c1;
  size_t in_row, in_col;
  bool unzip; /* the next plane holds this one's odd columns: one unzip fills both */
} sl_dw_plane_t;

/* A depthwise convolution (ops/depthwise.c): groups == channels, no dilation. */
typedef struct {
  sl_conv2d_shape_t s;
  const sl_ukernel_t* k;      /* dwconv */
  const sl_ukernel_t* s2;     /* dwconv_s2 where the shape suits it (then no planes) */
  const sl_ukernel_t* nc;     /* dwconv_nc where it is the faster path (then no planes) */
  size_t nc_scratch;          /* its bytes per thread */
  const sl_ukernel_t* unzip;  /* fills stride-2 planes */
  const sl_ukernel_t* vunary; /* runs post */
  sl_minmax_t mm;
  sl_activation_t post;
  float* packed; /* per channel: the bias, then the weights in tap order; dwconv_nc's per group */
  /* fp16 (sl_op_fp16, output rows of at most SL_F16_DWCONV_MAX_WIDTH): planes and outputs in halves,
   * through these kernels and packed16, the weights as halves; no direct rows, no dwconv_s2. */
  const sl_ukernel_t *k16, *to16, *from16;
  sl_f16* packed16;
  bool half_in, half_out; /* fp16 chains (sl_plan_halves): x holds halves; y takes them (no post) */
  sl_dwconv_taps_t taps;
  sl_dw_plane_t* planes;
  uint32_t num_planes, channels; /* channels per task */
  size_t plane, slot;            /* elements: one plane; one channel's planes */
  int64_t row_lo;                /* plane row 0 is phase row row_lo */
  bool direct;                   /* output rows [r0, r1) read the input in place */
  uint32_t r0, r1, top_end, bottom_begin; /* direct: input rows [0, top_end) and [bottom_begin, in_h) are copied */
  uint32_t bands; /* direct, threaded: tasks cover bands of output rows, as the 1x1 layers around split pixels */
} sl_depthwise_t;

sl_status_t sl_depthwise_prepare(sl_model_t* m, sl_node_t* n, sl_depthwise_t* d, const sl_conv2d_shape_t* s,
                                 const float* weights, const float* bias, const sl_activation_t* act);
void sl_depthwise_run(const sl_model_t* m, const sl_node_t* n, const sl_depthwise_t* d, const float* x, float* y,
                      size_t batch);

/* The bytes of planes sl_depthwise_run_serial needs per thread. */
size_t sl_depthwise_slots_bytes(const sl_depthwise_t* d);
/* Channels per dwconv_nc group (1 without one): where a run of channels may start. */
size_t sl_depthwise_channel_unit(const sl_depthwise_t* d);
/* One image's channels [c0, c0 + channels) (x and y at channel c0, channels x_stride and y_stride
 * floats apart) on the calling thread, with planes in `slots`, which the first call with *zeroed
 * false zeroes: a fused block's row bands. c0 must be a multiple of sl_depthwise_channel_unit. */
void sl_depthwise_run_serial(const sl_depthwise_t* d, const float* x, size_t x_stride, float* y, size_t y_stride,
                             size_t c0, size_t channels, float* slots, bool* zeroed);

#endif
