/* The model as the runtime (model.c, loader.c, planner.c, context.c) sees it; ops see only
 * ops/op.h. model.c's public API calls the loader and the planner, which use context.c; nothing
 * calls back into model.c. */
#ifndef SL_RUNTIME_MODEL_H
#define SL_RUNTIME_MODEL_H

#include <stdatomic.h>

#include "../ops/op.h"

#define SL_FORMAT_VERSION 1u
#define SL_ALIGN 64u
#define SL_MAX_DYNAMIC_DIMS 16 /* named dynamic dimensions a file may declare */

/* Sits just below each block of sl_model_alloc: the chain sl_model_free walks, the pointer
 * calloc returned and the bytes counted against the memory limit. */
typedef struct sl_alloc {
  struct sl_alloc* next;
  void* raw;
  size_t bytes;
} sl_alloc_t;

struct sl_model {
  char error[512];
  sl_alloc_t* allocs;
  size_t memory_limit; /* sl_model_set_memory_limit */
  size_t memory_used;  /* bytes of the blocks in allocs */
  const uint8_t* file;
  size_t file_size;
  bool loaded;
  bool tune;
  int32_t fuse;     /* sl_model_set_fusion */
  int32_t winograd; /* sl_model_set_winograd */
  int32_t precision; /* sl_model_set_precision */
  bool profile;
  atomic_bool busy; /* a run or resize is in progress: one thread at a time */
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
  /* per dimension: 0, or k when it is floor((dim_value[k-1] + dim_offset) / dim_divisor) */
  int32_t *dim_source, *dim_offset, *dim_divisor;
  sl_fb_t fb;            /* the file, for ops' resize */
  void* arena;
  size_t arena_size;
};

/* Parses and verifies the file into tensors and nodes, and prepares every op (loader.c). */
sl_status_t sl_load_graph(sl_model_t* m);
/* Finds the chains of ops that run as one fused block and hands them to the op that runs them
 * (fuse.c); the tensors only a block sees get no arena slot. */
sl_status_t sl_fuse_blocks(sl_model_t* m, sl_fb_t* fb);
/* With fp16 on: tensors passed between fp16 convolutions stay in halves (runtime/fuse.c). */
sl_status_t sl_plan_halves(sl_model_t* m);
/* Places every activation in one arena and allocates it and the scratch (planner.c). */
sl_status_t sl_plan_arena(sl_model_t* m);
/* Whether `bytes` more fit under the memory limit (SIZE_MAX, an overflowed size, never does); if
 * not, records the message that names sl_model_set_memory_limit and both sizes (context.c, also
 * behind sl_model_alloc). */
bool sl_memory_fits(sl_model_t* m, size_t bytes);
/* a + b, or SIZE_MAX when that overflows: sizes that then fail the memory limit. */
/* A computed dimension's size: floor((source + offset) / divisor), divisor >= 1; 64-bit, so no
 * int32 source and offset overflow. */
static inline int64_t sl_dim_formula(int32_t source, int32_t offset, int32_t divisor) {
  int64_t num = (int64_t)source + offset;
  return num >= 0 ? num / divisor : -((-num + divisor - 1) / divisor);
}

static inline size_t sl_size_sat_add(size_t a, size_t b) {
  size_t sum;
  return sl_size_add(a, b, &sum) ? sum : SIZE_MAX;
}
/* The first input or output of n with a dynamic dimension, or NULL (context.c). */
const sl_tensor_t* sl_node_dynamic_tensor(const sl_model_t* m, const sl_node_t* n);

#endif
