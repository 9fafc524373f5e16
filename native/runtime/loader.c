/* Parses and verifies a .slite file into the runtime graph. Nothing in the file is
 * trusted: every index, size and shape is checked here or in an op's prepare. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* sparselite.h restates DType for cffi; each of its values must be the schema's. */
#define SAME_AS_SCHEMA(NAME, name, value) \
  _Static_assert(SL_DTYPE_##NAME == (value), "sl_dtype_t: SL_DTYPE_" #NAME " differs from the schema");
SL_SCHEMA_DTYPE_LIST(SAME_AS_SCHEMA)

#define MAX_TENSORS (1 << 20)
/* Hosts build a spec per graph input and output; real models have a handful, and this bound keeps
 * a small hostile file from costing seconds of host work before the first run. */
#define MAX_GRAPH_IO (1 << 16)
#define MAX_ELEMS ((size_t)1 << 31)

typedef struct {
  const uint8_t* data;
  size_t size;
} span_t;

typedef struct {
  sl_model_t* m;
  sl_fb_t fb;
  span_t* buffers;
  uint32_t num_buffers;
  int32_t* lists; /* the next free entry of the block that holds every tensor index list */
} loader_t;

static size_t dtype_size(sl_dtype_t t) {
  switch (t) {
    case SL_DTYPE_BOOL: return 1;
    case SL_DTYPE_FLOAT16: case SL_DTYPE_UINT16: return 2;
    case SL_DTYPE_FLOAT32: case SL_DTYPE_INT32: case SL_DTYPE_UINT32: return 4;
    case SL_DTYPE_INT64: return 8;
  }
  return 0;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15), exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
  float v;
  if (exp == 0) v = ldexpf((float)man, -24);
  else if (exp == 31) v = man ? NAN : INFINITY;
  else v = ldexpf((float)(man | 0x400u), (int)exp - 25);
  return sign ? -v : v;
}

/* count * each, or SIZE_MAX when that overflows (32-bit builds): no buffer holds that many
 * bytes and no allocation fits it, so the caller fails cleanly instead of wrapping. */
static size_t bytes_of(size_t count, size_t each) {
  size_t n;
  return sl_size_mul(count, each, &n) ? n : SIZE_MAX;
}

static sl_status_t fb_error(loader_t* L, const char* what, int32_t index) {
  if (index >= 0)
    return sl_fail(L->m, SL_ERROR_INVALID_MODEL, "invalid model: %s %d: %s", what, index, L->fb.error);
  return sl_fail(L->m, SL_ERROR_INVALID_MODEL, "invalid model: %s: %s", what, L->fb.error);
}

/* A constant's bytes as fp32, used in place when the file is aligned, else widened/copied; NULL
 * when over the memory limit (the message is set). */
static const float* load_f32_values(loader_t* L, span_t src, sl_dtype_t storage, size_t count) {
  if (storage == SL_DTYPE_FLOAT32 && ((uintptr_t)src.data % 4) == 0) return (const float*)src.data;
  float* out = sl_model_alloc(L->m, bytes_of(count, sizeof(float)));
  if (out == NULL) return NULL;
  if (storage == SL_DTYPE_FLOAT32) {
    memcpy(out, src.data, count * sizeof(float));
  } else {
    for (size_t i = 0; i < count; i++) {
      uint16_t h;
      memcpy(&h, src.data + 2 * i, 2);
      out[i] = half_to_float(h);
    }
  }
  return out;
}

static sl_status_t load_buffers(loader_t* L, const sl_fb_table_t* root) {
  sl_fb_vec_t v = sl_fb_vector(&L->fb, root, SL_MODEL_BUFFERS, SL_BUFFER_SIZEOF);
  if (L->fb.error) return fb_error(L, "buffer table", -1);
  L->num_buffers = v.len;
  L->buffers = sl_model_alloc(L->m, (v.len + 1) * sizeof(span_t));
  if (L->buffers == NULL) return SL_ERROR_OUT_OF_MEMORY;
  for (uint32_t i = 0; i < v.len; i++) {
    uint64_t off = sl_fb_vec_u64(&L->fb, v, i, SL_BUFFER_OFFSETOF_OFFSET / 8, SL_BUFFER_SIZEOF);
    uint64_t size = sl_fb_vec_u64(&L->fb, v, i, SL_BUFFER_OFFSETOF_SIZE / 8, SL_BUFFER_SIZEOF);
    if (off % SL_ALIGN != 0)
      return sl_fail(L->m, SL_ERROR_INVALID_MODEL,
                     "invalid model: buffer %u starts at offset %llu, not a multiple of %u", i,
                     (unsigned long long)off, SL_ALIGN);
    if (off > L->m->file_size || size > L->m->file_size - off)
      return sl_fail(L->m, SL_ERROR_INVALID_MODEL,
                     "invalid model: buffer %u (offset %llu, %llu bytes) lies past the end of the "
                     "%zu-byte file (truncated?)",
                     i, (unsigned long long)off, (unsigned long long)size, L->m->file_size);
    L->buffers[i].data = L->m->file + off;
    L->buffers[i].size = (size_t)size;
  }
  return SL_OK;
}

