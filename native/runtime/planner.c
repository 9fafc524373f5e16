/* One arena for every non-constant tensor. Tensors whose lifetimes (producer to last reader, as
 * op indices; graph inputs and outputs the whole run) overlap never share bytes; the rest reuse
 * space. Up to GREEDY_MAX tensors: greedy by size, largest first at the lowest offset that fits
 * (as TFLite Micro does), which packs real models best but costs O(N^2). Beyond, where only
 * unusual or hostile files go: first fit in execution order over a treap of the free ranges,
 * O(N log N), so that a file declaring a million tensors plans in a fraction of a second. */
#include <stdlib.h>

#include "model.h"

#define GREEDY_MAX 4096

typedef struct {
  int32_t tensor, first, last;
  size_t size, offset;
} live_t;

static bool overlap_in_time(const live_t* a, const live_t* b) { return a->first <= b->last && b->first <= a->last; }

static int by_size_desc(const void* a, const void* b) {
  const live_t* x = a;
  const live_t* y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->tensor - y->tensor;
}

/* Largest first, each at the lowest offset clear of every placed tensor it overlaps in time:
 * `placed` holds the placed tensors ordered by offset, so one pass over it finds the first gap. */
static sl_status_t plan_greedy(sl_model_t* m, live_t* live, int32_t count) {
  int32_t* placed = sl_model_alloc(m, ((size_t)count + 1) * sizeof(int32_t));
  if (placed == NULL) return SL_ERROR_OUT_OF_MEMORY;
  qsort(live, (size_t)count, sizeof(live_t), by_size_desc);
  for (int32_t i = 0; i < count; i++) {
    live_t* l = &live[i];
    l->offset = 0;
    for (int32_t k = 0; k < i; k++) {
      const live_t* p = &live[placed[k]];
      if (!overlap_in_time(l, p)) continue;
      if (p->offset >= l->offset + l->size) break;
      if (p->offset + p->size > l->offset) l->offset = p->offset + p->size;
    }
    int32_t at = i;
    while (at > 0 && live[placed[at - 1]].offset > l->offset) {
      placed[at] = placed[at - 1];
      at--;
    }
    placed[at] = i;
  }
  sl_model_release(m, placed);
  return SL_OK;
}

/* Free ranges of the arena in a treap keyed by offset, each node knowing the largest range
 * below it. The last range runs to SIZE_MAX, so a request always fits somewhere. */
typedef struct {
  size_t offset, size, largest;
  uint32_t priority;
  int32_t left, right;
} range_t;

typedef struct {
  range_t* nodes;
  int32_t count;
  uint32_t seed;
} ranges_t;

static size_t largest(const ranges_t* r, int32_t n) { return n < 0 ? 0 : r->nodes[n].largest; }

static void update(ranges_t* r, int32_t n) {
  range_t* x = &r->nodes[n];
  x->largest = x->size;
  if (largest(r, x->left) > x->largest) x->largest = largest(r, x->left);
  if (largest(r, x->right) > x->largest) x->largest = largest(r, x->right);
}

static int32_t merge(ranges_t* r, int32_t a, int32_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  if (r->nodes[a].priority > r->nodes[b].priority) {
    r->nodes[a].right = merge(r, r->nodes[a].right, b);
    update(r, a);
    return a;
  }
  r->nodes[b].left = merge(r, a, r->nodes[b].left);
  update(r, b);
  return b;
}

/* Splits n into ranges below `offset` (*lo) and at or above it (*hi). */
static void split(ranges_t* r, int32_t n, size_t offset, int32_t* lo, int32_t* hi) {
  if (n < 0) {
    *lo = *hi = -1;
  } else if (r->nodes[n].offset < offset) {
    split(r, r->nodes[n].right, offset, &r->nodes[n].right, hi);
    update(r, n);
    *lo = n;
  } else {
    split(r, r->nodes[n].left, offset, lo, &r->nodes[n].left);
    update(r, n);
    *hi = n;
  }
}

static int32_t new_range(ranges_t* r, size_t offset, size_t size) {
  r->seed ^= r->seed << 13; /* xorshift32: fixed seed, so plans are reproducible */
  r->seed ^= r->seed >> 17;
  r->seed ^= r->seed << 5;
  range_t* x = &r->nodes[r->count];
  *x = (range_t){offset, size, size, r->seed, -1, -1};
  return r->count++;
}

