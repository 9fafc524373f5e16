/* Kernel families, their reference implementations, and the list that declares
 * every variant. The list feeds both kernel selection (a lookup by ISA and
 * shape, never if-chains in ops) and the tests that check each variant against
 * the reference. */
#ifndef SL_KERNELS_H
#define SL_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/sparselite.h" /* the SL_ISA_* bits */

#if defined(__x86_64__) || defined(__i386__)
#define SL_ARCH_X86 1
#else
#define SL_ARCH_X86 0
#endif

typedef enum {
  SL_ACT_NONE = 0,
  SL_ACT_RELU = 1,
  SL_ACT_RELU6 = 2,
  SL_ACT_CLAMP = 3,
  SL_ACT_HARDSWISH = 4,
  SL_ACT_HARDSIGMOID = 5,
  SL_ACT_SIGMOID = 6,
  SL_ACT_SILU = 7,
  SL_ACT_GELU = 8,
  SL_ACT_GELU_TANH = 9,
  SL_ACT_TANH = 10,
  SL_ACT_COUNT
} sl_act_type_t;

typedef struct {
  sl_act_type_t type;
  float min, max; /* SL_ACT_CLAMP only */
} sl_activation_t;

/* W[rows x cols] in group-CSR form with fp32 values, as verified at load. */
typedef struct {
  uint32_t rows, cols, r, group_rows; /* group_rows = ceil(rows / r) */
  const uint32_t* row_ptr;            /* group_rows + 1 */
  const uint32_t* col_idx;            /* row_ptr[group_rows] */
  const float* values;                /* r per stored group element */
  const uint32_t* out_perm;           /* NULL = identity; physical row -> output channel */
} sl_group_sparse_f32_t;

typedef struct {
  uint32_t in_c, in_h, in_w, out_c, out_h, out_w;
  uint32_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
  uint32_t pad_top, pad_left, groups;
} sl_conv2d_shape_t;

/* Plain C references: whole ops on the file's layouts. Tests check every
 * microkernel against them; the runtime does not run them. */
void sl_f32_spmm_ref(const sl_group_sparse_f32_t* w, const float* bias, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act);
void sl_f32_gemm_ref(const float* w, const float* bias, size_t rows, size_t cols, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act);
float sl_activation_scalar(const sl_activation_t* act, float v);
void sl_f32_activation_ref(const sl_activation_t* act, const float* x, float* y, size_t n);

/* What the runtime runs (f32-activation/fast.c): vectorizable, within ~2e-7 of the reference. */
void sl_f32_activation(const sl_activation_t* act, const float* x, float* y, size_t n);
/* y[i] = exp(x[i] - shift); returns their sum (softmax). */
float sl_f32_exp_sum(const float* x, float shift, float* y, size_t n);
/* The largest of x[0..n), n >= 1. */
float sl_f32_max(const float* x, size_t n);
/* Layer norm of one row: its mean and 1 / sqrt(variance + epsilon), then y = (x - mean) * rstd
 * times gamma plus beta (either may be NULL; beta only with gamma). */
void sl_f32_mean_rstd(const float* x, size_t n, float epsilon, float* mean, float* rstd);
void sl_f32_normalize_affine(const float* x, size_t n, float mean, float rstd, const float* gamma,
                             const float* beta, float* y);

/* --- microkernels ---------------------------------------------------------
 * Every microkernel clamps its output to [min, max] after adding the bias;
 * other activations run on the finished tile. */
typedef struct {
  float min, max;
} sl_minmax_t;

/* Group-sparse weights packed for a microkernel with blocks of r rows:
 * `blocks` r-row blocks, then `tail_rows` single rows (rows % r). Streams are
 * read strictly in order:
 *   values:   per block, r biases, then r weights per nonzero column;
 *   x_offset: per nonzero column, column * pixel stride in elements, so the
 *             inner loop adds and never multiplies. */
typedef struct {
  uint32_t r, blocks, tail_rows;
  uint32_t* nz_start; /* blocks + tail_rows + 1 prefix sums of nonzero columns */
  uint32_t* x_offset;
  float* values;
  uint32_t* out_row;  /* blocks * r + tail_rows output channels */
} sl_spmm_packed_t;