typedef struct {
  size_t offset, size;
  uint32_t index;
} placed_t;

static int by_offset(const void* a, const void* b) {
  size_t x = ((const placed_t*)a)->offset, y = ((const placed_t*)b)->offset;
  return (x > y) - (x < y);
}

/* The data section, checked once every table, vector and string the loader and the ops' prepare
 * interpret has been read: each non-empty buffer starts at or after the last byte of all of them
 * (so no weight aliases structure that was interpreted), and no two non-empty buffers share a
 * byte. Unread parts of the FlatBuffer may hold anything. */
static sl_status_t check_buffer_layout(loader_t* L) {
  sl_model_t* m = L->m;
  placed_t* sorted = sl_model_alloc(m, ((size_t)L->num_buffers + 1) * sizeof(placed_t));
  if (sorted == NULL) return SL_ERROR_OUT_OF_MEMORY;
  size_t count = 0;
  for (uint32_t i = 0; i < L->num_buffers; i++) {
    if (L->buffers[i].size == 0) continue;
    sorted[count++] = (placed_t){(size_t)(L->buffers[i].data - m->file), L->buffers[i].size, i};
  }
  qsort(sorted, count, sizeof(placed_t), by_offset);
  sl_status_t st = SL_OK;
  for (size_t k = 0; k < count && st == SL_OK; k++) {
    const placed_t* b = &sorted[k];
    if (b->offset < L->fb.end)
      st = sl_fail(m, SL_ERROR_INVALID_MODEL,
                   "invalid model: buffer %u (offset %zu) overlaps the FlatBuffer, which extends to byte %zu: "
                   "data must follow it",
                   b->index, b->offset, L->fb.end);
    else if (k > 0 && b[-1].offset + b[-1].size > b->offset)
      st = sl_fail(m, SL_ERROR_INVALID_MODEL,
                   "invalid model: buffers %u (offset %zu, %zu bytes) and %u (offset %zu) overlap", b[-1].index,
                   b[-1].offset, b[-1].size, b->index, b->offset);
  }
  sl_model_release(m, sorted);
  return st;
}

static sl_status_t get_buffer(loader_t* L, int32_t tensor, const char* what, uint32_t index,
                              size_t expect_bytes, span_t* out) {
  if (index == 0 || index >= L->num_buffers)
    return sl_fail(L->m, SL_ERROR_INVALID_MODEL,
                   "invalid model: tensor %d: %s buffer index %u is out of range (1..%u)", tensor,
                   what, index, L->num_buffers ? L->num_buffers - 1 : 0);
  *out = L->buffers[index];
  if (out->size != expect_bytes)
    return sl_fail(L->m, SL_ERROR_INVALID_MODEL,
                   "invalid model: tensor %d: %s holds %zu bytes, its shape needs %zu", tensor, what,
                   out->size, expect_bytes);
  L->m->tensors[tensor].stored_bytes += out->size;
  return SL_OK;
}

