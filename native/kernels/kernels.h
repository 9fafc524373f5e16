/* The kernel registry: families, their plain C references, and every microkernel, declared
 * once per line in f32-<family>/list.inc. The same lines define the kernels (isa/<isa>.c),
 * fill the table that selection reads at load (list.c), and feed the tests and benchmarks,
 * which walk that table: a kernel that exists is declared, selectable, tested and
 * benchmarked, or the build fails. */
#ifndef SL_KERNELS_H
#define SL_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/sparselite.h" /* the SL_ISA_* bits */
#include "../schema/sparselite_schema.h" /* sl_act_type_t: the schema's Activation */

#if defined(__x86_64__) || defined(__i386__)
#define SL_ARCH_X86 1
#else
#define SL_ARCH_X86 0
#endif
#if defined(__aarch64__)
#define SL_ARCH_ARM64 1
#else
#define SL_ARCH_ARM64 0
#endif
#if defined(__wasm_simd128__)
#define SL_ARCH_WASM_SIMD128 1
#else
#define SL_ARCH_WASM_SIMD128 0
#endif
#if defined(__wasm_relaxed_simd__)
#define SL_ARCH_WASM_RELAXED_SIMD 1
#else
#define SL_ARCH_WASM_RELAXED_SIMD 0
#endif

