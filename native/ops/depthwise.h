/* Depthwise convolution (ops/depthwise.c), CONV2D's path for groups == channels. */
#ifndef SL_OPS_DEPTHWISE_H
#define SL_OPS_DEPTHWISE_H

#include "op.h"

/* A depthwise convolution (ops/depthwise.c): groups == channels, no dilation. */
typedef struct {
  sl_conv2d_shape_t s;
  const sl_ukernel_t* k; /* dwconv */
  const float* weights; /* [C][KH*KW] */
  const float* bias;
  sl_minmax_t mm;
  sl_activation_t post;
  const sl_ukernel_t* vunary; /* runs post */
  uint32_t pad_h, pad_w, row_len, taps;
  size_t phase_stride, count;
  uint32_t* tap_offset;
} sl_depthwise_t;

sl_status_t sl_depthwise_prepare(sl_model_t* m, sl_node_t* n, sl_depthwise_t* d, const sl_conv2d_shape_t* s,
                                 const float* weights, const float* bias, const sl_activation_t* act);
void sl_depthwise_run(const sl_model_t* m, const sl_node_t* n, const sl_depthwise_t* d, const float* x, float* y,
                      size_t batch);

#endif