static sl_status_t load_sparse(loader_t* L, int32_t ti, sl_tensor_t* t, const sl_fb_table_t* st,
                               uint32_t values_buffer, sl_dtype_t storage) {
  sl_model_t* m = L->m;
  uint32_t r = sl_fb_u8(&L->fb, st, SL_GROUP_SPARSITY_GROUP_SIZE, 1);
  uint32_t rp_buf = sl_fb_u32(&L->fb, st, SL_GROUP_SPARSITY_ROW_PTR, 0);
  uint32_t ci_buf = sl_fb_u32(&L->fb, st, SL_GROUP_SPARSITY_COL_IDX, 0);
  sl_dtype_t itype = (sl_dtype_t)sl_fb_u8(&L->fb, st, SL_GROUP_SPARSITY_INDEX_TYPE, SL_DTYPE_UINT16);
  uint32_t perm_buf = sl_fb_u32(&L->fb, st, SL_GROUP_SPARSITY_OUT_PERM, 0);
  if (L->fb.error) return fb_error(L, "tensor", ti);
  if (r != 1 && r != 2 && r != 4 && r != 8)
    return sl_fail(m, SL_ERROR_INVALID_MODEL,
                   "invalid model: tensor %d (%s): group size %u, expected 1, 2, 4 or 8", ti, t->name, r);
  if (t->dtype != SL_DTYPE_FLOAT32 || t->rank < 2)
    return sl_fail(m, SL_ERROR_INVALID_MODEL,
                   "invalid model: tensor %d (%s): group-sparse weights must be float32 of rank >= 2",
                   ti, t->name);
  if (itype != SL_DTYPE_UINT16 && itype != SL_DTYPE_UINT32)
    return sl_fail(m, SL_ERROR_INVALID_MODEL,
                   "invalid model: tensor %d (%s): column index type must be uint16 or uint32", ti,
                   t->name);
  sl_group_sparse_f32_t* s = sl_model_alloc(m, sizeof(*s));
  if (s == NULL) return SL_ERROR_OUT_OF_MEMORY;
  s->rows = (uint32_t)t->shape[0];
  s->cols = (uint32_t)(t->num_elems / (size_t)t->shape[0]);
  s->r = r;
  s->group_rows = (s->rows + r - 1) / r;

  span_t rp = {NULL, 0}, ci = {NULL, 0}, vals = {NULL, 0}; /* set by get_buffer; -O3 cannot tell */
  sl_status_t st_ = get_buffer(L, ti, "row pointer", rp_buf, bytes_of((size_t)s->group_rows + 1, 4), &rp);
  if (st_ != SL_OK) return st_;
  uint32_t* row_ptr = sl_model_alloc(m, ((size_t)s->group_rows + 1) * 4);
  if (row_ptr == NULL) return SL_ERROR_OUT_OF_MEMORY;
  memcpy(row_ptr, rp.data, ((size_t)s->group_rows + 1) * 4);
  if (row_ptr[0] != 0)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: tensor %d (%s): row pointer must start at 0",
                   ti, t->name);
  for (uint32_t g = 0; g < s->group_rows; g++) {
    if (row_ptr[g + 1] < row_ptr[g] || row_ptr[g + 1] - row_ptr[g] > s->cols)
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: tensor %d (%s): row pointer %u is decreasing or exceeds the %u "
                     "columns",
                     ti, t->name, g + 1, s->cols);
  }
  size_t nnz = row_ptr[s->group_rows];
  size_t isz = dtype_size(itype);
  if ((st_ = get_buffer(L, ti, "column index", ci_buf, bytes_of(nnz, isz), &ci)) != SL_OK) return st_;
  uint32_t* col_idx = sl_model_alloc(m, sl_size_sat_add(bytes_of(nnz, 4), 4));
  if (col_idx == NULL) return SL_ERROR_OUT_OF_MEMORY;
  /* Strictly increasing per group row: the sparse kernels and the densified copy would disagree
   * on a repeated column (one adds both values, the other keeps the last). */
  for (uint32_t g = 0; g < s->group_rows; g++) {
    for (size_t e = row_ptr[g]; e < row_ptr[g + 1]; e++) {
      uint32_t c = 0;
      if (isz == 2) {
        uint16_t c16;
        memcpy(&c16, ci.data + 2 * e, 2);
        c = c16;
      } else {
        memcpy(&c, ci.data + 4 * e, 4);
      }
      if (c >= s->cols)
        return sl_fail(m, SL_ERROR_INVALID_MODEL,
                       "invalid model: tensor %d (%s): column index %u at element %zu is out of range "
                       "(%u columns)",
                       ti, t->name, c, e, s->cols);
      if (e > row_ptr[g] && c <= col_idx[e - 1])
        return sl_fail(m, SL_ERROR_INVALID_MODEL,
                       "invalid model: tensor %d (%s): column index %u at element %zu (group row %u) follows %u: "
                       "indices must be strictly increasing within a row (no duplicates)",
                       ti, t->name, c, e, g, col_idx[e - 1]);
      col_idx[e] = c;
    }
  }
  size_t nvals = bytes_of(nnz, r);
  if ((st_ = get_buffer(L, ti, "values", values_buffer, bytes_of(nvals, dtype_size(storage)), &vals)) != SL_OK)
    return st_;
  s->values = load_f32_values(L, vals, storage, nvals);
  if (s->values == NULL) return SL_ERROR_OUT_OF_MEMORY;
  if (perm_buf != 0) {
    span_t pb = {NULL, 0};
    if ((st_ = get_buffer(L, ti, "output permutation", perm_buf, bytes_of(s->rows, 4), &pb)) != SL_OK)
      return st_;
    uint32_t* perm = sl_model_alloc(m, (size_t)s->rows * 4);
    uint8_t* seen = sl_model_alloc(m, s->rows);
    if (perm == NULL || seen == NULL) return SL_ERROR_OUT_OF_MEMORY;
    memcpy(perm, pb.data, (size_t)s->rows * 4);
    for (uint32_t i = 0; i < s->rows; i++) {
      if (perm[i] >= s->rows || seen[perm[i]])
        return sl_fail(m, SL_ERROR_INVALID_MODEL,
                       "invalid model: tensor %d (%s): output permutation is not a permutation", ti,
                       t->name);
      seen[perm[i]] = 1;
    }
    s->out_perm = perm;
  }
  s->row_ptr = row_ptr;
  s->col_idx = col_idx;
  t->sparse = s;
  return SL_OK;
}

