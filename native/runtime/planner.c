/* One arena for every non-constant tensor. Tensors whose lifetimes (producer to
 * last reader, as op indices) overlap never share bytes; the rest reuse space.
 * Greedy by size, largest first, lowest fitting offset (as TFLite Micro does). */
#include <stdlib.h>

#include "model.h"

typedef struct {
  int32_t tensor, first, last;
  size_t size;
} live_t;

static int by_size_desc(const void* a, const void* b) {
  const live_t* x = a;
  const live_t* y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->tensor - y->tensor;
}

static size_t align_up(size_t v) { return (v + SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN; }

sl_status_t sl_plan_arena(sl_model_t* m) {
  int32_t end = m->num_nodes; /* graph inputs and outputs stay live across the whole run */
  live_t* live = sl_model_alloc(m, ((size_t)m->num_tensors + 1) * sizeof(live_t));
  if (live == NULL) return sl_fail(m, SL_ERROR_OUT_OF_MEMORY, "out of memory");
  int32_t count = 0;
  for (int32_t i = 0; i < m->num_tensors; i++) {
    sl_tensor_t* t = &m->tensors[i];
    if (t->is_const || (t->producer < 0 && !t->is_input)) continue;
    live_t* l = &live[count++];
    l->tensor = i;
    l->first = t->is_input ? -1 : t->producer;
    l->last = t->last_use > l->first ? t->last_use : l->first;
    l->size = align_up(t->num_bytes);
  }
  for (int32_t i = 0; i < m->num_inputs; i++) {
    for (int32_t j = 0; j < count; j++)
      if (live[j].tensor == m->inputs[i]) live[j].last = end;
  }
  for (int32_t i = 0; i < m->num_outputs; i++) {
    for (int32_t j = 0; j < count; j++)
      if (live[j].tensor == m->outputs[i]) live[j].last = end;
  }
  qsort(live, (size_t)count, sizeof(live_t), by_size_desc);
  size_t total = 0;
  for (int32_t i = 0; i < count; i++) {
    size_t offset = 0;
    /* Raise the offset past every placed, overlapping tensor until it fits; the
     * placed list is short (a few hundred) so the quadratic scan is fine. */
    for (bool moved = true; moved;) {
      moved = false;
      for (int32_t j = 0; j < i; j++) {
        if (live[j].last < live[i].first || live[i].last < live[j].first) continue;
        size_t a = m->tensors[live[j].tensor].arena_offset;
        if (offset < a + live[j].size && a < offset + live[i].size) {
          offset = a + live[j].size;
          moved = true;
        }
      }
    }
    m->tensors[live[i].tensor].arena_offset = offset;
    if (offset + live[i].size > total) total = offset + live[i].size;
  }
  m->arena_size = total;
  m->arena = sl_model_alloc(m, total > 0 ? total : 1);
  if (m->arena == NULL) return sl_fail(m, SL_ERROR_OUT_OF_MEMORY, "out of memory for a %zu-byte arena", total);
  for (int32_t i = 0; i < count; i++)
    m->tensors[live[i].tensor].data = (uint8_t*)m->arena + m->tensors[live[i].tensor].arena_offset;
  /* Ops run one after another, so one scratch buffer serves them all. */
  if (m->scratch_size > 0) {
    m->scratch = sl_model_alloc(m, m->scratch_size);
    if (m->scratch == NULL)
      return sl_fail(m, SL_ERROR_OUT_OF_MEMORY, "out of memory for %zu bytes of scratch", m->scratch_size);
  }
  sl_model_release(m, live);
  return SL_OK;
}
