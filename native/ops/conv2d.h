/* CONV2D's entry for the runtime's fusion pass (runtime/fuse.c). */
#ifndef SL_OPS_CONV2D_H
#define SL_OPS_CONV2D_H

#include "op.h"

/* Makes the chain's first op run [pre (depthwise) ->] expand (1x1) -> dw (depthwise) -> project
 * (1x1), and the residual ADD `add` (NULL: none; its inputs are project's output and the chain's
 * input) as one fused block when the ops' paths and shapes allow it, in bands of band_rows
 * output rows (0: only where it pays); pre may be NULL; *fused says whether it did. The caller
 * has checked the graph: each intermediate tensor is read only by the next op. */
sl_status_t sl_conv2d_fuse(sl_model_t* m, sl_fb_t* fb, uint32_t band_rows, sl_node_t* pre, sl_node_t* expand,
                           sl_node_t* dw, sl_node_t* project, sl_node_t* add, bool* fused);
/* The elementwise ops a convolution can run on each block of its output as it computes it
 * (pointwise and implicit-GEMM paths): *fused says whether it took the op on. The caller has
 * checked that only that op reads what it consumes and that its other input is ready first. */
/* The ADD `add` of its input `residual` (same shape) and the convolution's output; where `pad`
 * (else NULL) zero-pads that input's channels only, of the pad's input instead. *in_place: whether
 * the output may share the residual's bytes (each element is read before it is written). */
sl_status_t sl_conv2d_fuse_add(sl_model_t* m, sl_fb_t* fb, sl_node_t* conv, sl_node_t* add, int residual,
                               const sl_node_t* pad, bool* fused, bool* in_place);
/* The PRELU `prelu` of what the convolution (with its fused ADD) writes, slopes per channel or shared. */
sl_status_t sl_conv2d_fuse_prelu(sl_model_t* m, sl_node_t* conv, sl_node_t* prelu, bool* fused);
/* fp16 chains (sl_plan_halves): whether the convolution, running fp16 on the pointwise or depthwise
 * path, could read its input (`output` false) or write its output as halves; then that it does. */
bool sl_conv2d_halves_ok(const sl_node_t* conv, bool output);
void sl_conv2d_use_halves(sl_node_t* conv, bool output);

#endif