static sl_status_t load_dims(loader_t* L, const sl_fb_table_t* root) {
  sl_model_t* m = L->m;
  sl_fb_vec_t v = sl_fb_vector(&L->fb, root, SL_MODEL_DIMS, 4);
  if (L->fb.error) return fb_error(L, "dynamic dimensions", -1);
  if (v.len > SL_MAX_DYNAMIC_DIMS)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: %u dynamic dimensions (at most %d)", v.len,
                   SL_MAX_DYNAMIC_DIMS);
  m->num_dims = (int32_t)v.len;
  m->dim_names = sl_model_alloc(m, (v.len + 1) * sizeof(const char*));
  m->dim_max = sl_model_alloc(m, (v.len + 1) * sizeof(int32_t));
  m->dim_value = sl_model_alloc(m, (v.len + 1) * sizeof(int32_t));
  m->dim_source = sl_model_alloc(m, (v.len + 1) * sizeof(int32_t));
  m->dim_offset = sl_model_alloc(m, (v.len + 1) * sizeof(int32_t));
  m->dim_divisor = sl_model_alloc(m, (v.len + 1) * sizeof(int32_t));
  if (m->dim_names == NULL || m->dim_max == NULL || m->dim_value == NULL || m->dim_source == NULL ||
      m->dim_offset == NULL || m->dim_divisor == NULL)
    return SL_ERROR_OUT_OF_MEMORY;
  for (uint32_t i = 0; i < v.len; i++) {
    sl_fb_table_t dt = sl_fb_vec_table(&L->fb, v, i);
    m->dim_names[i] = sl_fb_string(&L->fb, &dt, SL_DYNAMIC_DIM_NAME);
    m->dim_max[i] = m->dim_value[i] = sl_fb_i32(&L->fb, &dt, SL_DYNAMIC_DIM_MAX, 0);
    int32_t source = m->dim_source[i] = sl_fb_i32(&L->fb, &dt, SL_DYNAMIC_DIM_SOURCE, 0);
    int32_t offset = m->dim_offset[i] = sl_fb_i32(&L->fb, &dt, SL_DYNAMIC_DIM_OFFSET, 0);
    int32_t divisor = m->dim_divisor[i] = sl_fb_i32(&L->fb, &dt, SL_DYNAMIC_DIM_DIVISOR, 1);
    if (L->fb.error) return fb_error(L, "dynamic dimension", (int32_t)i);
    if (m->dim_max[i] < 1)
      return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: dynamic dimension %u (%s) has maximum %d", i,
                     m->dim_names[i], m->dim_max[i]);
    if (source == 0 && offset == 0 && divisor == 1) continue;
    /* Computed from an earlier dimension, so one pass in order computes them all; its maximum is the
     * value at the source's maximum (the formula does not decrease). */
    if (source < 1 || (uint32_t)source > i || divisor < 1 || divisor > SL_MAX_WINDOW || offset < -SL_MAX_WINDOW ||
        offset > SL_MAX_WINDOW || sl_dim_formula(m->dim_max[source - 1], offset, divisor) != m->dim_max[i])
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: dynamic dimension %u (%s) = (dimension %d + %d) / %d: it needs an earlier "
                     "dimension, a divisor 1..%d, an offset within +-%d, and the maximum the formula gives",
                     i, m->dim_names[i], source, offset, divisor, SL_MAX_WINDOW, SL_MAX_WINDOW);
  }
  return SL_OK;
}

/* Which axes follow a dynamic dimension. A constant may have one, after axes of size 1 only,
 * so that its first elements are the smaller tensor (position embeddings). */
static sl_status_t load_dynamic_dims(loader_t* L, int32_t ti, sl_tensor_t* t, sl_fb_vec_t v, bool is_const,
                                     bool is_sparse) {
  sl_model_t* m = L->m;
  if (v.len == 0) return SL_OK;
  if (v.len != (uint32_t)t->rank)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: tensor %d (%s): %u dynamic-dim entries for rank %d",
                   ti, t->name, v.len, t->rank);
  int32_t count = 0;
  bool ones_before = true; /* every axis before the first dynamic one has size 1 */
  for (uint32_t d = 0; d < v.len; d++) {
    uint8_t k = L->fb.base[v.pos + d];
    t->dynamic[d] = k;
    if (k == 0) {
      if (count == 0 && t->shape[d] != 1) ones_before = false;
      continue;
    }
    if (k > m->num_dims || t->shape[d] != m->dim_max[k - 1])
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: tensor %d (%s): axis %u refers to dynamic dimension %u, which is not one of "
                     "the %d declared or has another maximum",
                     ti, t->name, d, k, m->num_dims);
    count++;
    t->has_dynamic = true;
  }
  if (is_sparse && count > 0)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: tensor %d (%s): a group-sparse weight cannot be dynamic",
                   ti, t->name);
  if (is_const && count > 0 && (count > 1 || !ones_before))
    return sl_fail(m, SL_ERROR_INVALID_MODEL,
                   "invalid model: tensor %d (%s): a dynamic constant needs one dynamic axis after axes of size 1",
                   ti, t->name);
  return SL_OK;
}

