/* Runtime internals shared by the loader, planner, executor and ops. */
#ifndef SL_INTERNAL_H
#define SL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/sparselite.h"
#include "../kernels/kernels.h"
#include "fb_reader.h"
#include "threadpool.h"

#define SL_FORMAT_VERSION 1u
#define SL_ALIGN 64u
#define SL_MAX_DYNAMIC_DIMS 16 /* named dynamic dimensions a file may declare */

typedef struct {
  const char* name;
  sl_dtype_t dtype;
  int32_t rank;
  int32_t shape[SL_MAX_RANK];     /* current; equals max_shape unless resized */
  int32_t max_shape[SL_MAX_RANK]; /* as in the file, what the arena is planned for */
  uint8_t dynamic[SL_MAX_RANK];   /* per axis: 0 fixed, k > 0 follows the model's dynamic dim k-1 */
  bool has_dynamic;
  size_t num_elems, num_bytes;
  size_t stored_bytes;           /* bytes in the file (constants; sparse: all its arrays) */
  void* data;                    /* constant data, or the arena slot once planned */
  bool is_const;
  bool is_input;                 /* a graph input */
  sl_group_sparse_f32_t* sparse; /* non-NULL for a group-sparse weight (data stays NULL) */
  int32_t producer;              /* op index; -1 for constants and graph inputs */
  int32_t last_use;              /* op index of the last reader */
  size_t arena_offset;
} sl_tensor_t;

typedef struct {
  uint16_t type; /* sl_op_type_t */
  uint16_t version;
  const char* name;
  int32_t num_inputs, num_outputs;
  int32_t* inputs; /* -1 = optional input absent */
  int32_t* outputs;
  sl_fb_table_t options;
  void* params; /* parsed options and prepared state, owned by the model */
  size_t scratch_shared, scratch_per_thread; /* bytes, reserved at prepare */
  const char* kernel;     /* the microkernel prepare chose, for profiles */
  double flops;           /* per run, counting only stored weights */
  double dense_flops;     /* per run, as if every weight were stored */
  uint64_t time_ns, runs; /* accumulated while profiling */
  uint64_t weight_bytes, activation_bytes;
  uint32_t group_size;
} sl_node_t;

typedef struct sl_alloc {
  struct sl_alloc* next;
} sl_alloc_t;

struct sl_model {
  char error[512];
  sl_alloc_t* allocs;
  const uint8_t* file;
  size_t file_size;
  void* owned_file;   /* a private copy of the buffer, or NULL */
  void* mapped;       /* mmap base, or NULL */
  size_t mapped_size;
  bool loaded;
  bool tune;
  bool profile;
  int num_threads;
  uint32_t isa_mask;
  uint32_t isa; /* what kernels may use: the CPU's bits & isa_mask */
  sl_threadpool_t* pool;
  void* scratch;
  size_t scratch_size;
  int32_t num_tensors, num_nodes, num_inputs, num_outputs;
  sl_tensor_t* tensors;
  sl_node_t* nodes;
  int32_t* inputs;
  int32_t* outputs;
  int32_t num_dims;      /* named dynamic dimensions (a sequence length) */
  const char** dim_names;
  int32_t* dim_max;
  int32_t* dim_value;    /* current sizes */
  sl_fb_t fb;            /* the file, for ops' resize */
  void* arena;
  size_t arena_size;
};

