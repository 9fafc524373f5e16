/* libFuzzer target: any byte string must verify-and-run (resized too) or fail cleanly.
 *
 * LLVMFuzzerCustomMutator knows enough of the .slite FlatBuffer to find the scalars that the
 * verifier and the ops' size arithmetic read: operator options, types, versions and tensor
 * indices, tensor shapes, dtypes and buffer indices, dynamic dimension maxima, group-sparse sizes,
 * row pointers and column indices, the buffer table, graph inputs and outputs. It sets one or a few
 * of them to boundary values (0, -1, 2^15, 2^16, 2^30 + 2, 2^31 - 1, ...), to a neighbour of their
 * value, or to another slot's value; otherwise, or when the bytes no longer parse, libFuzzer's
 * own mutations run. */
#include <stdint.h>
#include <string.h>

#include "../runtime/fb_reader.h"
#include "../schema/sparselite_schema.h"
#include "../tests/drive.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

/* --- the target ---------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sl_model_t* m = sl_model_new();
  if (m == NULL) return 0;
  /* Sizes a file asks for beyond this fail at load, as on a small device, instead of taking the
   * fuzzer's memory; everything that fits runs. */
  sl_model_set_memory_limit(m, (size_t)64 << 20);
  sl_model_set_fusion(m, size % 2 ? 1 : -1); /* half the inputs fuse every chain they hold, in one-row bands */
  if (sl_model_load_buffer(m, data, size, 1) == SL_OK) {
    sl_test_fill_inputs(m, 0);
    sl_model_run(m);
    sl_test_run_resized(m, 0);
  }
  sl_model_free(m);
  return 0;
}

/* --- the structure-aware mutator ------------------------------------------------------------ */

enum { MAX_SLOTS = 4096, MAX_VECTOR = 64, MAX_TABLES = 256 };

typedef struct {
  uint32_t pos;
  uint8_t width; /* 1, 2, 4 or 8 bytes, little-endian */
} slot_t;

typedef struct {
  sl_fb_t fb;
  slot_t slot[MAX_SLOTS];
  int count;
} walk_t;

static void add(walk_t* w, size_t pos, int width) {
  if (pos != 0 && w->count < MAX_SLOTS && pos + (size_t)width <= w->fb.size)
    w->slot[w->count++] = (slot_t){(uint32_t)pos, (uint8_t)width};
}

/* Where a field of t lies, 0 when absent (the reader's own lookup is private to it). */
static size_t field_at(const walk_t* w, const sl_fb_table_t* t, int field) {
  size_t entry = 4 + 2 * (size_t)field;
  if (t->pos == 0 || entry + 2 > t->vtable_size) return 0;
  uint16_t off;
  memcpy(&off, w->fb.base + t->vtable + entry, 2);
  return off == 0 || off >= t->table_size ? 0 : t->pos + off;
}

static void scalar(walk_t* w, const sl_fb_table_t* t, int field, int width) { add(w, field_at(w, t, field), width); }

/* The elements of a vector field (the first MAX_VECTOR) and its length word. */
static void vector(walk_t* w, const sl_fb_table_t* t, int field, int width) {
  w->fb.error = NULL;
  sl_fb_vec_t v = sl_fb_vector(&w->fb, t, field, (size_t)width);
  if (w->fb.error != NULL || v.pos == 0) return;
  add(w, v.pos - 4, 4);
  for (uint32_t i = 0; i < v.len && i < MAX_VECTOR; i++) add(w, v.pos + (size_t)width * i, width);
}

/* Every field of an options table: its int vectors (pads, perm, begin and step), and its scalars,
 * each as wide as the distance to the next field (FlatBuffers packs fields by size), at most 4
 * bytes, so a byte-wide activation is never written as a word over its neighbours. */
static void options(walk_t* w, const sl_fb_table_t* t, uint8_t tag) {
  int vec = tag == SL_OPTIONS_PAD_OPTIONS         ? SL_PAD_OPTIONS_PADS
            : tag == SL_OPTIONS_TRANSPOSE_OPTIONS ? SL_TRANSPOSE_OPTIONS_PERM
            : tag == SL_OPTIONS_SLICE_OPTIONS     ? SL_SLICE_OPTIONS_BEGIN
                                                  : -1;
  int vec2 = tag == SL_OPTIONS_SLICE_OPTIONS ? SL_SLICE_OPTIONS_STEP : -1;
  if (vec >= 0) vector(w, t, vec, 4);
  if (vec2 >= 0) vector(w, t, vec2, 4);
  int fields = (t->vtable_size - 4) / 2;
  for (int f = 0; f < fields; f++) {
    size_t pos = field_at(w, t, f), next = t->pos + t->table_size;
    if (pos == 0 || f == vec || f == vec2) continue;
    for (int g = 0; g < fields; g++) {
      size_t other = field_at(w, t, g);
      if (other > pos && other < next) next = other;
    }
    add(w, pos, next - pos >= 4 ? 4 : next - pos >= 2 ? 2 : 1);
  }
}