static sl_status_t load_tensor(loader_t* L, int32_t ti, const sl_fb_table_t* tt) {
  sl_model_t* m = L->m;
  sl_tensor_t* t = &m->tensors[ti];
  t->name = sl_fb_string(&L->fb, tt, SL_TENSOR_NAME);
  uint8_t dtype = sl_fb_u8(&L->fb, tt, SL_TENSOR_DTYPE, SL_DTYPE_FLOAT32);
  sl_fb_vec_t shape = sl_fb_vector(&L->fb, tt, SL_TENSOR_SHAPE, 4);
  uint32_t buffer = sl_fb_u32(&L->fb, tt, SL_TENSOR_BUFFER, 0);
  uint8_t storage = sl_fb_u8(&L->fb, tt, SL_TENSOR_STORAGE, dtype);
  sl_fb_table_t sparsity = sl_fb_table(&L->fb, tt, SL_TENSOR_SPARSITY);
  sl_fb_vec_t dynamic = sl_fb_vector(&L->fb, tt, SL_TENSOR_DYNAMIC_DIMS, 1);
  if (L->fb.error) return fb_error(L, "tensor", ti);
  if (dtype_size((sl_dtype_t)dtype) == 0 || dtype == SL_DTYPE_FLOAT16 || dtype_size((sl_dtype_t)storage) == 0)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: tensor %d (%s): unknown dtype %u/%u", ti,
                   t->name, dtype, storage);
  if (shape.len > SL_MAX_RANK)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: tensor %d (%s): rank %u exceeds %d", ti,
                   t->name, shape.len, SL_MAX_RANK);
  t->dtype = (sl_dtype_t)dtype;
  t->rank = (int32_t)shape.len;
  t->num_elems = 1;
  for (uint32_t d = 0; d < shape.len; d++) {
    int32_t dim = sl_fb_vec_i32(&L->fb, shape, d);
    if (dim < 1 || (size_t)dim > MAX_ELEMS / t->num_elems)
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: tensor %d (%s): dimension %u is %d (must be 1..2^31 in total)", ti,
                     t->name, d, dim);
    t->shape[d] = dim;
    t->num_elems *= (size_t)dim;
  }
  memcpy(t->max_shape, t->shape, sizeof(t->shape));
  t->num_bytes = bytes_of(t->num_elems, dtype_size(t->dtype));
  if (t->num_bytes == SIZE_MAX)
    return sl_fail(m, SL_ERROR_UNSUPPORTED, "tensor %d (%s): %zu elements do not fit in this build's memory", ti,
                   t->name, t->num_elems);
  t->producer = -1;
  t->last_use = -1;
  t->in_place_of = -1;
  sl_status_t st = load_dynamic_dims(L, ti, t, dynamic, buffer != 0, sparsity.pos != 0);
  if (st != SL_OK) return st;
  if (buffer == 0) {
    if (sparsity.pos != 0)
      return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: tensor %d (%s): sparse tensor has no values",
                     ti, t->name);
    return SL_OK;
  }
  t->is_const = true;
  bool widen = t->dtype == SL_DTYPE_FLOAT32 && storage == SL_DTYPE_FLOAT16;
  if (storage != dtype && !widen)
    return sl_fail(m, SL_ERROR_INVALID_MODEL,
                   "invalid model: tensor %d (%s): storage dtype %u cannot hold dtype %u", ti, t->name,
                   storage, dtype);
  if (sparsity.pos != 0) return load_sparse(L, ti, t, &sparsity, buffer, (sl_dtype_t)storage);
  span_t b = {NULL, 0};
  st = get_buffer(L, ti, "data", buffer, t->num_elems * dtype_size((sl_dtype_t)storage), &b);
  if (st != SL_OK) return st;
  if (t->dtype == SL_DTYPE_FLOAT32) {
    t->data = (void*)load_f32_values(L, b, (sl_dtype_t)storage, t->num_elems);
    if (t->data == NULL) return SL_ERROR_OUT_OF_MEMORY;
  } else {
    t->data = (void*)b.data;
  }
  return SL_OK;
}

/* For profiles: the bytes an op's weights take in the file, the activations it reads and
 * writes, and the group size of its group-sparse weight (0 when dense). */
