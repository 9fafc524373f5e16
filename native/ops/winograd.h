/* Winograd convolutions (ops/winograd.c): CONV2D's path for dense 3x3, stride-1, undilated,
 * ungrouped layers where it is expected to beat implicit GEMM (sl_winograd_tile). */
#ifndef SL_OPS_WINOGRAD_H
#define SL_OPS_WINOGRAD_H

#include "op.h"

typedef struct {
  sl_conv2d_shape_t s;
  uint32_t m;                       /* output tile side: F(m x m, 3x3), alpha = m + 2 */
  const sl_ukernel_t *in, *out, *gemm;
  const sl_ukernel_t* vunary;       /* runs post */
  sl_minmax_t mm;
  sl_activation_t post;
  float* panels;                    /* per point xi: U[xi] = (G g G^T)[xi], packed for gemm */
  size_t panel_size;                /* floats of one point's panels */
  float* bias;                      /* per output channel, zeros when the layer has none */
  size_t tiles_w, tiles;            /* per image */
  size_t row_len, plane;            /* zero-padded input planes: floats per row, per channel */
  size_t block;                     /* tiles per task */
  size_t oc_chunks, chunk_rows;     /* output channel ranges per block, the most rows of one */
} sl_winograd_t;

/* The output tile side m (2 or 4) Winograd should run this layer with, or 0 where implicit GEMM
 * is expected to be faster or the shape is not Winograd's (3x3, stride 1, undilated, one group).
 * choice: sl_op_winograd's (-1: by the measured rule). */
uint32_t sl_winograd_tile(const sl_conv2d_shape_t* s, int choice);
/* weights: dense [OC][IC][3][3]; bias may be NULL. */
sl_status_t sl_winograd_prepare(sl_model_t* m, sl_node_t* n, sl_winograd_t* c, const sl_conv2d_shape_t* s,
                                uint32_t tile, const float* weights, const float* bias, const sl_activation_t* act);
void sl_winograd_run(const sl_model_t* m, const sl_node_t* n, const sl_winograd_t* c, const float* x, float* y,
                     size_t batch);

#endif