typedef struct {
  sl_act_type_t type;
  float min, max; /* SL_ACT_CLAMP only */
  float exponent; /* SL_ACT_POW only */
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

typedef struct {
  float min, max;
} sl_minmax_t;

/* bilinear_row: one source row (src_n floats) interpolated at n output columns, in blocks of 16:
 * out[i] = src[l] * (1 - frac[i]) + src[h] * frac[i], where l = lo[i] and h = hi[i] are relative to
 * their block's base[i / 16] when it is >= 0 (then base <= l, h < base + 16, base < src_n: the
 * kernel may load src[base .. min(base + 16, src_n)) once and pick from it), absolute when it is
 * -1 (columns farther apart, as in downsampling). lo, hi and frac are padded to whole blocks. */
#define SL_BILINEAR_BLOCK 16
typedef struct {
  const int32_t *base, *lo, *hi;
  const float* frac;
} sl_bilinear_cols_t;
typedef enum { SL_BINARY_ADD, SL_BINARY_SUB, SL_BINARY_MUL, SL_BINARY_DIV, SL_BINARY_PRELU } sl_binary_op_t;

/* Plain C references, used only by tests: whole ops on the file's layouts (spmm, gemm), or the
 * definition of a row kernel. Depthwise's reference is its defining 1-D correlation, written
 * out in tests/kernel_test.c. */
void sl_f32_spmm_ref(const sl_group_sparse_f32_t* w, const float* bias, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act);
void sl_f32_gemm_ref(const float* w, const float* bias, size_t rows, size_t cols, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act);
float sl_activation_scalar(const sl_activation_t* act, float v);
void sl_f32_vunary_ref(const sl_activation_t* act, const float* x, float* y, size_t n);
void sl_f32_vbinary_ref(sl_binary_op_t op, const float* a, size_t a_step, const float* b, size_t b_step, float* y,
                        size_t n, const sl_minmax_t* mm, const float* slope);
void sl_f32_softmax_ref(const float* x, const float* mask, float scale, float* y, size_t n);
void sl_f32_layernorm_ref(const float* x, size_t n, float epsilon, const float* gamma, const float* beta,
                          float* y);
void sl_f32_maxpool_ref(size_t out_rows, size_t n, size_t kh, size_t kw, size_t stride, const float* x, size_t x_stride,
                        size_t x_step, float* y, size_t y_stride);
void sl_f32_bilinear_row_ref(size_t n, const float* src, size_t src_n, const sl_bilinear_cols_t* cols, float* out);
/* Winograd F(m x m, 3x3) transforms (m = 2 or 4) by their matrices, in double: the kernels' types
 * below say what they compute. */
void sl_f32_winograd_in_ref(uint32_t m, size_t tiles, size_t channels, const float* x, size_t x_row_stride,
                            size_t x_channel_stride, float* v, size_t v_point_stride, size_t v_channel_stride);
void sl_f32_winograd_out_ref(uint32_t m, size_t tiles, size_t channels, const float* mt, size_t m_point_stride,
                             size_t m_channel_stride, const float* bias, float* y, size_t y_row_stride,
                             size_t y_channel_stride, size_t rows, size_t cols, const sl_minmax_t* mm);

/* --- the families' microkernel types ---------------------------------------------------
 * Matrix kernels clamp their output to [min, max] after adding the bias; other activations
 * run on the finished tile (vunary). */

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

/* The output stage of spmm and gemm: the sums clamped to mm; with a residual (laid out as y, at
 * y_stride per row; it may be y itself), the sums start from its values plus the biases; with
 * slopes, a PRELU after the clamp, output row o's slope slopes[o * slope_step] (0: one shared).
 * The fp16 kernels take neither. */
typedef struct {
  sl_minmax_t mm;
  const float* residual;
  const float* slopes;
  size_t slope_step;
} sl_matrix_out_t;

/* spmm: for `blocks` consecutive blocks over `pixels` pixels of x:
 * y[out_row[i] * y_stride + p] = clamp(bias_i + sum_e w_ie * x[x_offset[e] + p]) (out's stage, row
 * out_row[i]'s slope). */
typedef void sl_f32_spmm_ukernel_fn(size_t pixels, size_t blocks, const float* x, const float* values,
                                    const uint32_t* x_offset, const uint32_t* nz_start, const uint32_t* out_row,
                                    float* y, size_t y_stride, const sl_matrix_out_t* out);

/* gemm: dense weights in panels of `rows` rows (the kernel's): per panel its biases, then k
 * columns of its weights. Rows past `rows` are zero in the panel and never stored. Column c of
 * x starts at x + c * x_stride, or at x + x_offset[c] when x_offset is not NULL (an implicit
 * convolution: each column one tap over padded input planes).
 * y[o * y_stride + p] = clamp(bias_o + sum_c w_oc * x_c[p]) for o < rows, p < pixels (out's stage). */
typedef void sl_f32_gemm_ukernel_fn(size_t pixels, size_t rows, size_t k, const float* x, size_t x_stride,
                                    const uint32_t* x_offset, const float* panels, float* y, size_t y_stride,
                                    const sl_matrix_out_t* out);

/* gemm_nc: dense weights packed as for gemm in panels of the kernel's `rows` rows, with the
 * vectors along the output channels, so no lane idles however few the pixels:
 * y[p * y_pixel_stride + o * y_channel_stride] =
 *     clamp(bias_o + sum_c w_oc * x[p * x_pixel_stride + c * x_k_stride]) for p < pixels, o < rows.
 * Token-major rows (FC) and channel-major planes alike, in and out; contiguous channels
 * (y_channel_stride 1) store fastest. */
typedef void sl_f32_gemm_nc_ukernel_fn(size_t pixels, size_t rows, size_t k, const float* x, size_t x_pixel_stride,
                                       size_t x_k_stride, const float* panels, float* y, size_t y_pixel_stride,
                                       size_t y_channel_stride, const sl_minmax_t* mm);

/* dwconv's taps, in rows of up to five consecutive columns of one plane row (ops/depthwise.c
 * lays out the padded input in planes whose rows are as wide as the output's, so every tap is
 * one fixed offset from its output). */
typedef struct {
  uint32_t offset;  /* of the row's middle column (step 0) from its output's index */
  uint32_t columns; /* bit k (k < 5): a tap at step k - 2 */
} sl_dwconv_row_t;

typedef struct {
  uint32_t rows;
  const sl_dwconv_row_t* row;
} sl_dwconv_taps_t;

/* dwconv: depthwise convolution of `channels` channels (input c at x + c * x_stride, output at
 * y + c * y_stride, weights at w + c * (1 + 5 * rows): the bias, then five per row, slot k for
 * its tap at step k - 2), each a multi-tap 1-D correlation over `count` outputs in rows of
 * `width` (the first starting a row). A tap at step e counts only where the output's column
 * plus e stays in its row, where a padded plane would hold the left or right padding:
 * y[i] = clamp(bias + sum over taps (offset, e) with 0 <= i % width + e < width of
 *              w * x[i + offset + e]) for i < count.
 * It reads x[i + offset - 2 .. i + offset + 2] for every row and i < count, nothing else.
 * Kernels that reuse rows tile a call's rows in threes from its first, the rest summed in another
 * order: calls split at multiples of SL_DWCONV_ROW_TILE rows from the first give the same bits. */
#define SL_DWCONV_ROW_TILE 3
typedef void sl_f32_dwconv_ukernel_fn(size_t channels, size_t count, size_t width, const float* x, size_t x_stride,
                                      const float* w, const sl_dwconv_taps_t* taps, float* y, size_t y_stride,
                                      const sl_minmax_t* mm);

/* dwconv_s2: depthwise convolution of `channels` consecutive channels (planes of s->in_h x s->in_w
 * in, s->out_h x s->out_w out) with a horizontal stride of 2, read straight from the input. Any
 * vertical stride and top padding; a left padding of at most 2 and kernel_w - 1 - pad_left at
 * most 3, so every tap reads input column 2 * ox + 2a + b with a in -1..1; the right and bottom
 * padding are whatever the output size reaches. Weights per channel: the bias, then kernel_h x
 * kernel_w. y = clamp(bias + sum of w * x over taps inside the input). */
typedef void sl_f32_dwconv_s2_ukernel_fn(size_t channels, const sl_conv2d_shape_t* s, const float* x, const float* w,
                                         float* y, const sl_minmax_t* mm);

/* dwconv_nc: depthwise convolution of `channels` channels (planes of s->in_h x s->in_w at x + c * x_stride
 * in, s->out_h x s->out_w at y + c * y_stride out), any kernel size, stride and padding, with the
 * channels along the vectors: groups of `rows` channels (the last one may be short) go through
 * scratch pixel-major, in bands of output rows. Weights per group: kernel_h x kernel_w vectors of
 * the group's weights for one tap each, then its biases (zero past the last channel). scratch:
 * sl_dwconv_nc_layout's floats, any contents. y = clamp(bias + sum of w * x over taps inside the input). */
typedef void sl_f32_dwconv_nc_ukernel_fn(size_t channels, const sl_conv2d_shape_t* s, const float* x, size_t x_stride,
                                         const float* w, float* y, size_t y_stride, float* scratch,
                                         const sl_minmax_t* mm);
/* Its scratch, for groups of `lanes` channels: a window of `window` padded input rows of `columns`
 * pixels (the left padding, the row, zeros up to what the last output reads), sized to stay in L1
 * where rows allow but to hold a band of at least 8 output rows (sliding the window copies the rows
 * two bands share), then the outputs of a band of `band` output rows (what the window's rows feed),
 * then one band's plane rows for a short group's missing channels. */
#define SL_DWCONV_NC_WINDOW_BYTES (24 * 1024)
typedef struct {
  size_t columns, window, band, floats;
} sl_dwconv_nc_layout_t;
/* false if a size overflows size_t. */
static inline bool sl_dwconv_nc_layout(const sl_conv2d_shape_t* s, size_t lanes, sl_dwconv_nc_layout_t* l) {
  size_t reach, row, rows, out, padded_h;
  if (s->out_w == 0 || s->out_h == 0 || s->stride_h == 0 ||
      __builtin_mul_overflow((size_t)(s->out_w - 1), (size_t)s->stride_w, &reach) ||
      __builtin_add_overflow(reach, (size_t)s->kernel_w, &reach) ||
      __builtin_add_overflow((size_t)s->pad_left, (size_t)s->in_w, &row) ||
      __builtin_mul_overflow((size_t)(s->out_h - 1), (size_t)s->stride_h, &padded_h) ||
      __builtin_add_overflow(padded_h, (size_t)s->kernel_h, &padded_h))
    return false;
  l->columns = reach > row ? reach : row;
  if (__builtin_mul_overflow(l->columns, lanes * sizeof(float), &row)) return false;
  const uint64_t eight_rows = (uint64_t)s->kernel_h + 7 * (uint64_t)s->stride_h; /* the input rows 8 output rows read */
  const uint64_t window = SL_DWCONV_NC_WINDOW_BYTES / row > eight_rows ? SL_DWCONV_NC_WINDOW_BYTES / row : eight_rows;
  l->window = window < padded_h ? (size_t)window : padded_h;
  l->band = (l->window - s->kernel_h) / s->stride_h + 1;
  if (l->band > s->out_h) l->band = s->out_h;
  return !__builtin_mul_overflow(l->columns * lanes, l->window, &rows) &&
         !__builtin_mul_overflow(l->band, (size_t)s->out_w, &out) && !__builtin_mul_overflow(out, lanes + 1, &out) &&
         !__builtin_add_overflow(rows, out, &l->floats);
}

/* unzip: for r < rows, the even and odd floats of row x + r * x_stride's first n:
 * even[r * y_stride + i] = x[r * x_stride + 2i] for i < (n + 1) / 2, odd[...] = x[... + 2i + 1] for
 * i < n / 2 (a stride-2 depthwise convolution's column phases). */
typedef void sl_f32_unzip_ukernel_fn(size_t rows, size_t n, const float* x, size_t x_stride, float* even, float* odd,
                                     size_t y_stride);

/* maxpool: out_rows rows of n outputs of max pooling read in place, stride 1 or 2 along rows:
 * y[o * y_stride + i] is the largest of x[o * x_step + r * x_stride + i * stride + j] for r < kh
 * and j < kw, or NaN where one of them is (a NaN in the window wins, as in torch). Reads nothing
 * past the last window. */
typedef void sl_f32_maxpool_ukernel_fn(size_t out_rows, size_t n, size_t kh, size_t kw, size_t stride, const float* x,
                                       size_t x_stride, size_t x_step, float* y, size_t y_stride);

/* bilinear_row: see sl_bilinear_cols_t. */
typedef void sl_f32_bilinear_row_ukernel_fn(size_t n, const float* src, size_t src_n, const sl_bilinear_cols_t* cols,
                                            float* out);

/* vunary: y[i] = act(x[i]) for i < n (x == y allowed). */
typedef void sl_f32_vunary_ukernel_fn(const sl_activation_t* act, const float* x, float* y, size_t n);

/* vbinary: y[i] = clamp(a[i * a_step] op b[i * b_step]) for i < n, steps 0 or 1 (y may be a or b). With
 * `slope` (ADD only, else NULL) a PRELU follows the clamp, v < 0 ? v * *slope : v: a convolution's
 * residual sum and its PRELU in one pass over the row. */
typedef void sl_f32_vbinary_ukernel_fn(sl_binary_op_t op, const float* a, size_t a_step, const float* b,
                                       size_t b_step, float* y, size_t n, const sl_minmax_t* mm, const float* slope);

/* softmax: y = softmax(scale * x + mask) over one row of n >= 1; mask may be NULL (y may be x). */
typedef void sl_f32_softmax_ukernel_fn(const float* x, const float* mask, float scale, float* y, size_t n);

/* layernorm: one row of n >= 1, y = (x - mean) / sqrt(var + epsilon) * gamma + beta; gamma and
 * beta may be NULL. */
typedef void sl_f32_layernorm_ukernel_fn(const float* x, size_t n, float epsilon, const float* gamma,
                                         const float* beta, float* y);

/* Winograd F(m x m, 3x3) of a 3x3 stride-1 convolution (ops/winograd.c), with m the kernel's `rows`
 * and alpha = m + 2 points per side; point xi = i * alpha + j. Vectors run along a row of tiles.
 * winograd_in: V = B^T d B of `tiles` consecutive tiles in `channels` channels, tile t of channel c
 * being d[i][j] = x[c * x_channel_stride + i * x_row_stride + m * t + j] for i, j < alpha (a padded
 * plane: it reads nothing past column m * tiles + 1 of rows 0 .. alpha - 1):
 * v[xi * v_point_stride + c * v_channel_stride + t] = V[i][j]. */
typedef void sl_f32_winograd_in_ukernel_fn(size_t tiles, size_t channels, const float* x, size_t x_row_stride,
                                           size_t x_channel_stride, float* v, size_t v_point_stride,
                                           size_t v_channel_stride);

/* winograd_out: Y = A^T M A of `tiles` tiles in `channels` channels, M[i][j] of tile t in channel c
 * being mt[xi * m_point_stride + c * m_channel_stride + t], with the channel's bias added and
 * clamped: y[c * y_channel_stride + i * y_row_stride + m * t + j] = clamp(bias[c] + Y[i][j]) for
 * i < rows <= m and m * t + j < cols <= m * tiles (the bottom and right edges cut tiles short). */
typedef void sl_f32_winograd_out_ukernel_fn(size_t tiles, size_t channels, const float* mt, size_t m_point_stride,
                                            size_t m_channel_stride, const float* bias, float* y,
                                            size_t y_row_stride, size_t y_channel_stride, size_t rows, size_t cols,
                                            const sl_minmax_t* mm);

/* --- fp16 (ARMv8.2-A FEAT_FP16) --------------------------------------------------------
 * The same contracts as the f32 kernels above, with activations, weights and biases stored and
 * multiplied-added in IEEE half precision (sl_f16: its bits); the clamp bounds stay floats (rounded
 * to half). Packing is the f32 packing with its floats converted (sl_f16_from_f32). */
typedef uint16_t sl_f16;
typedef void sl_f16_spmm_ukernel_fn(size_t pixels, size_t blocks, const sl_f16* x, const sl_f16* values,
                                    const uint32_t* x_offset, const uint32_t* nz_start, const uint32_t* out_row,
                                    sl_f16* y, size_t y_stride, const sl_matrix_out_t* out);
typedef void sl_f16_gemm_ukernel_fn(size_t pixels, size_t rows, size_t k, const sl_f16* x, size_t x_stride,
                                    const uint32_t* x_offset, const sl_f16* panels, sl_f16* y, size_t y_stride,
                                    const sl_matrix_out_t* out);
typedef void sl_f16_gemm_nc_ukernel_fn(size_t pixels, size_t rows, size_t k, const sl_f16* x, size_t x_pixel_stride,
                                       size_t x_k_stride, const sl_f16* panels, sl_f16* y, size_t y_pixel_stride,
                                       size_t y_channel_stride, const sl_minmax_t* mm);
/* Lane columns are counted in half precision, exact to 2048: `width` at most SL_F16_DWCONV_MAX_WIDTH.
 * A tap row's 5 weights load as one vector of 8 halves: w must be readable SL_F16_DWCONV_W_PAST
 * halves past the last channel's (they are never used). */
#define SL_F16_DWCONV_MAX_WIDTH 1024
#define SL_F16_DWCONV_W_PAST 3
typedef void sl_f16_dwconv_ukernel_fn(size_t channels, size_t count, size_t width, const sl_f16* x, size_t x_stride,
                                      const sl_f16* w, const sl_dwconv_taps_t* taps, sl_f16* y, size_t y_stride,
                                      const sl_minmax_t* mm);

/* Activations into and out of fp16 at an fp16 layer's boundaries: y[i] = x[i] rounded to nearest
 * even (overflow to infinity, NaN stays NaN), or widened exactly, for i < n. */
typedef void sl_f16_from_f32_ukernel_fn(const float* x, sl_f16* y, size_t n);
typedef void sl_f16_to_f32_ukernel_fn(const sl_f16* x, float* y, size_t n);

/* Round to nearest even (overflow to infinity, NaN kept), and back exactly; any ISA. The
 * references of the two kernels above, and the packing's conversion. */
sl_f16 sl_f16_from_f32(float v);
float sl_f16_to_f32(sl_f16 h);
void sl_f16_from_f32_n(const float* x, sl_f16* y, size_t n);
void sl_f16_to_f32_n(const sl_f16* x, float* y, size_t n);

/* --- the registry --------------------------------------------------------------------- */

/* SL_FAMILY(name, rows_select, fn_type): rows_select = 1 when kernels are chosen by `rows` (spmm's
 * r, Winograd's m), so every ISA must offer every rows value its peers do. f16_ families exist only
 * on fp16 ISAs, which have nothing else (kernel_test checks both). */
#define SL_FAMILIES(SL_FAMILY)                                  \
  SL_FAMILY(spmm, 1, sl_f32_spmm_ukernel_fn)                    \
  SL_FAMILY(gemm, 0, sl_f32_gemm_ukernel_fn)                    \
  SL_FAMILY(gemm_nc, 0, sl_f32_gemm_nc_ukernel_fn)              \
  SL_FAMILY(dwconv, 0, sl_f32_dwconv_ukernel_fn)                \
  SL_FAMILY(dwconv_s2, 0, sl_f32_dwconv_s2_ukernel_fn)          \
  SL_FAMILY(dwconv_nc, 0, sl_f32_dwconv_nc_ukernel_fn)          \
  SL_FAMILY(unzip, 0, sl_f32_unzip_ukernel_fn)                  \
  SL_FAMILY(maxpool, 0, sl_f32_maxpool_ukernel_fn)              \
  SL_FAMILY(bilinear_row, 0, sl_f32_bilinear_row_ukernel_fn)    \
  SL_FAMILY(vunary, 0, sl_f32_vunary_ukernel_fn)                \
  SL_FAMILY(vbinary, 0, sl_f32_vbinary_ukernel_fn)              \
  SL_FAMILY(softmax, 0, sl_f32_softmax_ukernel_fn)              \
  SL_FAMILY(layernorm, 0, sl_f32_layernorm_ukernel_fn)          \
  SL_FAMILY(winograd_in, 1, sl_f32_winograd_in_ukernel_fn)      \
  SL_FAMILY(winograd_out, 1, sl_f32_winograd_out_ukernel_fn)    \
  SL_FAMILY(f16_spmm, 1, sl_f16_spmm_ukernel_fn)                \
  SL_FAMILY(f16_gemm, 0, sl_f16_gemm_ukernel_fn)                \
  SL_FAMILY(f16_gemm_nc, 0, sl_f16_gemm_nc_ukernel_fn)          \
  SL_FAMILY(f16_dwconv, 0, sl_f16_dwconv_ukernel_fn)          \
  SL_FAMILY(f16_from_f32, 0, sl_f16_from_f32_ukernel_fn)      \
  SL_FAMILY(f16_to_f32, 0, sl_f16_to_f32_ukernel_fn)

#define SL_FAMILY_ENUM(family, rows_select, fn_type) SL_FAMILY_##family,
typedef enum { SL_FAMILIES(SL_FAMILY_ENUM) SL_FAMILY_COUNT } sl_family_t;
#undef SL_FAMILY_ENUM

typedef struct {
  const char* name;
  sl_family_t family;
  uint32_t isa;     /* the SL_ISA_* bits it needs */
  uint32_t pixels;  /* outputs per register tile along pixels (matrix kernels); 0 for row kernels */
  uint32_t rows;    /* output channels per block: spmm's r, gemm's panel height; 1 otherwise */
  /* spmm: multiply-adds per second per stored weight relative to the same ISA's gemm kernel,
   * the cost model's exchange rate (measured by benchmarks/bench_spmm.py). dwconv_s2: speed
   * relative to the same ISA's dwconv path on stride-2 layers; the op takes it above 1. dwconv_nc:
   * the widest output rows the op gives it at a stride of 2 or more (half as wide at stride 1). */
  float efficiency;
  union {
#define SL_FAMILY_FN(family, rows_select, fn_type) fn_type* family;
    SL_FAMILIES(SL_FAMILY_FN)
#undef SL_FAMILY_FN
  } fn;
} sl_ukernel_t;

/* The lines of the lists. A line's section is compiled where its ISA exists: everywhere for
 * the declarations below and the table, only in isa/<isa>.c for the definitions. */
#define SL_LIST(isa) (SL_LIST_ALL || SL_LIST_##isa)
#define SL_LIST_ALL 1
#define SL_FAMILY_TYPEDEF(family, rows_select, fn_type) typedef fn_type sl_##family##_fn_t;
SL_FAMILIES(SL_FAMILY_TYPEDEF)
#undef SL_FAMILY_TYPEDEF
#define SL_UKERNEL(family, name, isa, pixels, rows, efficiency) sl_##family##_fn_t name;
#include "lists.inc"
#undef SL_UKERNEL
#undef SL_LIST_ALL

/* Every kernel of this build, grouped by family, best ISA first within a family. */
extern const sl_ukernel_t sl_ukernels[];
extern const size_t sl_ukernel_count;
extern const char* const sl_family_names[SL_FAMILY_COUNT];
extern const bool sl_family_rows_select[SL_FAMILY_COUNT];

/* The family's kernel of the best ISA in `isa` (the first in the table it allows) with exactly
 * `rows` rows, or with any when rows == 0; NULL when there is none. */
const sl_ukernel_t* sl_ukernel_select(uint32_t isa, sl_family_t family, uint32_t rows);

/* One core's L2 in bytes as the CPU reports it (x86), else 0: unknown. */
size_t sl_cpu_l2_bytes(void);
/* CPU parts whose cores run SL_ISA_NEON_INORDER's kernels (MIDR_EL1's implementer and part). */
bool sl_cpu_part_in_order(uint32_t implementer, uint32_t part);
/* /proc/cpuinfo read line by line: in_order 1 while every "CPU part" seen is an in-order core, 0
 * once one is not, -1 before any (x86's text, qemu-user's). Start from {UINT32_MAX, -1}. */
typedef struct {
  uint32_t implementer; /* the current core's "CPU implementer" */
  int in_order;
} sl_cpuinfo_t;
void sl_cpuinfo_line(sl_cpuinfo_t* s, const char* line);
/* The same over a whole text (tests). */
int sl_cpuinfo_in_order(const char* text);

/* Packing (kernels/pack.c): count, then fill caller-owned arrays. */
void sl_spmm_pack_count(const sl_group_sparse_f32_t* w, uint32_t r, uint32_t* blocks, uint32_t* tail_rows,
                        size_t* nonzeros, size_t* values);
/* p->r, blocks, tail_rows and the arrays must be set from sl_spmm_pack_count. */
void sl_spmm_pack(const sl_group_sparse_f32_t* w, const float* bias, size_t x_stride, sl_spmm_packed_t* p);
size_t sl_gemm_pack_size(size_t rows, size_t k, uint32_t panel_rows);
void sl_gemm_pack(const float* w, const float* bias, size_t rows, size_t k, uint32_t panel_rows, float* panels);
/* Bilinear columns (n of them: source columns lo and hi, weight frac of hi) in bilinear_row's
 * blocks (sl_bilinear_cols_t): relative to a block's least column where its neighbours lie within
 * SL_BILINEAR_BLOCK floats of it, else absolute. base gets ceil(n / SL_BILINEAR_BLOCK) entries,
 * the others are padded to whole blocks. */
void sl_bilinear_pack(size_t n, const int32_t* lo, const int32_t* hi, const float* frac, int32_t* blocks_base,
                      int32_t* blocks_lo, int32_t* blocks_hi, float* blocks_frac);
/* The dense [rows][cols] matrix of group-sparse weights. */
void sl_group_sparse_densify(const sl_group_sparse_f32_t* w, float* dense);

#endif
