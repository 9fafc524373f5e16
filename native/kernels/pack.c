/* Repacking of the file's weights into the streams the microkernels read. */
#include <stdbool.h>
#include <string.h>

#include "kernels.h"

/* Rows of file group g that exist (the last group may be short). */
static uint32_t valid_rows(const sl_group_sparse_f32_t* w, uint32_t g) {
  uint32_t first = g * w->r;
  return w->rows - first < w->r ? w->rows - first : w->r;
}

/* Whether stored element e has a nonzero among group rows [j0, j0 + n). */
static bool any_nonzero(const sl_group_sparse_f32_t* w, uint32_t e, uint32_t j0, uint32_t n) {
  for (uint32_t j = j0; j < j0 + n; j++)
    if (w->values[(size_t)e * w->r + j] != 0.0f) return true;
  return false;
}

/* Calls visit(block rows [j0, j0 + n) of group g) for every kernel block, then
 * every tail row (n = 1), in stream order. Blocks drop columns that are zero
 * in all their rows: splitting a file group can leave such columns. */
typedef void (*visit_fn)(void* ctx, const sl_group_sparse_f32_t* w, uint32_t g, uint32_t j0, uint32_t n);

static void walk(const sl_group_sparse_f32_t* w, uint32_t r, visit_fn visit, void* ctx) {
  for (uint32_t g = 0; g < w->group_rows; g++)
    for (uint32_t j0 = 0; j0 + r <= valid_rows(w, g); j0 += r) visit(ctx, w, g, j0, r);
  for (uint32_t g = 0; g < w->group_rows; g++) {
    uint32_t v = valid_rows(w, g);
    for (uint32_t j = v - v % r; j < v; j++) visit(ctx, w, g, j, 1);
  }
}

typedef struct {
  size_t blocks, nonzeros, values;
} counts_t;

static void count_block(void* ctx, const sl_group_sparse_f32_t* w, uint32_t g, uint32_t j0, uint32_t n) {
  counts_t* c = ctx;
  c->blocks++;
  c->values += n;
  for (uint32_t e = w->row_ptr[g]; e < w->row_ptr[g + 1]; e++) {
    if (!any_nonzero(w, e, j0, n)) continue;
    c->nonzeros++;
    c->values += n;
  }
}

void sl_spmm_pack_count(const sl_group_sparse_f32_t* w, uint32_t r, uint32_t* blocks, uint32_t* tail_rows,
                        size_t* nonzeros, size_t* values) {
  counts_t c = {0, 0, 0};
  walk(w, r, count_block, &c);
  uint32_t full = 0;
  for (uint32_t g = 0; g < w->group_rows; g++) full += valid_rows(w, g) / r;
  *blocks = full;
  *tail_rows = (uint32_t)c.blocks - full;
  *nonzeros = c.nonzeros;
  *values = c.values;
}

typedef struct {
  sl_spmm_packed_t* p;
  const float* bias;
  size_t x_stride, block, nz, value, row;
} fill_t;

static void fill_block(void* ctx, const sl_group_sparse_f32_t* w, uint32_t g, uint32_t j0, uint32_t n) {
  fill_t* f = ctx;
  sl_spmm_packed_t* p = f->p;
  p->nz_start[f->block++] = (uint32_t)f->nz;
  for (uint32_t j = j0; j < j0 + n; j++) {
    uint32_t row = g * w->r + j;
    uint32_t oc = w->out_perm != NULL ? w->out_perm[row] : row;
    p->out_row[f->row++] = oc;
    p->values[f->value++] = f->bias != NULL ? f->bias[oc] : 0.0f;
  }
  for (uint32_t e = w->row_ptr[g]; e < w->row_ptr[g + 1]; e++) {
    if (!any_nonzero(w, e, j0, n)) continue;
    p->x_offset[f->nz++] = (uint32_t)(w->col_idx[e] * f->x_stride);
    for (uint32_t j = j0; j < j0 + n; j++) p->values[f->value++] = w->values[(size_t)e * w->r + j];
  }
  p->nz_start[f->block] = (uint32_t)f->nz;
}

void sl_spmm_pack(const sl_group_sparse_f32_t* w, const float* bias, size_t x_stride, sl_spmm_packed_t* p) {
  fill_t f = {p, bias, x_stride, 0, 0, 0, 0};
  p->nz_start[0] = 0;
  walk(w, p->r, fill_block, &f);
}

size_t sl_gemm_pack_size(size_t rows, size_t k, uint32_t panel_rows) {
  size_t panels = (rows + panel_rows - 1) / panel_rows;
  return panels * panel_rows * (k + 1);
}

