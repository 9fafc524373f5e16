/* Fused inverted-residual blocks (ops/fused_block.c): 1x1 expand -> depthwise -> 1x1 project
 * (+ the residual add), optionally after a leading depthwise whose output the expand reads
 * (BlazeFace's double blocks), run over bands of output rows so the intermediate activations
 * stay in cache (the expanded rows in L1, a chunk of channels at a time) instead of streaming
 * through memory. The runtime finds the chains at load
 * (runtime/fuse.c); CONV2D builds and runs the block from its first op. */
#ifndef SL_OPS_FUSED_BLOCK_H
#define SL_OPS_FUSED_BLOCK_H

#include "depthwise.h"
#include "linear.h"

/* When fusing pays (sl_model_set_fusion's automatic mode): the expand runs sparse, the expand's
 * output is at least SL_FUSED_BLOCK_MIN_BYTES per image (SL_FUSED_CHUNKED_MIN_BYTES where the expand
 * widens its input and runs in chunks), the depthwise has stride 1, or stride 2 where a core's L2 is
 * SL_FUSED_S2_L2_BYTES or more or, chunked, the expanded tensor SL_FUSED_S2_L2S times a known L2 or
 * more, and the rows bands share are at most SL_FUSED_MAX_SHARED_PCT percent
 * of their new ones. MobileNetV2 at 90% (4x1) on the lent Xeon, before chunks: the 112x112 and 56x56
 * blocks ran 0.84, 0.84 and 0.93x their unfused time; 28x28 (602 KB) 1.0-1.25x; dense blocks
 * 1.04-1.18x (gemm tiles lose more on short bands than the cache saves). Stride 2 splits the
 * machines: the AMD EPYC (1 MB L2, 32 MB L3 for 8 cores) ran the 112x112 block in 0.215 ms fused
 * against 0.178 unfused (56x56: 0.11 against 0.083), as unfused dwconv_s2 reads its input in place
 * and the expanded 4.8 MB stay in L3, the model 3.6% faster without them (80%: 1.9%). The 2-vCPU
 * Xeon (2 MB L2, family 6 model 167) ran them in 0.28-0.29 against 0.51-0.54 ms and 0.115 against
 * 0.17, the model 2.07 -> 1.80 ms: there the unfused expand writes at 15 GB/s. Phones' L2 (256-512
 * KB a core) is nearer the EPYC's. With chunks, on that Xeon: dense blocks ran the model 3% slower;
 * the 28x28 and 14x14 blocks (200 KB and more, shared rows within 30%) left one thread's time within
 * noise (MobileNetV2 and EfficientNet-Lite0 at 90%) and two threads' 26% and 10% shorter, as a band
 * keeps its data on one core: on this VM data another core wrote arrives several times slower. On
 * the lent 16-core Xeon: 4 threads 5-7% faster, 8 threads 4% slower, 16 threads 10-16% slower (the
 * small blocks' two bands keep at most two threads busy). With chunks on a 2-vCPU Zen 4 EPYC (1 MB
 * L2), MobileNetV2 90%, medians of 30 alternating processes: the 112x112 stride-2 block (4.8 MB
 * expanded) 0.557 -> 0.388 ms fused, the model 6% faster (EfficientNet-Lite0 90%: 0.443 -> 0.286,
 * 6%); the 56x56 one (1.8 MB) 0.121 -> 0.165, slower. ARM and WASM report no L2: unmeasured there. */
#define SL_FUSED_BLOCK_MIN_BYTES (1024 * 1024)
#define SL_FUSED_CHUNKED_MIN_BYTES (200 * 1024)
#define SL_FUSED_MAX_SHARED_PCT 30
#define SL_FUSED_S2_L2_BYTES (2 * 1024 * 1024)
#define SL_FUSED_S2_L2S 4
/* A band's depthwise output (and its expanded rows where they are not chunked, and a leading
 * depthwise's rows), per thread: this, or a quarter of a core's L2 where that is more (the 2 MB L2
 * Xeon, before chunks: MobileNetV2's 112x112 stride-2 block held 2 output rows a band in 256 KB and
 * ran 0.376 ms, 0.306 with the 4 of 512 KB; on 1 MB L2s 512 KB was within noise). */
#define SL_FUSED_BAND_BYTES (256 * 1024)
/* The expanded rows of a chunk of channels (at least one unit of the expand's rows), written by
 * the expand and read by the depthwise while they stay in L1. MobileNetV2 at 90% on the 2 MB L2
 * Xeon: 8 KB chunks ran the model 5% slower than 16 KB, 32 KB 1% slower; on the Zen 4 EPYC (32 KB
 * L1), blocks of 112x112 to 28x28 0.76 ms in 16 KB chunks, 0.96 in 8 KB, 0.91 in 24 KB, 0.76 in 12
 * KB (medians of 16 alternating processes). -D overrides it. */
