/* 1x1 convolutions and fully connected layers (ops/linear.c), shared by CONV2D and
 * FULLY_CONNECTED. */
#ifndef SL_OPS_LINEAR_H
#define SL_OPS_LINEAR_H

#include "op.h"

/* Dense layers of at most this many pixels (14x14 maps and smaller) run gemm_nc: a gemm tile is
 * whole vectors of pixels, and its last, partial tile costs almost a full one.
 * benchmarks/bench_kernels.py on this session's AVX-512 EPYC: gemm_nc runs 49 pixels 1.15-1.3x
 * gemm's speed, 196 pixels 0.9-1.0x, 784 and more 0.4-0.9x; whole models with 256 here against
 * 64 ran as fast or a little faster (dense ResNet-50 41.1 against 41.8 ms, MobileNetV2 4.07
 * against 4.11 ms), the layer's own scatter-free stores and splits over channels counting too. */
#define SL_GEMM_NC_MAX_PIXELS 256

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
} sl_linear_t;

/* w: dense [rows][cols] or group-sparse; bias may be NULL; channel-major x and y rows are
 * `stride` floats apart (>= pixels; token-major layers ignore it). Reserves the node's scratch;
 * sets n->kernel and flops. */
sl_status_t sl_linear_prepare(sl_model_t* m, sl_node_t* n, sl_linear_t* L, const sl_tensor_t* w,
                              const float* bias, sl_linear_layout_t layout, size_t pixels, size_t stride,
                              const sl_activation_t* act);
/* r: the residual (sl_epilogue_t) when L->epilogue has one, else NULL. */
void sl_linear_run(const sl_model_t* m, const sl_linear_t* L, const float* x, float* y, const float* r);
/* A channel-major layer over `pixels` pixels on the calling thread alone: x at the prepared
 * stride, y rows y_stride apart (a fused block's row bands). */
void sl_linear_run_serial(const sl_linear_t* L, const float* x, float* y, size_t y_stride, size_t pixels);
/* Runs `pixels` (<= the prepared count) from now on, with the same strides. */
void sl_linear_resize(sl_node_t* n, sl_linear_t* L, size_t pixels);

#endif