/* Offset into `values` of block b; tail rows are blocks of 1. */
static inline size_t sl_spmm_values_start(const sl_spmm_packed_t* p, uint32_t b) {
  if (b <= p->blocks) return (size_t)b * p->r + (size_t)p->nz_start[b] * p->r;
  uint32_t t = b - p->blocks;
  return (size_t)p->blocks * p->r + (size_t)p->nz_start[p->blocks] * p->r + t +
         (p->nz_start[b] - p->nz_start[p->blocks]);
}

/* For `blocks` consecutive blocks over `pixels` pixels of x:
 * y[out_row[i] * y_stride + p] = clamp(bias_i + sum_e w_ie * x[x_offset[e] + p]). */
typedef void (*sl_f32_spmm_ukernel_fn)(size_t pixels, size_t blocks, const float* x, const float* values,
                                       const uint32_t* x_offset, const uint32_t* nz_start,
                                       const uint32_t* out_row, float* y, size_t y_stride,
                                       const sl_minmax_t* mm);

/* Dense weights in panels of mr rows: per panel mr biases, then k columns of
 * mr weights. Rows past `rows` are zero in the panel and never stored. */
typedef void (*sl_f32_gemm_ukernel_fn)(size_t pixels, size_t rows, size_t k, const float* x, size_t x_stride,
                                       const float* panels, float* y, size_t y_stride, const sl_minmax_t* mm);

/* Depthwise convolution of one channel as a multi-tap 1-D correlation over a
 * flat, zero-padded plane whose phases turn strides into shifts (ops/conv2d.c
 * builds it), so every kernel size and stride runs full vectors:
 * y[i] = clamp(bias + sum_t w[t] * x[i + tap_offset[t]]) for i < count. */
typedef void (*sl_f32_dwconv_ukernel_fn)(size_t count, size_t taps, const uint32_t* tap_offset, const float* x,
                                         const float* w, float bias, float* y, const sl_minmax_t* mm);

typedef struct {
  const char* name;
  uint32_t isa; /* needed instruction sets */
  uint32_t r;   /* rows per block */
  uint32_t mr;  /* pixels per tile */
  /* Multiply-adds per second per stored weight, relative to the same ISA's
   * gemm kernel: the cost model's exchange rate (measured by benchmarks/). */
  float efficiency;
  sl_f32_spmm_ukernel_fn fn;
} sl_spmm_ukernel_t;

typedef struct {
  const char* name;
  uint32_t isa;
  uint32_t mr; /* rows per panel */
  uint32_t nr; /* pixels per tile */
  sl_f32_gemm_ukernel_fn fn;
} sl_gemm_ukernel_t;

typedef struct {
  const char* name;
  uint32_t isa;
  sl_f32_dwconv_ukernel_fn fn;
} sl_dwconv_ukernel_t;

/* The lists (kernels/list.c): grouped by ISA, best ISA first, each family
 * ending in portable C. Tests walk them; selection reads them. */
extern const sl_spmm_ukernel_t sl_spmm_ukernels[];
extern const size_t sl_spmm_ukernel_count;
extern const sl_gemm_ukernel_t sl_gemm_ukernels[];
extern const size_t sl_gemm_ukernel_count;
extern const sl_dwconv_ukernel_t sl_dwconv_ukernels[];
extern const size_t sl_dwconv_ukernel_count;

/* The spmm kernel of the best ISA in `isa` for blocks of exactly r rows, or NULL. */
const sl_spmm_ukernel_t* sl_spmm_select(uint32_t isa, uint32_t r);
const sl_gemm_ukernel_t* sl_gemm_select(uint32_t isa);
const sl_dwconv_ukernel_t* sl_dwconv_select(uint32_t isa);

/* Packing (kernels/pack.c): count, then fill caller-owned arrays. */
void sl_spmm_pack_count(const sl_group_sparse_f32_t* w, uint32_t r, uint32_t* blocks, uint32_t* tail_rows,
                        size_t* nonzeros, size_t* values);
/* p->r, blocks, tail_rows and the arrays must be set from sl_spmm_pack_count. */
void sl_spmm_pack(const sl_group_sparse_f32_t* w, const float* bias, size_t x_stride, sl_spmm_packed_t* p);
size_t sl_gemm_pack_size(size_t rows, size_t k, uint32_t mr);
void sl_gemm_pack(const float* w, const float* bias, size_t rows, size_t k, uint32_t mr, float* panels);
/* The dense [rows][cols] matrix of group-sparse weights. */
void sl_group_sparse_densify(const sl_group_sparse_f32_t* w, float* dense);

#endif
