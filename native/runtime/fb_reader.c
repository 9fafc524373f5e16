#include "fb_reader.h"

#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "sparselite reads FlatBuffers in place and needs a little-endian target"
#endif

void sl_fb_init(sl_fb_t* fb, const void* data, size_t size) {
  fb->base = (const uint8_t*)data;
  fb->size = size;
  fb->error = NULL;
  fb->end = 0;
}

static void touch(sl_fb_t* fb, size_t end) {
  if (end > fb->end) fb->end = end;
}

static bool fail(sl_fb_t* fb, const char* msg) {
  if (fb->error == NULL) fb->error = msg;
  return false;
}

static bool in_bounds(sl_fb_t* fb, size_t pos, size_t n) {
  if (fb->error != NULL) return false;
  if (n > fb->size || pos > fb->size - n) return fail(fb, "offset points outside the file");
  return true;
}

static uint32_t rd_u32(sl_fb_t* fb, size_t pos) {
  uint32_t v = 0;
  if (in_bounds(fb, pos, 4)) memcpy(&v, fb->base + pos, 4);
  return v;
}

static uint16_t rd_u16(sl_fb_t* fb, size_t pos) {
  uint16_t v = 0;
  if (in_bounds(fb, pos, 2)) memcpy(&v, fb->base + pos, 2);
  return v;
}

static sl_fb_table_t table_at(sl_fb_t* fb, size_t pos) {
  sl_fb_table_t t = {0, 0, 0, 0};
  if (!in_bounds(fb, pos, 4)) return t;
  int32_t soffset;
  uint32_t raw = rd_u32(fb, pos);
  memcpy(&soffset, &raw, 4);
  int64_t vt = (int64_t)pos - (int64_t)soffset;
  if (vt < 0 || !in_bounds(fb, (size_t)vt, 4)) {
    fail(fb, "table has a vtable outside the file");
    return t;
  }
  uint16_t vt_size = rd_u16(fb, (size_t)vt);
  uint16_t tbl_size = rd_u16(fb, (size_t)vt + 2);
  if (vt_size < 4 || (vt_size & 1) || !in_bounds(fb, (size_t)vt, vt_size)) {
    fail(fb, "table has a malformed vtable");
    return t;
  }
  if (tbl_size < 4 || !in_bounds(fb, pos, tbl_size)) {
    fail(fb, "table extends past the end of the file");
    return t;
  }
  touch(fb, pos + tbl_size);
  touch(fb, (size_t)vt + vt_size);
  t.pos = pos;
  t.vtable = (size_t)vt;
  t.vtable_size = vt_size;
  t.table_size = tbl_size;
  return t;
}

sl_fb_table_t sl_fb_root(sl_fb_t* fb, const char identifier[4]) {
  sl_fb_table_t none = {0, 0, 0, 0};
  if (fb->size < 8) {
    fail(fb, "file is too short to be a .slite model");
    return none;
  }
  if (memcmp(fb->base + 4, identifier, 4) != 0) {
    fail(fb, "wrong file identifier (not a .slite model)");
    return none;
  }
  touch(fb, 8);
  return table_at(fb, rd_u32(fb, 0));
}

/* Offset of a field inside its table, 0 when absent; checks `size` bytes fit. */
static size_t field_pos(sl_fb_t* fb, const sl_fb_table_t* t, int field, size_t size) {
  if (t->pos == 0 || fb->error != NULL) return 0;
  size_t entry = 4 + 2 * (size_t)field;
  if (entry + 2 > t->vtable_size) return 0;
  uint16_t off = rd_u16(fb, t->vtable + entry);
  if (off == 0) return 0;
  if ((size_t)off + size > t->table_size) {
    fail(fb, "field lies outside its table");
    return 0;
  }
  return t->pos + off;
}

#define SCALAR_READER(NAME, TYPE)                                                  \
  TYPE NAME(sl_fb_t* fb, const sl_fb_table_t* t, int field, TYPE dflt) {           \
    size_t p = field_pos(fb, t, field, sizeof(TYPE));                              \
    if (p == 0) return dflt;                                                       \
    TYPE v;                                                                        \
    memcpy(&v, fb->base + p, sizeof(TYPE));                                        \
    return v;                                                                      \
  }
