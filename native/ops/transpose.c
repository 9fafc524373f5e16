/* TRANSPOSE of any dtype: output dimension d is input dimension perm[d]; and sl_transpose_2d for
 * other ops. Prepare drops size-1 dimensions and merges output dimensions that are also adjacent, in
 * order, in the input: NCHW -> NHWC becomes [C][HW] -> [HW][C] per image. Then either the last
 * dimension stays last and runs of it are copied, or (float32) the output's last dimension and the
 * input's contiguous one span 2-D slices, transposed in cache-sized tiles of 4 x 4 vector transposes
 * (walked so the side whose rows would share L1 sets streams);
 * the remaining dimensions index the slices. Other dtypes gather each output row element by element. */
#include <string.h>

#include "op.h"

enum { TILE = 64, CHUNK = 16384 }; /* a task's tile side; elements per task of copied runs */

/* Slices of `rows` x `cols` floats: out[c * out_ld + r] = in[r * in_ld + c], the slices at the
 * offsets the `outer` dimensions (last fastest) give. A task is a run of slices' row_tile x TILE tiles. */
typedef struct {
  const float* in;
  float* out;
  size_t rows, cols, in_ld, out_ld;
  size_t row_tile, row_tiles, col_tiles, slices, slices_per_task, tasks;
  bool columns_outer; /* a tile column by column: its input stays in L1 while output lines stream */
  int32_t outer;
  size_t outer_shape[SL_MAX_RANK], outer_in[SL_MAX_RANK], outer_out[SL_MAX_RANK];
} tiles_t;

/* L1 sets (64 lines of 64 bytes: 32 and 48 KB caches of 8 and 12 ways alike) that TILE rows `ld`
 * floats apart start in: 2048 channels, 8 KB apart, all in one. */
static size_t l1_sets(size_t ld) {
  uint64_t seen = 0;
  for (size_t r = 0; r < TILE; r++) seen |= UINT64_C(1) << (r * ld * sizeof(float) / 64 % 64);
  return (size_t)__builtin_popcountll(seen);
}

static void tiles_plan(tiles_t* t) {
  t->row_tile = t->cols < 4 ? TILE * TILE / 4 : TILE; /* narrow slices: tiles as long as a square's worth */
  t->row_tiles = (t->rows + t->row_tile - 1) / t->row_tile;
  t->col_tiles = (t->cols + TILE - 1) / TILE;
  /* Row by row, a tile's output lines wait in L1 for the next rows to fill them; where they would
   * share a few sets (out_ld a multiple of 512 floats: [C][49] -> [49][C] at C = 1024, 2048) they
   * are evicted half written, and the tile ran at 5 GB/s instead of 80 (Zen 5). Column by column the
   * input lines wait instead. */
  t->columns_outer = l1_sets(t->out_ld) < l1_sets(t->in_ld);
  t->slices = 1;
  for (int32_t d = 0; d < t->outer; d++) t->slices *= t->outer_shape[d];
  /* Small slices share a task, up to about one tile's worth of elements. */
  size_t per_slice = t->rows * t->cols;
  t->slices_per_task = per_slice == 0 || per_slice >= TILE * TILE ? 1 : TILE * TILE / per_slice;
  t->tasks = (t->slices + t->slices_per_task - 1) / t->slices_per_task * t->row_tiles * t->col_tiles;
}

/* GCC/clang generic vectors: SSE, NEON or WASM SIMD as the target has, plain code elsewhere. GCC
 * before 12 has __builtin_shuffle only, clang __builtin_shufflevector only. */
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
#if defined(__clang__)
#define SHUFFLE(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#else
#define SHUFFLE(a, b, i, j, k, l) __builtin_shuffle(a, b, (i32x4){i, j, k, l})
#endif

static inline f32x4 load4(const float* p) {
  f32x4 v;
  memcpy(&v, p, sizeof(v));
  return v;
}

static inline void store4(float* p, f32x4 v) { memcpy(p, &v, sizeof(v)); }

static inline void transpose_4x4(const float* in, size_t in_ld, float* out, size_t out_ld) {
  f32x4 a = load4(in), b = load4(in + in_ld), c = load4(in + 2 * in_ld), d = load4(in + 3 * in_ld);
  f32x4 ab_lo = SHUFFLE(a, b, 0, 4, 1, 5), cd_lo = SHUFFLE(c, d, 0, 4, 1, 5);
  f32x4 ab_hi = SHUFFLE(a, b, 2, 6, 3, 7), cd_hi = SHUFFLE(c, d, 2, 6, 3, 7);
  store4(out, SHUFFLE(ab_lo, cd_lo, 0, 1, 4, 5));
  store4(out + out_ld, SHUFFLE(ab_lo, cd_lo, 2, 3, 6, 7));
  store4(out + 2 * out_ld, SHUFFLE(ab_hi, cd_hi, 0, 1, 4, 5));
  store4(out + 3 * out_ld, SHUFFLE(ab_hi, cd_hi, 2, 3, 6, 7));
}