/* The first entries of buffer `index`, read as `width`-byte words (row pointers, column indices). */
static void buffer(walk_t* w, sl_fb_vec_t buffers, uint32_t index, int width) {
  if (index == 0 || index >= buffers.len) return;
  size_t entry = buffers.pos + (size_t)SL_BUFFER_SIZEOF * index;
  uint64_t off, len;
  memcpy(&off, w->fb.base + entry + SL_BUFFER_OFFSETOF_OFFSET, 8);
  memcpy(&len, w->fb.base + entry + SL_BUFFER_OFFSETOF_SIZE, 8);
  if (off >= w->fb.size || len > w->fb.size - off) return;
  for (uint64_t i = 0; i < len / (uint64_t)width && i < MAX_VECTOR; i++) add(w, (size_t)(off + i * (uint64_t)width), width);
}

static void tensor(walk_t* w, const sl_fb_table_t* t, sl_fb_vec_t buffers) {
  scalar(w, t, SL_TENSOR_DTYPE, 1);
  scalar(w, t, SL_TENSOR_STORAGE, 1);
  scalar(w, t, SL_TENSOR_BUFFER, 4);
  vector(w, t, SL_TENSOR_SHAPE, 4);
  vector(w, t, SL_TENSOR_DYNAMIC_DIMS, 1);
  w->fb.error = NULL;
  sl_fb_table_t sp = sl_fb_table(&w->fb, t, SL_TENSOR_SPARSITY);
  if (w->fb.error != NULL || sp.pos == 0) return;
  scalar(w, &sp, SL_GROUP_SPARSITY_GROUP_SIZE, 1);
  scalar(w, &sp, SL_GROUP_SPARSITY_INDEX_TYPE, 1);
  scalar(w, &sp, SL_GROUP_SPARSITY_ROW_PTR, 4);
  scalar(w, &sp, SL_GROUP_SPARSITY_COL_IDX, 4);
  scalar(w, &sp, SL_GROUP_SPARSITY_OUT_PERM, 4);
  uint8_t itype = sl_fb_u8(&w->fb, &sp, SL_GROUP_SPARSITY_INDEX_TYPE, SL_DTYPE_UINT16);
  buffer(w, buffers, sl_fb_u32(&w->fb, &sp, SL_GROUP_SPARSITY_ROW_PTR, 0), 4);
  buffer(w, buffers, sl_fb_u32(&w->fb, &sp, SL_GROUP_SPARSITY_COL_IDX, 0), itype == SL_DTYPE_UINT32 ? 4 : 2);
  buffer(w, buffers, sl_fb_u32(&w->fb, &sp, SL_GROUP_SPARSITY_OUT_PERM, 0), 4);
}

static void operator_(walk_t* w, const sl_fb_table_t* t, sl_fb_vec_t buffers) {
  (void)buffers;
  scalar(w, t, SL_OPERATOR_TYPE, 2);
  scalar(w, t, SL_OPERATOR_VERSION, 2);
  scalar(w, t, SL_OPERATOR_OPTIONS_TYPE, 1);
  vector(w, t, SL_OPERATOR_INPUTS, 4);
  vector(w, t, SL_OPERATOR_OUTPUTS, 4);
  w->fb.error = NULL;
  uint8_t tag = sl_fb_u8(&w->fb, t, SL_OPERATOR_OPTIONS_TYPE, 0);
  sl_fb_table_t o = sl_fb_table(&w->fb, t, SL_OPERATOR_OPTIONS);
  if (w->fb.error == NULL && o.pos != 0) options(w, &o, tag);
}

static void dynamic_dim(walk_t* w, const sl_fb_table_t* t, sl_fb_vec_t buffers) {
  (void)buffers;
  scalar(w, t, SL_DYNAMIC_DIM_MAX, 4);
}