SCALAR_READER(sl_fb_u8, uint8_t)
SCALAR_READER(sl_fb_u16, uint16_t)
SCALAR_READER(sl_fb_i32, int32_t)
SCALAR_READER(sl_fb_u32, uint32_t)
SCALAR_READER(sl_fb_f32, float)

/* Follows the uoffset stored at a field; 0 when absent or broken. */
static size_t deref(sl_fb_t* fb, const sl_fb_table_t* t, int field) {
  size_t p = field_pos(fb, t, field, 4);
  if (p == 0) return 0;
  uint64_t target = (uint64_t)p + rd_u32(fb, p);
  if (target >= fb->size) {
    fail(fb, "reference points past the end of the file");
    return 0;
  }
  return (size_t)target;
}

sl_fb_table_t sl_fb_table(sl_fb_t* fb, const sl_fb_table_t* t, int field) {
  sl_fb_table_t none = {0, 0, 0, 0};
  size_t target = deref(fb, t, field);
  return target == 0 ? none : table_at(fb, target);
}

static sl_fb_vec_t vector_at(sl_fb_t* fb, size_t target, size_t elem_size) {
  sl_fb_vec_t v = {0, 0};
  uint32_t len = rd_u32(fb, target);
  if (fb->error != NULL) return v;
  if ((uint64_t)len * elem_size > fb->size - target - 4) {
    fail(fb, "vector extends past the end of the file");
    return v;
  }
  v.pos = target + 4;
  v.len = len;
  touch(fb, v.pos + len * elem_size);
  return v;
}

sl_fb_vec_t sl_fb_vector(sl_fb_t* fb, const sl_fb_table_t* t, int field, size_t elem_size) {
  sl_fb_vec_t none = {0, 0};
  size_t target = deref(fb, t, field);
  return target == 0 ? none : vector_at(fb, target, elem_size);
}

const char* sl_fb_string(sl_fb_t* fb, const sl_fb_table_t* t, int field) {
  size_t target = deref(fb, t, field);
  if (target == 0) return "";
  sl_fb_vec_t v = vector_at(fb, target, 1);
  if (fb->error != NULL) return "";
  if (!in_bounds(fb, v.pos, (size_t)v.len + 1) || fb->base[v.pos + v.len] != 0) {
    fail(fb, "string is not NUL-terminated inside the file");
    return "";
  }
  touch(fb, v.pos + v.len + 1);
  return (const char*)fb->base + v.pos;
}

int32_t sl_fb_vec_i32(sl_fb_t* fb, sl_fb_vec_t v, uint32_t i) {
  int32_t x = 0;
  if (i >= v.len) {
    fail(fb, "vector index out of range");
    return 0;
  }
  memcpy(&x, fb->base + v.pos + 4 * (size_t)i, 4);
  return x;
}

uint64_t sl_fb_vec_u64(sl_fb_t* fb, sl_fb_vec_t v, uint32_t i, uint32_t word_in_elem, size_t elem_size) {
  uint64_t x = 0;
  if (i >= v.len || (word_in_elem + 1) * 8 > elem_size) {
    fail(fb, "vector index out of range");
    return 0;
  }
  memcpy(&x, fb->base + v.pos + elem_size * i + 8 * (size_t)word_in_elem, 8);
  return x;
}

sl_fb_table_t sl_fb_vec_table(sl_fb_t* fb, sl_fb_vec_t v, uint32_t i) {
  sl_fb_table_t none = {0, 0, 0, 0};
  if (i >= v.len) {
    fail(fb, "vector index out of range");
    return none;
  }
  size_t p = v.pos + 4 * (size_t)i;
  uint64_t target = (uint64_t)p + rd_u32(fb, p);
  if (target >= fb->size) {
    fail(fb, "reference points past the end of the file");
    return none;
  }
  return table_at(fb, (size_t)target);
}