void sl_gemm_pack(const float* w, const float* bias, size_t rows, size_t k, uint32_t panel_rows, float* panels) {
  memset(panels, 0, sl_gemm_pack_size(rows, k, panel_rows) * sizeof(float));
  for (size_t r0 = 0; r0 < rows; r0 += panel_rows) {
    float* panel = panels + (r0 / panel_rows) * panel_rows * (k + 1);
    for (size_t j = 0; j < panel_rows && r0 + j < rows; j++) {
      panel[j] = bias != NULL ? bias[r0 + j] : 0.0f;
      for (size_t c = 0; c < k; c++) panel[panel_rows + c * panel_rows + j] = w[(r0 + j) * k + c];
    }
  }
}

void sl_bilinear_pack(size_t n, const int32_t* lo, const int32_t* hi, const float* frac, int32_t* blocks_base,
                      int32_t* blocks_lo, int32_t* blocks_hi, float* blocks_frac) {
  for (size_t b = 0; b * SL_BILINEAR_BLOCK < n; b++) {
    const size_t i0 = b * SL_BILINEAR_BLOCK, i1 = i0 + SL_BILINEAR_BLOCK < n ? i0 + SL_BILINEAR_BLOCK : n;
    int32_t first = lo[i0], last = hi[i0];
    for (size_t i = i0; i < i1; i++) {
      if (lo[i] < first) first = lo[i];
      if (hi[i] < first) first = hi[i];
      if (lo[i] > last) last = lo[i];
      if (hi[i] > last) last = hi[i];
    }
    blocks_base[b] = last - first < SL_BILINEAR_BLOCK ? first : -1;
    const int32_t shift = blocks_base[b] >= 0 ? first : 0;
    for (size_t i = i0; i < i0 + SL_BILINEAR_BLOCK; i++) {
      blocks_lo[i] = i < i1 ? lo[i] - shift : 0;
      blocks_hi[i] = i < i1 ? hi[i] - shift : 0;
      blocks_frac[i] = i < i1 ? frac[i] : 0.0f;
    }
  }
}

void sl_group_sparse_densify(const sl_group_sparse_f32_t* w, float* dense) {
  memset(dense, 0, (size_t)w->rows * w->cols * sizeof(float));
  for (uint32_t g = 0; g < w->group_rows; g++)
    for (uint32_t j = 0; j < valid_rows(w, g); j++) {
      uint32_t row = g * w->r + j;
      uint32_t oc = w->out_perm != NULL ? w->out_perm[row] : row;
      for (uint32_t e = w->row_ptr[g]; e < w->row_ptr[g + 1]; e++)
        dense[(size_t)oc * w->cols + w->col_idx[e]] = w->values[(size_t)e * w->r + j];
    }
}

/* fp16 packing: the f32 packs' floats as halves. Bit arithmetic, so every ISA rounds alike. */
sl_f16 sl_f16_from_f32(float v) {
  uint32_t b;
  memcpy(&b, &v, sizeof(b));
  const uint32_t sign = (b >> 16) & 0x8000u, abs = b & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return (sl_f16)(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u)); /* inf, NaN */
  if (abs >= 0x477FF000u) return (sl_f16)(sign | 0x7C00u); /* rounds past 65504 */
  if (abs < 0x38800000u) { /* below 2^-14: a subnormal half, or zero */
    if (abs < 0x33000000u) return (sl_f16)sign; /* at most half the smallest subnormal */
    const uint32_t shift = 126u - (abs >> 23), mant = (abs & 0x7FFFFFu) | 0x800000u; /* h = mant / 2^shift */
    const uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    return (sl_f16)(sign | (h + (rest > half || (rest == half && (h & 1u)))));
  }
  const uint32_t h = ((abs - 0x38000000u) >> 13), rest = abs & 0x1FFFu;
  return (sl_f16)(sign | (h + (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))));
}

float sl_f16_to_f32(sl_f16 h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
  uint32_t b;
  if (e == 0x1F) b = sign | 0x7F800000u | (m << 13);
  else if (e != 0) b = sign | ((e + 112u) << 23) | (m << 13);
  else if (m == 0) b = sign;
  else { /* subnormal: normalise */
    uint32_t shift = 0;
    while (!(m << shift & 0x400u)) shift++;
    b = sign | ((113u - shift) << 23) | (((m << shift) & 0x3FFu) << 13);
  }
  float v;
  memcpy(&v, &b, sizeof(v));
  return v;
}

void sl_f16_from_f32_n(const float* x, sl_f16* y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = sl_f16_from_f32(x[i]);
}

void sl_f16_to_f32_n(const sl_f16* x, float* y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = sl_f16_to_f32(x[i]);
}
