/* What the runtime offers ops (ops/op.h): tensors, kernels, threads, scratch, memory and
 * errors, over the model struct that only runtime/ sees. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

sl_status_t sl_fail(sl_model_t* m, sl_status_t status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->error, sizeof(m->error), fmt, ap);
  va_end(ap);
  return status;
}

/* "operator i (...): message" with the op's index, name and type, in one of two layouts. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 0)))
#endif
static sl_status_t node_fail(sl_model_t* m, const sl_node_t* n, sl_status_t status, const char* fmt, va_list ap) {
  char msg[384];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  int index = (int)(n - m->nodes);
  const char* type = sl_op_table[n->type]->name;
  if (status == SL_ERROR_INVALID_MODEL)
    return sl_fail(m, status, "invalid model: operator %d (%s, %s): %s", index, type, n->name, msg);
  return sl_fail(m, status, "operator %d (%s): %s %s", index, n->name, type, msg);
}

sl_status_t sl_node_fail(sl_model_t* m, const sl_node_t* n, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sl_status_t st = node_fail(m, n, SL_ERROR_INVALID_MODEL, fmt, ap);
  va_end(ap);
  return st;
}

sl_status_t sl_node_unsupported(sl_model_t* m, const sl_node_t* n, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sl_status_t st = node_fail(m, n, SL_ERROR_UNSUPPORTED, fmt, ap);
  va_end(ap);
  return st;
}

bool sl_memory_fits(sl_model_t* m, size_t bytes) {
  size_t need = sl_size_sat_add(m->memory_used, bytes);
  if (need < SIZE_MAX && need <= m->memory_limit) return true; /* SIZE_MAX: a size that overflowed */
  sl_fail(m, SL_ERROR_OUT_OF_MEMORY,
          "loading needs %zu bytes, over the memory limit of %zu bytes: raise it with sl_model_set_memory_limit / "
          "sparselite.load(..., max_memory_bytes=...) / rt.load(bytes, {maxMemoryBytes})",
          need, m->memory_limit);
  return false;
}

void* sl_model_alloc(sl_model_t* m, size_t size) {
  /* calloc, not an aligned malloc and memset: large blocks come zeroed from the OS page by page
   * as they are touched, so an arena planned for the maximum shapes costs only what runs use.
   * The block is rounded to 64 bytes, aligned by hand and headed by its sl_alloc_t. */
  size_t bytes = sl_size_sat_add(sl_size_sat_add(size, SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN,
                                 SL_ALIGN + sizeof(sl_alloc_t));
  if (!sl_memory_fits(m, bytes)) return NULL;
  uint8_t* raw = calloc(1, bytes);
  if (raw == NULL) {
    sl_fail(m, SL_ERROR_OUT_OF_MEMORY, "out of memory: cannot allocate %zu bytes (%zu allocated already)", bytes,
            m->memory_used);
    return NULL;
  }
  uintptr_t after_header = (uintptr_t)raw + sizeof(sl_alloc_t);
  uint8_t* block = raw + sizeof(sl_alloc_t) + (SL_ALIGN - after_header % SL_ALIGN) % SL_ALIGN;
  sl_alloc_t* a = (sl_alloc_t*)block - 1;
  a->next = m->allocs;
  a->raw = raw;
  a->bytes = bytes;
  m->allocs = a;
  m->memory_used += bytes;
  return block;
}

void sl_model_release(sl_model_t* m, void* block) {
  if (block == NULL) return;
  sl_alloc_t* header = (sl_alloc_t*)block - 1;
  for (sl_alloc_t** link = &m->allocs; *link != NULL; link = &(*link)->next) {
    if (*link == header) {
      *link = header->next;
      m->memory_used -= header->bytes;
      free(header->raw);
      return;
    }
  }
}

void sl_reserve_scratch(sl_model_t* m, sl_node_t* n, size_t shared, size_t per_thread) {
  n->scratch_shared = shared;
  n->scratch_per_thread = per_thread;
  /* Saturates: a size past SIZE_MAX fails the memory limit when the scratch is allocated. */
  size_t each = sl_size_sat_add(per_thread, SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN, threads_total;
  if (!sl_size_mul(each, (size_t)m->num_threads, &threads_total)) threads_total = SIZE_MAX;
  size_t total = sl_size_sat_add(sl_size_sat_add(shared, SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN, threads_total);
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
bool sl_op_fp16(const sl_model_t* m) { return m->precision == SL_PRECISION_FP16 && (m->isa & SL_ISA_NEON_FP16) != 0; }

int sl_op_winograd(const sl_model_t* m) { return m->winograd; }

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