/* visit on each table of a vector of tables (the first MAX_TABLES). */
static void each_table(walk_t* w, const sl_fb_table_t* root, int field, sl_fb_vec_t buffers,
                       void (*visit)(walk_t*, const sl_fb_table_t*, sl_fb_vec_t)) {
  w->fb.error = NULL;
  sl_fb_vec_t v = sl_fb_vector(&w->fb, root, field, 4);
  for (uint32_t i = 0; i < v.len && i < MAX_TABLES; i++) {
    w->fb.error = NULL;
    sl_fb_table_t t = sl_fb_vec_table(&w->fb, v, i);
    if (w->fb.error == NULL) visit(w, &t, buffers);
  }
}

static void collect(walk_t* w, const uint8_t* data, size_t size) {
  sl_fb_init(&w->fb, data, size);
  w->count = 0;
  sl_fb_table_t root = sl_fb_root(&w->fb, SL_FILE_IDENTIFIER);
  if (w->fb.error != NULL) return;
  scalar(w, &root, SL_MODEL_FORMAT_VERSION, 4);
  vector(w, &root, SL_MODEL_INPUTS, 4);
  vector(w, &root, SL_MODEL_OUTPUTS, 4);
  w->fb.error = NULL;
  sl_fb_vec_t buffers = sl_fb_vector(&w->fb, &root, SL_MODEL_BUFFERS, SL_BUFFER_SIZEOF);
  if (w->fb.error != NULL) buffers = (sl_fb_vec_t){0, 0};
  for (uint32_t i = 0; i < buffers.len && i < MAX_VECTOR; i++) {
    add(w, buffers.pos + (size_t)SL_BUFFER_SIZEOF * i + SL_BUFFER_OFFSETOF_OFFSET, 8);
    add(w, buffers.pos + (size_t)SL_BUFFER_SIZEOF * i + SL_BUFFER_OFFSETOF_SIZE, 8);
  }
  each_table(w, &root, SL_MODEL_TENSORS, buffers, tensor);
  each_table(w, &root, SL_MODEL_OPERATORS, buffers, operator_);
  each_table(w, &root, SL_MODEL_DIMS, buffers, dynamic_dim);
}

static uint32_t next_random(uint32_t* state) {
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state;
}

#define PICK(table, rng) table[next_random(rng) % (sizeof(table) / sizeof(table[0]))]

/* A new value for slot s (the caller keeps its low `width` bytes). */
static uint64_t boundary(const walk_t* w, slot_t s, uint64_t current, uint32_t* rng) {
  static const uint64_t small[] = {0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 63, 64, 127, 128, 255, ~0ull};
  static const uint64_t wide[] = {0x7fff, 0x8000, 0xffff, 0x10000, 0x10001, 46340, 46341, 0x3fffffff, 0x40000000,
                                  0x40000002, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};
  static const uint64_t huge[] = {0x100000000ull, 0x7fffffffffffffffull, 0x8000000000000000ull,
                                  0xffffffffffffffc0ull, ~0ull};
  switch (next_random(rng) % 8) {
    case 0: return current + 1;
    case 1: return current - 1;
    case 2: return current * 2;
    case 3: { /* another slot's value of the same width: duplicate indices, aliased buffers */
      slot_t o = w->slot[next_random(rng) % (uint32_t)w->count];
      uint64_t v = current;
      if (o.width == s.width) memcpy(&v, w->fb.base + o.pos, s.width);
      return v;
    }
    case 4: return w->fb.size + (next_random(rng) % 3) * 64 - 64; /* offsets around the end of the file */
    case 5: return s.width == 8 ? PICK(huge, rng) : PICK(small, rng);
    case 6: return s.width >= 2 ? PICK(wide, rng) : PICK(small, rng);
    default: return PICK(small, rng);
  }
}

size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  static walk_t w; /* large; one mutation at a time */
  uint32_t rng = seed | 1u;
  if (next_random(&rng) % 4 != 0) {
    collect(&w, data, size);
    if (w.count > 0) {
      int edits = 1 + (int)(next_random(&rng) % 3);
      for (int e = 0; e < edits; e++) {
        slot_t s = w.slot[next_random(&rng) % (uint32_t)w.count];
        uint64_t current = 0;
        memcpy(&current, data + s.pos, s.width);
        uint64_t v = boundary(&w, s, current, &rng);
        memcpy(data + s.pos, &v, s.width); /* little-endian, as the format */
      }
      return size;
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}
