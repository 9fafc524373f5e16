/* The op interface: all an op file (ops/<op>.c) sees of the runtime. An op is a
 * prepare / run / resize triple over the graph's tensors; the model stays opaque, and ops reach
 * kernels, threads, scratch and errors through the functions below (runtime/context.c). */
#ifndef SL_OP_H
#define SL_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/sparselite.h"
#include "../kernels/kernels.h"
#include "../runtime/fb_reader.h"
#include "../runtime/threadpool.h"
#include "../schema/sparselite_schema.h"

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
  int32_t in_place_of;           /* a tensor whose arena bytes this one takes over (runtime/fuse.c), or -1 */
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
  int32_t fused_into; /* -1, or the index of the op whose run computes this one (a fused block) */
} sl_node_t;

/* prepare: parse options, check shapes/dtypes, pick kernels; run: cannot fail.
 * resize: after dynamic dimensions change, recompute what depends on shapes (never more
 * scratch than at prepare, which saw the largest shapes); NULL when the op cannot take
 * dynamic shapes. Ops whose prepare only does that pass prepare itself. */
typedef sl_status_t (*sl_op_prepare_fn)(sl_model_t* m, sl_node_t* n, sl_fb_t* fb);
typedef struct {
  const char* name;
  sl_options_type_t options; /* the options table prepare reads; the loader refuses any other */
  int32_t min_inputs, max_inputs; /* max -1 = any number */
  sl_op_prepare_fn prepare;
  void (*run)(const sl_model_t* m, const sl_node_t* n);
  sl_op_prepare_fn resize;
} sl_op_def_t;
/* The first members of an op's sl_op_def_t, from the schema (sl_op_<name> in ops/ is the entry
 * for SL_OP_<NAME>): {SL_OP_SCHEMA(CONV2D), min_inputs, max_inputs, prepare, run, resize}. */
#define SL_OP_SCHEMA(NAME) .name = #NAME, .options = SL_OPTIONS_OF_##NAME

/* The op's params block of `size` zeroed bytes, allocated on the first call only (so
 * prepare can run again as resize). NULL when out of memory (the model's error is set). */
void* sl_node_params(sl_model_t* m, sl_node_t* n, size_t size);

/* Indexed by SL_OP_*: built from the schema's list (ops/op_table.c). */
extern const sl_op_def_t* const sl_op_table[];

/* Checked size arithmetic for everything derived from a file's shapes and options: each returns
 * false (leaving *out unspecified) when the result does not fit, so prepare can fail cleanly
 * instead of wrapping. */