/* Records a formatted message and returns status. */
sl_status_t sl_fail(sl_model_t* m, sl_status_t status, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Zeroed, 64-byte aligned memory freed with the model; NULL when out of memory. */
void* sl_model_alloc(sl_model_t* m, size_t size);
/* Frees a block of sl_model_alloc early (prepare's discarded candidates). */
void sl_model_release(sl_model_t* m, void* block);

sl_status_t sl_load_graph(sl_model_t* m);
/* The first input or output of n with a dynamic dimension, or NULL. */
const sl_tensor_t* sl_node_dynamic_tensor(const sl_model_t* m, const sl_node_t* n);
/* Applies m->dim_value to every tensor's shape and resizes the ops. */
sl_status_t sl_apply_dims(sl_model_t* m);
sl_status_t sl_plan_arena(sl_model_t* m);

/* --- ops ------------------------------------------------------------------ */
typedef enum {
  SL_OP_CONV2D = 0,
  SL_OP_FULLY_CONNECTED = 1,
  SL_OP_ADD = 2,
  SL_OP_MUL = 3,
  SL_OP_ACTIVATION = 4,
  SL_OP_MAX_POOL2D = 5,
  SL_OP_AVG_POOL2D = 6,
  SL_OP_GLOBAL_AVG_POOL = 7,
  SL_OP_CONCAT = 8,
  SL_OP_PAD = 9,
  SL_OP_RESHAPE = 10,
  SL_OP_SOFTMAX = 11,
  SL_OP_LAYER_NORM = 12,
  SL_OP_MATMUL = 13,
  SL_OP_TRANSPOSE = 14,
  SL_OP_GATHER = 15,
  SL_OP_SUB = 16,
  SL_OP_DIV = 17,
  SL_OP_CAST = 18,
  SL_OP_MEAN_POOL = 19,
  SL_OP_L2_NORMALIZE = 20,
  SL_OP_RESIZE_BILINEAR = 21,
  SL_OP_DEPTH_TO_SPACE = 22,
  SL_OP_PRELU = 23,
  SL_OP_COUNT
} sl_op_type_t;

/* prepare: parse options, check shapes/dtypes, pick kernels; run: cannot fail.
 * resize: after dynamic dimensions change, recompute what depends on shapes (never more
 * scratch than at prepare, which saw the largest shapes); NULL when the op cannot take
 * dynamic shapes. Ops whose prepare only does that pass prepare itself. */
typedef sl_status_t (*sl_op_prepare_fn)(sl_model_t* m, sl_node_t* n, sl_fb_t* fb);
typedef struct {
  const char* name;
  int32_t min_inputs, max_inputs; /* max -1 = any number */
  sl_op_prepare_fn prepare;
  void (*run)(const sl_model_t* m, const sl_node_t* n);
  sl_op_prepare_fn resize;
} sl_op_def_t;

/* The op's params block of `size` zeroed bytes, allocated on the first call only (so
 * prepare can run again as resize). NULL when out of memory (the model's error is set). */
void* sl_node_params(sl_model_t* m, sl_node_t* n, size_t size);

extern const sl_op_def_t* const sl_op_table[];

/* Runs fn(ctx, task, thread) for task in [0, count) on the model's threads. */
static inline void sl_parallel_for(const sl_model_t* m, size_t count, sl_task_fn fn, void* ctx) {
  sl_threadpool_run(m->pool, count, fn, ctx);
}

/* Scratch memory for run: prepare reserves `shared` bytes for the whole op and
 * `per_thread` bytes for each thread; one buffer serves every op in turn. */
void sl_reserve_scratch(sl_model_t* m, sl_node_t* n, size_t shared, size_t per_thread);
static inline void* sl_scratch_shared(const sl_model_t* m) { return m->scratch; }
static inline void* sl_scratch_thread(const sl_model_t* m, const sl_node_t* n, size_t thread) {
  size_t shared = (n->scratch_shared + SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN;
  size_t each = (n->scratch_per_thread + SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN;
  return (uint8_t*)m->scratch + shared + thread * each;
}

/* A 1x1 convolution or fully connected layer on channel-major data,
 * y[rows][pixels] = W[rows][cols] x[cols][pixels] + bias, then the activation.
 * Prepare picks sparse (spmm, with the block size r) or dense (gemm) per layer
 * from the kernels' measured efficiencies, or by timing both when tuning. */
typedef struct {
  size_t rows, cols, pixels;
  size_t stride; /* pixel stride of x and y: the pixels prepare saw (a resize may run fewer) */
  sl_minmax_t mm;
  sl_activation_t post; /* applied after the kernel; NONE when the clamp is the activation */
  const sl_spmm_ukernel_t* spmm;
  const sl_spmm_ukernel_t* spmm_tail; /* r = 1, for the packed tail rows */
  sl_spmm_packed_t packed;
  const sl_gemm_ukernel_t* gemm;
  float* panels;
} sl_linear_t;

/* w: dense [rows][cols] or group-sparse; bias may be NULL; x and y rows are `stride` floats
 * apart (>= pixels). Sets n->kernel and flops. */
sl_status_t sl_linear_prepare(sl_model_t* m, sl_node_t* n, sl_linear_t* L, const sl_tensor_t* w,
                              const float* bias, size_t pixels, size_t stride, const sl_activation_t* act);
void sl_linear_run(const sl_model_t* m, const sl_linear_t* L, const float* x, float* y);
/* Runs `pixels` (<= the prepared count) from now on, with the same strides. */
void sl_linear_resize(sl_node_t* n, sl_linear_t* L, size_t pixels);
/* The clamp range that implements act, and whether act needs a pass of its own. */
bool sl_activation_minmax(const sl_activation_t* act, sl_minmax_t* mm);

/* A depthwise convolution (ops/depthwise.c): groups == channels, no dilation. */
typedef struct {
  sl_conv2d_shape_t s;
  const sl_dwconv_ukernel_t* k;
  const float* weights; /* [C][KH*KW] */
  const float* bias;
  sl_minmax_t mm;
  sl_activation_t post;
  uint32_t pad_h, pad_w, row_len, taps;
  size_t phase_stride, count;
  uint32_t* tap_offset;
} sl_depthwise_t;

sl_status_t sl_depthwise_prepare(sl_model_t* m, sl_node_t* n, sl_depthwise_t* d, const sl_conv2d_shape_t* s,
                                 const float* weights, const float* bias, const sl_activation_t* act);
void sl_depthwise_run(const sl_model_t* m, const sl_node_t* n, const sl_depthwise_t* d, const float* x, float* y,
                      size_t batch);

/* Helpers for ops. */
static inline sl_tensor_t* sl_in(const sl_model_t* m, const sl_node_t* n, int i) {
  return n->inputs[i] < 0 ? NULL : &m->tensors[n->inputs[i]];
}
static inline sl_tensor_t* sl_out(const sl_model_t* m, const sl_node_t* n, int i) {
  return &m->tensors[n->outputs[i]];
}
sl_status_t sl_node_fail(sl_model_t* m, const sl_node_t* n, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Fails unless t is dense float32 with the given rank (-1: any rank). */
sl_status_t sl_expect_f32(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                          int32_t rank);
/* Fails unless t is a constant float32 weight (dense or group-sparse) of the given rank. */
sl_status_t sl_expect_weights(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, int32_t rank);
/* Fails unless t's shape equals shape[0..rank). */
sl_status_t sl_expect_shape(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                            int32_t rank, const int32_t* shape);
/* Element strides of t read as a tensor of `rank` dimensions under numpy broadcasting: 0 along
 * dimensions where t has size 1 (or none). */
void sl_broadcast_strides(const sl_tensor_t* t, int32_t rank, size_t* stride);
/* Parses a fused activation; field ids of (type, min, max) in the options table. */
sl_status_t sl_parse_activation(sl_model_t* m, const sl_node_t* n, sl_fb_t* fb, int type_field,
                                sl_activation_t* act);
/* Dense float data of a constant (NULL if t is not a dense constant). */
static inline const float* sl_const_f32(const sl_tensor_t* t) {
  return (t != NULL && t->is_const && t->sparse == NULL) ? (const float*)t->data : NULL;
}

#endif
