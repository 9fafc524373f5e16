/* Kernel families, their reference implementations, and the list that declares
 * every variant. The list feeds both kernel selection (a lookup by ISA and
 * shape, never if-chains in ops) and the tests that check each variant against
 * the reference. */
#ifndef SL_KERNELS_H
#define SL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Instruction sets a kernel needs; a CPU offers a mask of them. */
enum {
  SL_ISA_SCALAR = 0,
  SL_ISA_SSE2 = 1u << 0,
  SL_ISA_AVX2_FMA = 1u << 1,
  SL_ISA_NEON = 1u << 2,
  SL_ISA_WASM_SIMD128 = 1u << 3,
};

typedef enum {
  SL_ACT_NONE = 0,
  SL_ACT_RELU = 1,
  SL_ACT_RELU6 = 2,
  SL_ACT_CLAMP = 3,
  SL_ACT_HARDSWISH = 4,
  SL_ACT_HARDSIGMOID = 5,
  SL_ACT_SIGMOID = 6,
  SL_ACT_SILU = 7,
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

/* y[OC][P] = act(W * x[K][P] + bias), channel-major, P pixels (or batch rows) contiguous. */
typedef void (*sl_f32_spmm_fn)(const sl_group_sparse_f32_t* w, const float* bias, size_t pixels,
                               const float* x, float* y, const sl_activation_t* act);
typedef void (*sl_f32_gemm_fn)(const float* w, const float* bias, size_t rows, size_t cols,
                               size_t pixels, const float* x, float* y, const sl_activation_t* act);
/* One image, NCHW; weights [OC][IC/groups][KH][KW]. */
typedef void (*sl_f32_conv2d_fn)(const sl_conv2d_shape_t* s, const float* w, const float* bias,
                                 const float* x, float* y, const sl_activation_t* act);

typedef struct {
  const char* name;
  uint32_t isa;       /* needed instruction sets */
  uint32_t r;         /* group size served; 0 = any */
  sl_f32_spmm_fn fn;
} sl_spmm_kernel_t;

typedef struct {
  const char* name;
  uint32_t isa;
  sl_f32_gemm_fn fn;
} sl_gemm_kernel_t;

typedef struct {
  const char* name;
  uint32_t isa;
  sl_f32_conv2d_fn fn;
} sl_conv2d_kernel_t;

extern const sl_spmm_kernel_t sl_spmm_kernels[];
extern const size_t sl_spmm_kernel_count;
extern const sl_gemm_kernel_t sl_gemm_kernels[];
extern const size_t sl_gemm_kernel_count;
extern const sl_conv2d_kernel_t sl_conv2d_kernels[];
extern const size_t sl_conv2d_kernel_count;

/* Instruction sets of the CPU this runs on. */
uint32_t sl_cpu_isa(void);
/* First listed variant whose ISA is in `isa` and that serves r; the list ends in a scalar one. */
const sl_spmm_kernel_t* sl_spmm_select(uint32_t isa, uint32_t r);
const sl_gemm_kernel_t* sl_gemm_select(uint32_t isa);
const sl_conv2d_kernel_t* sl_conv2d_select(uint32_t isa);

float sl_activation_scalar(const sl_activation_t* act, float v);
void sl_f32_activation_ref(const sl_activation_t* act, const float* x, float* y, size_t n);

void sl_f32_spmm_ref(const sl_group_sparse_f32_t* w, const float* bias, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act);
void sl_f32_gemm_ref(const float* w, const float* bias, size_t rows, size_t cols, size_t pixels,
                     const float* x, float* y, const sl_activation_t* act);
void sl_f32_conv2d_ref(const sl_conv2d_shape_t* s, const float* w, const float* bias,
                       const float* x, float* y, const sl_activation_t* act);

#endif
