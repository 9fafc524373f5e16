/* 1x1 convolutions and fully connected layers (ops/linear.c), shared by CONV2D and
 * FULLY_CONNECTED. */
#ifndef SL_OPS_LINEAR_H
#define SL_OPS_LINEAR_H

#include "op.h"

/* A 1x1 convolution or fully connected layer on channel-major data,
 * y[rows][pixels] = W[rows][cols] x[cols][pixels] + bias, then the activation.
 * Prepare picks sparse (spmm, with the block size r) or dense (gemm) per layer
 * from the kernels' measured efficiencies, or by timing both when tuning. */
typedef struct {
  size_t rows, cols, pixels;
  size_t stride; /* pixel stride of x and y: the pixels prepare saw (a resize may run fewer) */
  sl_minmax_t mm;
  sl_activation_t post; /* applied after the kernel; NONE when the clamp is the activation */
  const sl_ukernel_t* vunary; /* runs post */
  const sl_ukernel_t* spmm;      /* NULL when the layer runs dense */
  const sl_ukernel_t* spmm_tail; /* r = 1, for the packed tail rows */
  sl_spmm_packed_t packed;
  const sl_ukernel_t* gemm; /* gemm, or gemv for a layer of one pixel (stride 1) */
  float* panels;
} sl_linear_t;

/* w: dense [rows][cols] or group-sparse; bias may be NULL; x and y rows are `stride` floats
 * apart (>= pixels). Sets n->kernel and flops. */
sl_status_t sl_linear_prepare(sl_model_t* m, sl_node_t* n, sl_linear_t* L, const sl_tensor_t* w,
                              const float* bias, size_t pixels, size_t stride, const sl_activation_t* act);
void sl_linear_run(const sl_model_t* m, const sl_linear_t* L, const float* x, float* y);
/* Runs `pixels` (<= the prepared count) from now on, with the same strides. */
void sl_linear_resize(sl_node_t* n, sl_linear_t* L, size_t pixels);

#endif