static void record_traffic(sl_model_t* m, sl_node_t* n) {
  for (int32_t k = 0; k < n->num_inputs; k++) {
    const sl_tensor_t* t = sl_in(m, n, k);
    if (t == NULL) continue;
    if (t->is_const) {
      n->weight_bytes += t->stored_bytes;
      if (t->sparse != NULL) n->group_size = t->sparse->r;
    } else {
      n->activation_bytes += t->num_bytes;
    }
  }
  for (int32_t k = 0; k < n->num_outputs; k++) n->activation_bytes += sl_out(m, n, k)->num_bytes;
}

static sl_status_t check_dynamic(sl_model_t* m, const sl_node_t* n) {
  const sl_tensor_t* t = sl_node_dynamic_tensor(m, n);
  if (t == NULL || sl_op_table[n->type]->resize != NULL) return SL_OK;
  return sl_fail(m, SL_ERROR_UNSUPPORTED,
                 "operator %d (%s): %s does not support dynamic dimensions, but tensor %s has one (re-convert "
                 "with a fixed shape)",
                 (int)(n - m->nodes), n->name, sl_op_table[n->type]->name, t->name);
}

/* Every tensor index list (the graph's inputs and outputs, each operator's) lives in one block:
 * a block per operator would take more memory than its lists. */
static sl_status_t alloc_index_lists(loader_t* L, const sl_fb_table_t* root, sl_fb_vec_t ops) {
  size_t total = sl_size_sat_add(sl_fb_vector(&L->fb, root, SL_MODEL_INPUTS, 4).len,
                                 sl_fb_vector(&L->fb, root, SL_MODEL_OUTPUTS, 4).len);
  if (L->fb.error) return fb_error(L, "graph inputs/outputs", -1);
  for (uint32_t i = 0; i < ops.len; i++) {
    sl_fb_table_t ot = sl_fb_vec_table(&L->fb, ops, i);
    total = sl_size_sat_add(total, sl_fb_vector(&L->fb, &ot, SL_OPERATOR_INPUTS, 4).len);
    total = sl_size_sat_add(total, sl_fb_vector(&L->fb, &ot, SL_OPERATOR_OUTPUTS, 4).len);
    if (L->fb.error) return fb_error(L, "operator", (int32_t)i);
  }
  L->lists = sl_model_alloc(L->m, bytes_of(total, sizeof(int32_t)));
  return L->lists != NULL ? SL_OK : SL_ERROR_OUT_OF_MEMORY;
}

/* The vector's tensor indices, checked, into the next entries of L->lists. */
static sl_status_t read_index_list(loader_t* L, sl_fb_vec_t v, int32_t** out, const char* what,
                                   int32_t node, bool allow_absent) {
  sl_model_t* m = L->m;
  *out = L->lists;
  L->lists += v.len;
  for (uint32_t i = 0; i < v.len; i++) {
    int32_t idx = sl_fb_vec_i32(&L->fb, v, i);
    if ((idx < 0 && !(allow_absent && idx == -1)) || idx >= m->num_tensors)
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: %s %d: tensor index %d is out of range (0..%d)", what, node, idx,
                     m->num_tensors - 1);
    (*out)[i] = idx;
  }
  return SL_OK;
}

/* An op reads its options by its own table's field names, so the union's tag must name that
 * table, or be NONE with no table (every field at its default). */
static sl_status_t check_options(sl_model_t* m, int32_t ni, const sl_node_t* n, uint8_t tag) {
  const sl_op_def_t* def = sl_op_table[n->type];
  if (tag == SL_OPTIONS_NONE && n->options.pos != 0)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: operator %d (%s): %s has options without their type",
                   ni, n->name, def->name);
  if (tag == SL_OPTIONS_NONE || tag == def->options) return SL_OK;
  char unknown[32];
  const char* got = sl_options_type_name(tag);
  if (got == NULL) {
    snprintf(unknown, sizeof(unknown), "options type %u", tag);
    got = unknown;
  }
  const char* want = def->options == SL_OPTIONS_NONE ? "no options" : sl_options_type_name(def->options);
  return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: operator %d (%s): %s takes %s, got %s", ni, n->name,
                 def->name, want, got);
}