#ifndef SL_FUSED_CHUNK_BYTES
#define SL_FUSED_CHUNK_BYTES (16 * 1024)
#endif
/* Bands per image at least (tasks for the threads) where the band height is automatic: fixed, as
 * results must not depend on the thread count; more bands share more rows. */
#define SL_FUSED_MIN_BANDS 2

/* The depthwise over a band of out_rows output rows, its input the band's padded rows. */
typedef struct {
  sl_depthwise_t dw;
  uint32_t out_rows;
} sl_fused_kind_t;

/* A depthwise with stride 1, output as wide as its input and a kernel up to 5 wide: one dwconv
 * call over rows of a band buffer in place, with these taps, then `post`. */
typedef struct {
  const sl_ukernel_t* k;
  sl_dwconv_taps_t taps;
  float* packed;
  sl_minmax_t mm;
  sl_activation_t post;
} sl_fused_dwconv_t;

typedef struct {
  /* The first op's, over whole input planes; with a leading depthwise, expand_band. */
  const sl_linear_t* expand;
  sl_linear_t project;       /* over one band, its input rows band_rows * out_w apart */
  /* The depthwise in place (in_place), else one prepared per band height (kinds). */
  bool in_place;
  sl_fused_dwconv_t dwconv;
  sl_fused_kind_t kinds[2];
  /* A leading depthwise (has_pre): the expand's new rows come from `pre` run over the block's
   * input rows they need, copied with their zero padding into pre_x (per channel pre_x_stride
   * floats), through pre_y (pre_y_stride), which expand_band reads. */
  bool has_pre;
  sl_fused_dwconv_t pre;
  sl_linear_t expand_band;
  uint32_t pre_kernel_h, pre_pad_top;
  size_t pre_x_stride, pre_y_stride;
  uint32_t num_kinds, bands, band_rows; /* a task per band */
  size_t chunk;    /* expand rows (in its kernels' order) per chunk */
  bool by_channel; /* one chunk whose rows lie at their channels */
  const uint32_t* out_rows; /* the expand kernels' output rows: 0 .. chunk - 1, or (by_channel) its channels */
  uint32_t in_c, in_h, in_w, mid_c, out_c, out_h, out_w, stride_h, pad_top, kernel_h;
  size_t e_stride, d_stride; /* floats per channel of the band buffers */
  sl_epilogue_t residual;
  bool residual_in_kernel; /* the project's kernel starts from it (sl_linear_takes_residual) */
  const sl_ukernel_t* vunary;
} sl_fused_block_t;

/* The depthwise and project halves of a block, as CONV2D parsed them. */
typedef struct {
  sl_conv2d_shape_t shape;
  const float* weights; /* dense [C][1][KH][KW] */
  const float* bias;
  sl_activation_t act;
} sl_fused_dw_t;

/* A 1x1 half: the project, or the expand after a leading depthwise. */
typedef struct {
  sl_tensor_t weights; /* [OC][IC] */
  const float* bias;
  sl_activation_t act;
} sl_fused_project_t;

/* A leading depthwise and the expand that reads it. */
typedef struct {
  sl_fused_dw_t dw;
  sl_node_t* expand_node;
  sl_fused_project_t expand;
} sl_fused_pre_t;

/* Plans the block for an expand over in_h x in_w maps with bands of band_rows output rows, or,
 * when band_rows is 0, only where it pays, with bands sized to the band budget (*b stays
 * NULL when it would not). pre: the leading depthwise (NULL: none), which must keep its input's
 * size, stride 1, and a kernel up to 5 wide. add_act: the residual ADD's activation, NULL without
 * one; the residual is the block's input. Reserves per-thread scratch on `head`. */
sl_status_t sl_fused_block_prepare(sl_model_t* m, sl_node_t* head, sl_node_t* dw_node, sl_node_t* project_node,
                                   const sl_linear_t* expand, uint32_t band_rows, uint32_t in_h, uint32_t in_w,
                                   const sl_fused_pre_t* pre, const sl_fused_dw_t* dw,
                                   const sl_fused_project_t* project, const sl_activation_t* add_act,
                                   sl_fused_block_t** b);
/* x: the block's input (and the residual), y: the block's output, `batch` images. */
void sl_fused_block_run(const sl_model_t* m, const sl_node_t* head, const sl_fused_block_t* b, const float* x,
                        float* y, size_t batch);

#endif