/* Carves `size` bytes from the lowest range that holds them; returns their offset. */
static size_t take(ranges_t* r, int32_t* link, size_t size) {
  range_t* x = &r->nodes[*link];
  size_t at;
  if (largest(r, x->left) >= size) {
    at = take(r, &x->left, size);
  } else if (x->size >= size) {
    at = x->offset;
    x->offset += size;
    x->size -= size;
    if (x->size == 0) {
      *link = merge(r, x->left, x->right);
      return at;
    }
  } else {
    at = take(r, &x->right, size);
  }
  update(r, *link);
  return at;
}

/* Returns [offset, offset + size) to the free ranges, joined with the neighbours it touches. */
static void give(ranges_t* r, int32_t* root, size_t offset, size_t size) {
  int32_t lo, hi, node = -1;
  split(r, *root, offset, &lo, &hi);
  int32_t prev = lo;
  while (prev >= 0 && r->nodes[prev].right >= 0) prev = r->nodes[prev].right;
  if (prev >= 0 && r->nodes[prev].offset + r->nodes[prev].size == offset) {
    int32_t rest;
    split(r, lo, r->nodes[prev].offset, &lo, &rest); /* rest is prev alone */
    node = prev;
    r->nodes[node].size += size;
  }
  int32_t next = hi;
  while (next >= 0 && r->nodes[next].left >= 0) next = r->nodes[next].left;
  if (next >= 0 && offset + size == r->nodes[next].offset) {
    int32_t alone;
    split(r, hi, r->nodes[next].offset + 1, &alone, &hi);
    if (node < 0) {
      node = next;
      r->nodes[node].offset = offset;
      r->nodes[node].size += size;
    } else {
      r->nodes[node].size += r->nodes[next].size;
    }
  }
  if (node < 0) node = new_range(r, offset, size);
  r->nodes[node].left = r->nodes[node].right = -1;
  update(r, node);
  *root = merge(r, merge(r, lo, node), hi);
}

/* order[] = 0..count-1 sorted by first (or last) op, stably: both are in -1..end. */
static void order_by(const live_t* live, int32_t count, bool by_last, int32_t end, int32_t* order, int32_t* bucket) {
  for (int32_t b = 0; b <= end + 2; b++) bucket[b] = 0;
  for (int32_t i = 0; i < count; i++) bucket[(by_last ? live[i].last : live[i].first) + 2]++;
  for (int32_t b = 1; b <= end + 2; b++) bucket[b] += bucket[b - 1];
  for (int32_t i = 0; i < count; i++) order[bucket[(by_last ? live[i].last : live[i].first) + 1]++] = i;
}

/* In execution order: before op t allocates its outputs, tensors last read before t are freed. */
static sl_status_t plan_first_fit(sl_model_t* m, live_t* live, int32_t count, int32_t end) {
  int32_t* by_first = sl_model_alloc(m, ((size_t)count + 1) * sizeof(int32_t));
  int32_t* by_last = sl_model_alloc(m, ((size_t)count + 1) * sizeof(int32_t));
  int32_t* bucket = sl_model_alloc(m, ((size_t)end + 3) * sizeof(int32_t));
  ranges_t r = {sl_model_alloc(m, ((size_t)count + 2) * sizeof(range_t)), 0, 2463534242u};
  if (by_first == NULL || by_last == NULL || bucket == NULL || r.nodes == NULL) return SL_ERROR_OUT_OF_MEMORY;
  order_by(live, count, false, end, by_first, bucket);
  order_by(live, count, true, end, by_last, bucket);
  int32_t root = new_range(&r, 0, SIZE_MAX);
  int32_t freed = 0;
  for (int32_t i = 0; i < count; i++) {
    live_t* l = &live[by_first[i]];
    for (; live[by_last[freed]].last < l->first; freed++)
      give(&r, &root, live[by_last[freed]].offset, live[by_last[freed]].size);
    l->offset = take(&r, &root, l->size);
  }
  sl_model_release(m, r.nodes);
  sl_model_release(m, bucket);
  sl_model_release(m, by_last);
  sl_model_release(m, by_first);
  return SL_OK;
}

