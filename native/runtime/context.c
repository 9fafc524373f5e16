/* What the runtime offers ops (ops/op.h): tensors, kernels, threads, scratch, memory and
 * errors, over the model struct that only runtime/ sees. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

sl_status_t sl_fail(sl_model_t* m, sl_status_t status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->error, sizeof(m->error), fmt, ap);
  va_end(ap);
  return status;
}

sl_status_t sl_node_fail(sl_model_t* m, const sl_node_t* n, const char* fmt, ...) {
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: operator %d (%s, %s): %s",
                 (int)(n - m->nodes), sl_op_table[n->type]->name, n->name, msg);
}

void* sl_model_alloc(sl_model_t* m, size_t size) {
  /* The header keeps the block 64-byte aligned and chains it for sl_model_free. */
  size_t total = SL_ALIGN + ((size + SL_ALIGN - 1) / SL_ALIGN) * SL_ALIGN;
  if (size > SIZE_MAX - 2 * SL_ALIGN) return NULL;
  uint8_t* block = aligned_alloc(SL_ALIGN, total);
  if (block == NULL) return NULL;
  memset(block, 0, total);
  sl_alloc_t* a = (sl_alloc_t*)block;
  a->next = m->allocs;
  m->allocs = a;
  return block + SL_ALIGN;
}

void sl_model_release(sl_model_t* m, void* block) {
  if (block == NULL) return;
  sl_alloc_t* header = (sl_alloc_t*)((uint8_t*)block - SL_ALIGN);
  for (sl_alloc_t** link = &m->allocs; *link != NULL; link = &(*link)->next) {
    if (*link == header) {
      *link = header->next;
      free(header);
      return;
    }
  }
}

void sl_reserve_scratch(sl_model_t* m, sl_node_t* n, size_t shared, size_t per_thread) {
  n->scratch_shared = shared;
  n->scratch_per_thread = per_thread;
  size_t total = (shared + SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN +
                 (size_t)m->num_threads * ((per_thread + SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN);
  if (total > m->scratch_size) m->scratch_size = total;
}

const sl_tensor_t* sl_node_dynamic_tensor(const sl_model_t* m, const sl_node_t* n) {
  for (int32_t k = 0; k < n->num_inputs + n->num_outputs; k++) {
    const sl_tensor_t* t = k < n->num_inputs ? sl_in(m, n, k) : sl_out(m, n, k - n->num_inputs);
    if (t != NULL && t->has_dynamic) return t;
  }
  return NULL;
}

sl_tensor_t* sl_in(const sl_model_t* m, const sl_node_t* n, int i) {
  return n->inputs[i] < 0 ? NULL : &m->tensors[n->inputs[i]];
}

sl_tensor_t* sl_out(const sl_model_t* m, const sl_node_t* n, int i) { return &m->tensors[n->outputs[i]]; }

const sl_ukernel_t* sl_op_kernel(const sl_model_t* m, sl_family_t family, uint32_t rows) {
  return sl_ukernel_select(m->isa, family, rows);
}

bool sl_op_tuning(const sl_model_t* m) { return m->tune; }

size_t sl_op_threads(const sl_model_t* m) { return m->pool != NULL ? (size_t)m->num_threads : 1; }

void sl_parallel_for(const sl_model_t* m, size_t count, sl_task_fn fn, void* ctx) {
  sl_threadpool_run(m->pool, count, fn, ctx);
}

void* sl_scratch_shared(const sl_model_t* m) { return m->scratch; }

void* sl_scratch_thread(const sl_model_t* m, const sl_node_t* n, size_t thread) {
  size_t shared = (n->scratch_shared + SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN;
  size_t each = (n->scratch_per_thread + SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN;
  return (uint8_t*)m->scratch + shared + thread * each;
}