static sl_status_t load_operator(loader_t* L, int32_t ni, const sl_fb_table_t* ot) {
  sl_model_t* m = L->m;
  sl_node_t* n = &m->nodes[ni];
  n->fused_into = -1;
  n->type = sl_fb_u16(&L->fb, ot, SL_OPERATOR_TYPE, 0);
  n->version = sl_fb_u16(&L->fb, ot, SL_OPERATOR_VERSION, 1);
  n->name = sl_fb_string(&L->fb, ot, SL_OPERATOR_NAME);
  sl_fb_vec_t ins = sl_fb_vector(&L->fb, ot, SL_OPERATOR_INPUTS, 4);
  sl_fb_vec_t outs = sl_fb_vector(&L->fb, ot, SL_OPERATOR_OUTPUTS, 4);
  uint8_t options_type = sl_fb_u8(&L->fb, ot, SL_OPERATOR_OPTIONS_TYPE, SL_OPTIONS_NONE);
  n->options = sl_fb_table(&L->fb, ot, SL_OPERATOR_OPTIONS);
  if (L->fb.error) return fb_error(L, "operator", ni);
  if (n->type >= SL_OP_COUNT)
    return sl_fail(m, SL_ERROR_UNSUPPORTED,
                   "operator %d (%s) has type %u, which this runtime does not know (it reads types "
                   "0..%d): upgrade sparselite",
                   ni, n->name, n->type, SL_OP_COUNT - 1);
  const sl_op_def_t* def = sl_op_table[n->type];
  if (n->version != 1)
    return sl_fail(m, SL_ERROR_UNSUPPORTED,
                   "operator %d (%s): %s version %u is not supported (this runtime reads version 1)",
                   ni, n->name, def->name, n->version);
  if ((int32_t)ins.len < def->min_inputs || (def->max_inputs >= 0 && (int32_t)ins.len > def->max_inputs))
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: operator %d (%s): %s takes %d..%d inputs, got %u",
                   ni, n->name, def->name, def->min_inputs, def->max_inputs, ins.len);
  if (outs.len != 1)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: operator %d (%s): %s has %u outputs, expected 1",
                   ni, n->name, def->name, outs.len);
  sl_status_t st = check_options(m, ni, n, options_type);
  if (st != SL_OK) return st;
  n->num_inputs = (int32_t)ins.len;
  n->num_outputs = (int32_t)outs.len;
  st = read_index_list(L, ins, &n->inputs, "operator", ni, true);
  if (st == SL_OK) st = read_index_list(L, outs, &n->outputs, "operator", ni, false);
  if (st != SL_OK) return st;
  for (int32_t i = 0; i < n->num_inputs; i++) {
    sl_tensor_t* t = sl_in(m, n, i);
    if (t == NULL && i < def->min_inputs)
      return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: operator %d (%s): required input %d is absent", ni,
                     n->name, i);
    if (t == NULL) continue;
    if (!t->is_const && t->producer < 0 && !t->is_input)
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: operator %d (%s) reads tensor %d (%s) before any operator writes it",
                     ni, n->name, n->inputs[i], t->name);
    if (!t->is_const) t->last_use = ni;
  }
  for (int32_t i = 0; i < n->num_outputs; i++) {
    sl_tensor_t* t = sl_out(m, n, i);
    if (t->is_const || t->producer >= 0 || t->is_input)
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: operator %d (%s) writes tensor %d (%s), which is a constant, a graph "
                     "input or written twice",
                     ni, n->name, n->outputs[i], t->name);
    t->producer = ni;
  }
  return SL_OK;
}

static sl_status_t load_graph_io(loader_t* L, const sl_fb_table_t* root) {
  sl_model_t* m = L->m;
  sl_fb_vec_t ins = sl_fb_vector(&L->fb, root, SL_MODEL_INPUTS, 4);
  sl_fb_vec_t outs = sl_fb_vector(&L->fb, root, SL_MODEL_OUTPUTS, 4);
  if (L->fb.error) return fb_error(L, "graph inputs/outputs", -1);
  if (outs.len == 0) return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: the graph has no outputs");
  if (ins.len > MAX_GRAPH_IO || outs.len > MAX_GRAPH_IO)
    return sl_fail(m, SL_ERROR_UNSUPPORTED, "the graph has %u inputs and %u outputs; this runtime takes at most %d of each",
                   ins.len, outs.len, MAX_GRAPH_IO);
  m->num_inputs = (int32_t)ins.len;
  m->num_outputs = (int32_t)outs.len;
  sl_status_t st = read_index_list(L, ins, &m->inputs, "graph input", 0, false);
  if (st == SL_OK) st = read_index_list(L, outs, &m->outputs, "graph output", 0, false);
  if (st != SL_OK) return st;
  for (int32_t i = 0; i < m->num_inputs; i++) {
    sl_tensor_t* t = &m->tensors[m->inputs[i]];
    if (t->is_const || t->is_input)
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: graph input %d (%s) is a constant or listed twice", i, t->name);
    t->is_input = true;
    for (int32_t d = 0; d < t->rank; d++)
      if (t->dynamic[d] != 0 && m->dim_source[t->dynamic[d] - 1] != 0)
        return sl_fail(m, SL_ERROR_INVALID_MODEL,
                       "invalid model: graph input %d (%s): axis %d follows dimension %s, which is computed from "
                       "another (inputs give dimensions)", i, t->name, d, m->dim_names[t->dynamic[d] - 1]);
  }
  return SL_OK;
}

static sl_status_t check_outputs(sl_model_t* m) {
  for (int32_t i = 0; i < m->num_outputs; i++) {
    sl_tensor_t* t = &m->tensors[m->outputs[i]];
    if (t->producer < 0 && !t->is_input)
      return sl_fail(m, SL_ERROR_INVALID_MODEL,
                     "invalid model: graph output %d (%s) is not computed by any operator", i, t->name);
  }
  return SL_OK;
}