static inline bool sl_size_mul(size_t a, size_t b, size_t* out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool sl_size_add(size_t a, size_t b, size_t* out) { return !__builtin_add_overflow(a, b, out); }

/* --- runtime services (runtime/context.c) --------------------------------------------- */

/* Input i of n (NULL when an optional input is absent), output i of n. */
sl_tensor_t* sl_in(const sl_model_t* m, const sl_node_t* n, int i);
sl_tensor_t* sl_out(const sl_model_t* m, const sl_node_t* n, int i);
/* The family's kernel of the best ISA this model may use (the CPU's and sl_model_set_isa_mask's),
 * with `rows` rows (0: any); every family has a portable kernel, so NULL only for a rows value
 * no kernel has. Prepare selects, run calls: no op ever picks an instruction set itself. */
const sl_ukernel_t* sl_op_kernel(const sl_model_t* m, sl_family_t family, uint32_t rows);
/* Whether fp16 layers run in fp16: sl_model_set_precision asked for it and the CPU has it. */
bool sl_op_fp16(const sl_model_t* m);
/* Whether prepare should time candidate kernels instead of trusting the cost model. */
bool sl_op_tuning(const sl_model_t* m);
/* sl_model_set_winograd's choice: -1 by the measured rule, 0 never, 2 or 4 that tile everywhere. */
int sl_op_winograd(const sl_model_t* m);
/* Threads that run an op's tasks (the caller's included). */
size_t sl_op_threads(const sl_model_t* m);
/* Runs fn(ctx, task, thread) for task in [0, count) on the model's threads. */
void sl_parallel_for(const sl_model_t* m, size_t count, sl_task_fn fn, void* ctx);
/* Scratch memory for run: prepare reserves `shared` bytes for the whole op and `per_thread`
 * bytes for each thread; one buffer serves every op in turn. */
void sl_reserve_scratch(sl_model_t* m, sl_node_t* n, size_t shared, size_t per_thread);
void* sl_scratch_shared(const sl_model_t* m);
void* sl_scratch_thread(const sl_model_t* m, const sl_node_t* n, size_t thread);
/* Zeroed, 64-byte aligned memory freed with the model, counted against its memory limit. NULL
 * when over the limit or out of memory, with the model's error already set: return
 * SL_ERROR_OUT_OF_MEMORY as is, without a message of your own. */
void* sl_model_alloc(sl_model_t* m, size_t size);
/* Frees a block of sl_model_alloc early (prepare's discarded candidates). */
void sl_model_release(sl_model_t* m, void* block);
/* Records a formatted message and returns status. */
sl_status_t sl_fail(sl_model_t* m, sl_status_t status, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* SL_ERROR_INVALID_MODEL with the operator's index, type and name before the message. */
sl_status_t sl_node_fail(sl_model_t* m, const sl_node_t* n, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* SL_ERROR_UNSUPPORTED for a valid model this runtime cannot run: "operator i (name): TYPE <message>". */
sl_status_t sl_node_unsupported(sl_model_t* m, const sl_node_t* n, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* --- checks and helpers shared by ops (ops/common.c) ------------------------------------ */
/* The dtype's name as numpy spells it ("float32", "bool"), for messages. */
const char* sl_dtype_name(sl_dtype_t t);
/* Fails unless t is dense float32 with the given rank (-1: any rank). */
sl_status_t sl_expect_f32(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                          int32_t rank);
/* Fails unless t is a constant float32 weight (dense or group-sparse) of the given rank. */
sl_status_t sl_expect_weights(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, int32_t rank);
/* Fails unless t's shape equals shape[0..rank). */
sl_status_t sl_expect_shape(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                            int32_t rank, const int32_t* shape);
/* Fails unless t is float32 [batch, 4, 4]: one of MediaPipe's 4x4 transform matrices per image. */
sl_status_t sl_expect_transform_matrices(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                                         int32_t batch);
/* Element strides of t read as a tensor of `rank` dimensions under numpy broadcasting: 0 along
 * dimensions where t has size 1 (or none). */
void sl_broadcast_strides(const sl_tensor_t* t, int32_t rank, size_t* stride);
/* For NCHW ops that plan for one image's shape: fails unless axis 0 (the batch) is the only axis
 * of n's inputs and outputs that may vary. Their resize then only takes the new batch. */
sl_status_t sl_expect_batch_only(sl_model_t* m, const sl_node_t* n);
/* Fails unless each of values[0..count) lies in lo..SL_MAX_WINDOW: the strides, dilations, kernels and
 * paddings of windowed ops, bounded so products with any shape stay far inside 64 bits. */
#define SL_MAX_WINDOW 65536
sl_status_t sl_expect_window(sl_model_t* m, const sl_node_t* n, const char* what, int32_t lo, int count,
                             const int32_t* values);

/* Elementwise ops over inputs broadcast (numpy rules) to their output, walked as rows: size-1
 * dimensions are dropped and dimensions merged where every input steps through them as one, so
 * a residual add is one row and a mask [B,1,1,T] over [B,H,T,T] rows of T. Along a row each input
 * steps 0 or 1 elements. */
enum { SL_BROADCAST_MAX_INPUTS = 3 };
typedef struct {
  int32_t inputs, rank; /* rank after merging, >= 1; the last dimension is the row */
  size_t shape[SL_MAX_RANK];
  size_t stride[SL_BROADCAST_MAX_INPUTS][SL_MAX_RANK]; /* elements, 0 along broadcast dimensions */
  size_t elem[SL_BROADCAST_MAX_INPUTS], out_elem;      /* bytes per element */
  size_t rows, row_len;
} sl_broadcast_t;
/* Plans inputs 0..count-1 of n over output 0, failing (with the inputs named) unless they broadcast
 * and the output has their broadcast shape. Dtypes are the caller's to check. */
sl_status_t sl_broadcast_plan(sl_model_t* m, const sl_node_t* n, int32_t count, sl_broadcast_t* b);
/* One row: in[i] is input i's first element for it, stepping step[i] (0 or 1) elements; y the
 * row's first output element; len elements. */
typedef void (*sl_broadcast_row_fn)(const void* ctx, const void* const* in, const size_t* step, void* y,
                                    size_t len);
/* Calls row for every row of the plan, on the model's threads in tasks of about 16k elements. */
void sl_broadcast_run(const sl_model_t* m, const sl_node_t* n, const sl_broadcast_t* b, sl_broadcast_row_fn row,
                      const void* ctx);
/* Checks a fused activation read from the options table (its type, clamp min and max); the
 * elementwise functions NEG and after, which only ACTIVATION runs, are refused. */
sl_status_t sl_parse_activation(sl_model_t* m, const sl_node_t* n, uint8_t type, float min, float max,
                                sl_activation_t* act);
/* The same for the ACTIVATION op, which takes every type, and POW's exponent (finite). */
sl_status_t sl_parse_unary(sl_model_t* m, const sl_node_t* n, uint8_t type, float min, float max, float exponent,
                           sl_activation_t* act);
/* Splits act into the clamp a kernel applies (mm) and what must run after it on vunary: act
 * itself, or NONE when the clamp is all of it (ReLU, ReLU6, Clamp, none). */
sl_activation_t sl_activation_split(const sl_activation_t* act, sl_minmax_t* mm);
/* The elementwise ops that follow a convolution, run by it on each block of output it just
 * wrote, while that is in cache (runtime/fuse.c): a residual ADD, y = act(y + r), then a PRELU,
 * y = y > 0 ? y : slope * y, slopes per channel or one shared. The residual may cover only
 * output channels [first, first + channels) (BlazeFace's zero channel padding, folded): r then
 * holds just those, planes of `plane` floats, as y lays out its channels. */
typedef struct {
  bool residual;
  sl_minmax_t mm;
  sl_activation_t post;  /* the ADD's activation beyond its clamp */
  size_t first, channels, plane;
  sl_activation_t clamp; /* mm as an activation, for the channels the residual does not cover */
  const float* slopes;   /* PRELU's, NULL without one */
  size_t slope_step;     /* 1 per channel, 0 shared */
  const sl_ukernel_t *vbinary, *vunary;
} sl_epilogue_t;
/* The ADD of a residual over every output channel; sl_epilogue_add_channels for a range. */
void sl_epilogue_add(sl_model_t* m, sl_epilogue_t* e, const sl_activation_t* act);
void sl_epilogue_add_channels(sl_model_t* m, sl_epilogue_t* e, const sl_activation_t* act, size_t first,
                              size_t channels, size_t plane);
void sl_epilogue_prelu(sl_model_t* m, sl_epilogue_t* e, const float* slopes, bool per_channel);
/* y[at, at + n) of output channel `channel` from the convolution's values at src (y + at, or a
 * copy of them); r is the residual (NULL without one). */
void sl_epilogue_apply(const sl_epilogue_t* e, const float* src, float* y, const float* r, size_t at, size_t channel,
                       size_t n);
static inline bool sl_epilogue_on(const sl_epilogue_t* e) { return e->residual || e->slopes != NULL; }
/* Whether PAD node `pad` only pads axis 1 of a rank-4 tensor with zeros (ops/pad.c), and by how
 * many channels before: the residual an epilogue can add without the padded copy. */
bool sl_pad_channels_only(const sl_node_t* pad, size_t* before);
/* sl_gemm_pack_size(rows, k, panel_rows) floats in bytes; false when that does not fit size_t. */
bool sl_gemm_pack_bytes(size_t rows, size_t k, uint32_t panel_rows, size_t* bytes);
/* out[c * out_ld + r] = in[r * in_ld + c] for r < rows, c < cols, in cache-sized tiles on the
 * model's threads (on the calling thread alone inside another op's task); in and out must not
 * overlap (ops/transpose.c). */
void sl_transpose_2d(const sl_model_t* m, const float* in, size_t in_ld, float* out, size_t out_ld, size_t rows,
                     size_t cols);
/* A constant weight's values as dense floats in its own layout: w->data, or a copy densified from
 * its group-sparse form. Prepare packs or transforms them, then hands them to
 * sl_release_dense_weights, which frees only the copy. */
sl_status_t sl_dense_weights(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* w, const float** dense);
void sl_release_dense_weights(sl_model_t* m, const sl_tensor_t* w, const float* dense);
/* Dense float data of a constant (NULL if t is not a dense constant). */
static inline const float* sl_const_f32(const sl_tensor_t* t) {
  return (t != NULL && t->is_const && t->sparse == NULL) ? (const float*)t->data : NULL;
}

#endif