/* The tensor whose bytes t takes over, through a chain of sums in place (ResNet's blocks). */
static int32_t in_place_root(const sl_model_t* m, int32_t t) {
  while (m->tensors[t].in_place_of >= 0) t = m->tensors[t].in_place_of;
  return t;
}

sl_status_t sl_plan_arena(sl_model_t* m) {
  int32_t end = m->num_nodes; /* graph inputs and outputs stay live across the whole run */
  live_t* live = sl_model_alloc(m, ((size_t)m->num_tensors + 1) * sizeof(live_t));
  int32_t* slot = sl_model_alloc(m, ((size_t)m->num_tensors + 1) * sizeof(int32_t));
  if (live == NULL || slot == NULL) return SL_ERROR_OUT_OF_MEMORY;
  int32_t count = 0;
  for (int32_t i = 0; i < m->num_tensors; i++) {
    sl_tensor_t* t = &m->tensors[i];
    slot[i] = -1;
    if (t->is_const || (t->producer < 0 && !t->is_input) || t->in_place_of >= 0) continue;
    live_t* l = &live[count];
    slot[i] = count++;
    l->tensor = i;
    l->first = t->is_input ? -1 : t->producer;
    l->last = t->is_input ? end : t->last_use > l->first ? t->last_use : l->first;
    /* Saturates: a sum past SIZE_MAX then fails the memory limit instead of wrapping. */
    l->size = sl_size_sat_add(t->num_bytes, SL_ALIGN - 1) / SL_ALIGN * SL_ALIGN;
  }
  /* A tensor in place of another (runtime/fuse.c: the same size) takes the slot at the end of
   * that chain, live until every tensor in it is done. */
  for (int32_t i = 0; i < m->num_tensors; i++) {
    if (m->tensors[i].in_place_of < 0) continue;
    live_t* l = &live[slot[i] = slot[in_place_root(m, i)]];
    if (m->tensors[i].last_use > l->last) l->last = m->tensors[i].last_use;
  }
  for (int32_t i = 0; i < m->num_outputs; i++) live[slot[m->outputs[i]]].last = end;
  sl_model_release(m, slot);
  /* No offset passes the sum of all sizes: below SIZE_MAX, neither planner can overflow. */
  size_t sum = 0;
  for (int32_t i = 0; i < count; i++) sum = sl_size_sat_add(sum, live[i].size);
  if (!sl_memory_fits(m, sum == SIZE_MAX ? SIZE_MAX : 0)) return SL_ERROR_OUT_OF_MEMORY;
  sl_status_t st = count <= GREEDY_MAX ? plan_greedy(m, live, count) : plan_first_fit(m, live, count, end);
  if (st != SL_OK) return st;
  size_t total = 0;
  for (int32_t i = 0; i < count; i++)
    if (live[i].offset + live[i].size > total) total = live[i].offset + live[i].size;
  /* Both at once, so the message gives what loading needs in all. */
  if (!sl_memory_fits(m, sl_size_sat_add(total, m->scratch_size))) return SL_ERROR_OUT_OF_MEMORY;
  m->arena_size = total;
  m->arena = sl_model_alloc(m, total > 0 ? total : 1);
  if (m->arena == NULL) return SL_ERROR_OUT_OF_MEMORY;
  for (int32_t i = 0; i < count; i++) {
    m->tensors[live[i].tensor].arena_offset = live[i].offset;
    m->tensors[live[i].tensor].data = (uint8_t*)m->arena + live[i].offset;
  }
  for (int32_t i = 0; i < m->num_tensors; i++) {
    if (m->tensors[i].in_place_of < 0) continue;
    const sl_tensor_t* root = &m->tensors[in_place_root(m, i)];
    m->tensors[i].arena_offset = root->arena_offset;
    m->tensors[i].data = root->data;
  }
  /* Ops run one after another, so one scratch buffer serves them all. */
  if (m->scratch_size > 0) {
    m->scratch = sl_model_alloc(m, m->scratch_size);
    if (m->scratch == NULL) return SL_ERROR_OUT_OF_MEMORY;
  }
  sl_model_release(m, live);
  return SL_OK;
}
