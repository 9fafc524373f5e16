/* A small bounds-checked FlatBuffers reader (flatcc cannot be installed here).
 * Every read is checked against the buffer; the first failure is latched in
 * `error` and later reads return zero values, so callers check once per object. */
#ifndef SL_FB_READER_H
#define SL_FB_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const uint8_t* base;
  size_t size;
  const char* error; /* NULL while every read has been in bounds */
  size_t end;        /* one past the last byte of any table, vtable, vector or string read */
} sl_fb_t;

typedef struct {
  size_t pos; /* 0 = absent table */
  size_t vtable;
  uint16_t vtable_size;
  uint16_t table_size;
} sl_fb_table_t;

typedef struct {
  size_t pos; /* first element */
  uint32_t len;
} sl_fb_vec_t;

void sl_fb_init(sl_fb_t* fb, const void* data, size_t size);
/* Root table, after checking the 4-byte file identifier. */
sl_fb_table_t sl_fb_root(sl_fb_t* fb, const char identifier[4]);

uint8_t sl_fb_u8(sl_fb_t* fb, const sl_fb_table_t* t, int field, uint8_t dflt);
uint16_t sl_fb_u16(sl_fb_t* fb, const sl_fb_table_t* t, int field, uint16_t dflt);
int32_t sl_fb_i32(sl_fb_t* fb, const sl_fb_table_t* t, int field, int32_t dflt);
uint32_t sl_fb_u32(sl_fb_t* fb, const sl_fb_table_t* t, int field, uint32_t dflt);
float sl_fb_f32(sl_fb_t* fb, const sl_fb_table_t* t, int field, float dflt);
/* Absent table: pos == 0. */
sl_fb_table_t sl_fb_table(sl_fb_t* fb, const sl_fb_table_t* t, int field);
/* Absent vector: len == 0. elem_size is checked against the buffer end. */
sl_fb_vec_t sl_fb_vector(sl_fb_t* fb, const sl_fb_table_t* t, int field, size_t elem_size);
/* NUL-terminated string inside the buffer; "" when absent. Only the terminator is checked: a NUL
 * inside merely shortens the string, and scanning for one would cost its length at every
 * reference (a long string shared by a million tables). */
const char* sl_fb_string(sl_fb_t* fb, const sl_fb_table_t* t, int field);

int32_t sl_fb_vec_i32(sl_fb_t* fb, sl_fb_vec_t v, uint32_t i);
uint64_t sl_fb_vec_u64(sl_fb_t* fb, sl_fb_vec_t v, uint32_t i, uint32_t word_in_elem, size_t elem_size);
sl_fb_table_t sl_fb_vec_table(sl_fb_t* fb, sl_fb_vec_t v, uint32_t i);

#endif