static sl_status_t check_metadata(loader_t* L, const sl_fb_table_t* root) {
  sl_fb_string(&L->fb, root, SL_MODEL_PRODUCER);
  sl_fb_string(&L->fb, root, SL_MODEL_SOURCE_FRAMEWORK);
  sl_fb_vec_t md = sl_fb_vector(&L->fb, root, SL_MODEL_METADATA, 4);
  for (uint32_t i = 0; i < md.len && !L->fb.error; i++) {
    sl_fb_table_t kv = sl_fb_vec_table(&L->fb, md, i);
    sl_fb_string(&L->fb, &kv, SL_KEY_VALUE_KEY);
    sl_fb_string(&L->fb, &kv, SL_KEY_VALUE_VALUE);
  }
  return L->fb.error ? fb_error(L, "metadata", -1) : SL_OK;
}

sl_status_t sl_load_graph(sl_model_t* m) {
  loader_t L;
  memset(&L, 0, sizeof(L));
  L.m = m;
  sl_fb_init(&L.fb, m->file, m->file_size);
  sl_fb_table_t root = sl_fb_root(&L.fb, SL_FILE_IDENTIFIER);
  if (L.fb.error) return fb_error(&L, "header", -1);
  uint32_t version = sl_fb_u32(&L.fb, &root, SL_MODEL_FORMAT_VERSION, 0);
  if (L.fb.error) return fb_error(&L, "header", -1);
  if (version == 0 || version > SL_FORMAT_VERSION)
    return sl_fail(m, SL_ERROR_UNSUPPORTED,
                   "model format version %u is not supported: this runtime reads version 1..%u "
                   "(upgrade sparselite, or re-convert the model)",
                   version, SL_FORMAT_VERSION);
  sl_status_t st = check_metadata(&L, &root);
  if (st == SL_OK) st = load_buffers(&L, &root);
  if (st == SL_OK) st = load_dims(&L, &root);
  if (st != SL_OK) return st;

  sl_fb_vec_t tensors = sl_fb_vector(&L.fb, &root, SL_MODEL_TENSORS, 4);
  sl_fb_vec_t ops = sl_fb_vector(&L.fb, &root, SL_MODEL_OPERATORS, 4);
  if (L.fb.error) return fb_error(&L, "graph", -1);
  if (tensors.len > MAX_TENSORS || ops.len > MAX_TENSORS)
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: too many tensors or operators");
  m->num_tensors = (int32_t)tensors.len;
  m->num_nodes = (int32_t)ops.len;
  m->tensors = sl_model_alloc(m, ((size_t)tensors.len + 1) * sizeof(sl_tensor_t));
  m->nodes = sl_model_alloc(m, ((size_t)ops.len + 1) * sizeof(sl_node_t));
  if (m->tensors == NULL || m->nodes == NULL) return SL_ERROR_OUT_OF_MEMORY;
  for (uint32_t i = 0; i < tensors.len; i++) {
    sl_fb_table_t tt = sl_fb_vec_table(&L.fb, tensors, i);
    if (L.fb.error) return fb_error(&L, "tensor", (int32_t)i);
    if ((st = load_tensor(&L, (int32_t)i, &tt)) != SL_OK) return st;
  }
  if ((st = alloc_index_lists(&L, &root, ops)) != SL_OK) return st;
  if ((st = load_graph_io(&L, &root)) != SL_OK) return st;
  for (uint32_t i = 0; i < ops.len; i++) {
    sl_fb_table_t ot = sl_fb_vec_table(&L.fb, ops, i);
    if (L.fb.error) return fb_error(&L, "operator", (int32_t)i);
    if ((st = load_operator(&L, (int32_t)i, &ot)) != SL_OK) return st;
  }
  if ((st = check_outputs(m)) != SL_OK) return st;
  for (int32_t i = 0; i < m->num_nodes; i++) {
    sl_node_t* n = &m->nodes[i];
    if ((st = check_dynamic(m, n)) != SL_OK) return st;
    if ((st = sl_op_table[n->type]->prepare(m, n, &L.fb)) != SL_OK) return st;
    if (L.fb.error) return fb_error(&L, "operator options", i);
    record_traffic(m, n);
  }
  if ((st = check_buffer_layout(&L)) != SL_OK) return st;
  /* Fused blocks run in fp32: fp16 keeps the layers apart, each in fp16. */
  if (m->fuse != 0 && !sl_op_fp16(m) && (st = sl_fuse_blocks(m, &L.fb)) != SL_OK) return st;
  if (sl_op_fp16(m) && (st = sl_plan_halves(m)) != SL_OK) return st;
  m->fb = L.fb;
  return SL_OK;
}