/* C < 4 columns read as consecutive rows (an NHWC image's channels): the constant interleave is
 * one the compiler vectorizes with shuffles, where the 4 x 4 tiles below would not apply. */
static inline __attribute__((always_inline)) void deinterleave(const int C, const float* restrict in,
                                                               float* restrict out, size_t out_ld, size_t rows) {
  for (size_t r = 0; r < rows; r++)
    for (int c = 0; c < C; c++) out[c * out_ld + r] = in[r * C + c];
}

/* One tile (rows <= row_tile, cols <= TILE): 4 x 4 transposes along input rows (each output line
 * filled by the next rows while it waits in L1), or along its columns (the input tile waiting). */
static void transpose_tile(const float* in, size_t in_ld, float* out, size_t out_ld, size_t rows, size_t cols,
                           bool columns_outer) {
  if (cols == 2 && in_ld == 2) {
    deinterleave(2, in, out, out_ld, rows);
    return;
  }
  if (cols == 3 && in_ld == 3) {
    deinterleave(3, in, out, out_ld, rows);
    return;
  }
  const size_t whole_rows = rows / 4 * 4, whole_cols = cols / 4 * 4;
  if (columns_outer) {
    for (size_t c = 0; c < whole_cols; c += 4)
      for (size_t r = 0; r < whole_rows; r += 4) transpose_4x4(in + r * in_ld + c, in_ld, out + c * out_ld + r, out_ld);
  } else {
    for (size_t r = 0; r < whole_rows; r += 4)
      for (size_t c = 0; c < whole_cols; c += 4) transpose_4x4(in + r * in_ld + c, in_ld, out + c * out_ld + r, out_ld);
  }
  for (size_t c = whole_cols; c < cols; c++)
    for (size_t r = 0; r < whole_rows; r++) out[c * out_ld + r] = in[r * in_ld + c];
  for (size_t r = whole_rows; r < rows; r++)
    for (size_t c = 0; c < cols; c++) out[c * out_ld + r] = in[r * in_ld + c];
}

static void tiles_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const tiles_t* t = ctx;
  size_t tiles = t->row_tiles * t->col_tiles, tile = task % tiles;
  size_t r0 = tile / t->col_tiles * t->row_tile, c0 = tile % t->col_tiles * TILE;
  size_t rows = t->rows - r0 < t->row_tile ? t->rows - r0 : t->row_tile, cols = t->cols - c0 < TILE ? t->cols - c0 : TILE;
  size_t s0 = task / tiles * t->slices_per_task;
  size_t s1 = s0 + t->slices_per_task < t->slices ? s0 + t->slices_per_task : t->slices;
  for (size_t s = s0; s < s1; s++) {
    size_t in = r0 * t->in_ld + c0, out = c0 * t->out_ld + r0, rest = s;
    for (int32_t d = t->outer - 1; d >= 0; d--) {
      size_t i = rest % t->outer_shape[d];
      rest /= t->outer_shape[d];
      in += i * t->outer_in[d];
      out += i * t->outer_out[d];
    }
    transpose_tile(t->in + in, t->in_ld, t->out + out, t->out_ld, rows, cols, t->columns_outer);
  }
}

void sl_transpose_2d(const sl_model_t* m, const float* in, size_t in_ld, float* out, size_t out_ld, size_t rows,
                     size_t cols) {
  tiles_t t = {.in = in, .out = out, .rows = rows, .cols = cols, .in_ld = in_ld, .out_ld = out_ld, .outer = 0};
  tiles_plan(&t);
  sl_parallel_for(m, t.tasks, tiles_task, &t);
}

typedef struct {
  int32_t rank; /* after merging; the output is dense */
  size_t shape[SL_MAX_RANK], in_stride[SL_MAX_RANK];
  size_t elem;   /* bytes per element */
  bool copy;     /* the last dimension stays last: copy runs of it */
  bool tiled;    /* otherwise, float32: tiles (without their pointers); other dtypes gather rows */
  tiles_t tiles;
} transpose_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  transpose_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (x->sparse != NULL || x->dtype != y->dtype)
    return sl_node_fail(m, n, "input (%s) and output (%s) must have one dense dtype", x->name, y->name);
  sl_fb_vec_t perm = sl_transpose_options_perm(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (perm.len != (uint32_t)x->rank)
    return sl_node_fail(m, n, "perm has %u entries for an input of rank %d", perm.len, x->rank);
  size_t stride[SL_MAX_RANK], s = 1;
  for (int32_t d = x->rank - 1; d >= 0; d--) {
    stride[d] = s;
    s *= (size_t)x->shape[d];
  }
  bool seen[SL_MAX_RANK] = {false};
  int32_t out_shape[SL_MAX_RANK];
  p->rank = 0;
  for (int32_t d = 0; d < x->rank; d++) {
    int32_t from = sl_fb_vec_i32(fb, perm, (uint32_t)d);
    if (from < 0 || from >= x->rank || seen[from])
      return sl_node_fail(m, n, "perm is not a permutation of 0..%d", x->rank - 1);
    seen[from] = true;
    size_t size = (size_t)x->shape[from];
    out_shape[d] = x->shape[from];
    if (size == 1) continue;
    int32_t k = p->rank - 1;
    if (k >= 0 && p->in_stride[k] == stride[from] * size) { /* follows the previous one in the input too */
      p->shape[k] *= size;
      p->in_stride[k] = stride[from];
    } else {
      p->shape[++k] = size;
      p->in_stride[k] = stride[from];
      p->rank++;
    }
  }
  sl_status_t st = sl_expect_shape(m, n, y, "output", x->rank, out_shape);
  if (st != SL_OK) return st;
  if (p->rank == 0) { /* one element */
    p->rank = 1;
    p->shape[0] = p->in_stride[0] = 1;
  }
  p->elem = x->num_bytes / x->num_elems;
  p->copy = p->in_stride[p->rank - 1] == 1;
  p->tiled = !p->copy && x->dtype == SL_DTYPE_FLOAT32;
  if (!p->tiled) return SL_OK;
  /* Slices: rows along the output's last dimension, columns along the one read contiguously. */
  size_t out_stride[SL_MAX_RANK];
  out_stride[p->rank - 1] = 1;
  for (int32_t d = p->rank - 2; d >= 0; d--) out_stride[d] = out_stride[d + 1] * p->shape[d + 1];
  tiles_t* t = &p->tiles;
  t->outer = 0;
  for (int32_t d = 0; d < p->rank - 1; d++) {
    if (p->in_stride[d] == 1) {
      t->cols = p->shape[d];
      t->out_ld = out_stride[d];
    } else {
      t->outer_shape[t->outer] = p->shape[d];
      t->outer_in[t->outer] = p->in_stride[d];
      t->outer_out[t->outer++] = out_stride[d];
    }
  }
  t->rows = p->shape[p->rank - 1];
  t->in_ld = p->in_stride[p->rank - 1];
  tiles_plan(t);
  return SL_OK;
}

typedef struct {
  const transpose_params_t* p;
  const char* x;
  char* y;
  size_t run, units, per_task; /* output rows of `run` elements, per_task of them per task */
} rows_job_t;

/* n elements of elem bytes, `stride` elements apart in src, to consecutive dst. */
static void gather_row(char* dst, const char* src, size_t n, size_t stride, size_t elem) {
  switch (elem) { /* constant sizes, so each memcpy is one load and store */
    case 1: for (size_t i = 0; i < n; i++) dst[i] = src[i * stride]; break;
    case 2: for (size_t i = 0; i < n; i++) memcpy(dst + 2 * i, src + 2 * i * stride, 2); break;
    case 4: for (size_t i = 0; i < n; i++) memcpy(dst + 4 * i, src + 4 * i * stride, 4); break;
    default: for (size_t i = 0; i < n; i++) memcpy(dst + 8 * i, src + 8 * i * stride, 8); break;
  }
}

static void rows_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const rows_job_t* j = ctx;
  const transpose_params_t* p = j->p;
  size_t u0 = task * j->per_task, u1 = u0 + j->per_task < j->units ? u0 + j->per_task : j->units;
  int32_t idx[SL_MAX_RANK] = {0};
  size_t in = 0, rest = u0;
  for (int32_t d = p->rank - 2; d >= 0; d--) {
    idx[d] = (int32_t)(rest % p->shape[d]);
    rest /= p->shape[d];
    in += (size_t)idx[d] * p->in_stride[d];
  }
  size_t elem = p->elem, row_bytes = j->run * elem, stride = p->in_stride[p->rank - 1];
  for (size_t u = u0; u < u1; u++) {
    if (p->copy)
      memcpy(j->y + u * row_bytes, j->x + in * elem, row_bytes);
    else
      gather_row(j->y + u * row_bytes, j->x + in * elem, j->run, stride, elem);
    /* Odometer over the output's leading dimensions, keeping the input offset in step. */
    for (int32_t d = p->rank - 2; d >= 0; d--) {
      in += p->in_stride[d];
      if ((size_t)++idx[d] < p->shape[d]) break;
      in -= p->in_stride[d] * p->shape[d];
      idx[d] = 0;
    }
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const transpose_params_t* p = n->params;
  void* x = sl_in(m, n, 0)->data;
  void* y = sl_out(m, n, 0)->data;
  if (!p->tiled) {
    size_t run = p->shape[p->rank - 1];
    rows_job_t j = {p, x, y, run, sl_out(m, n, 0)->num_elems / run, run >= CHUNK ? 1 : CHUNK / run};
    sl_parallel_for(m, (j.units + j.per_task - 1) / j.per_task, rows_task, &j);
  } else {
    tiles_t t = p->tiles;
    t.in = x;
    t.out = y;
    sl_parallel_for(m, t.tasks, tiles_task, &t);
  }
}

const sl_op_def_t sl_op_transpose = {SL_OP_SCHEMA(TRANSPOSE), 1, 1, prepare, run, prepare};
