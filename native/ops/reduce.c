/* REDUCE: mean, sum, max or min of x over a set of axes (float32). Prepare drops axes of size 1
 * and merges neighbouring axes that are both reduced or both kept, so x is a few alternating
 * blocks. When the last block is reduced, each output reduces contiguous runs of it (several
 * independent partial results, which the compiler vectorizes); when it is kept, each output row
 * combines whole input rows elementwise. Outputs (or output rows) are split over the threads.
 * Max and min keep a NaN (as numpy and torch do); sums add runs of 1024 in float, then in double. */
#include <string.h>

#include "op.h"

enum { LANES = 8, BLOCK = 1024, TASK_WORK = 1 << 16 }; /* partial results; sum run; inputs worth threads */

typedef struct {
  uint8_t kind;
  size_t inner;        /* the last merged block: a contiguous run of x */
  bool inner_reduced;  /* reduced (each output reduces runs) or kept (outputs come in rows of it) */
  int32_t nkept, nred; /* the other blocks: kept ones index outputs, reduced ones are summed over */
  size_t kept_size[SL_MAX_RANK], kept_stride[SL_MAX_RANK];
  size_t red_size[SL_MAX_RANK], red_stride[SL_MAX_RANK];
  size_t units, runs;  /* outputs (or output rows); runs of x per unit */
  size_t units_per_task, tasks;
  double count;        /* MEAN: elements per output (a division: * fl(1 / count) is biased) */
} reduce_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  reduce_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, x, "input", -1);
  if (st != SL_OK) return st;
  p->kind = sl_reduce_options_kind(fb, &n->options);
  sl_fb_vec_t axes = sl_reduce_options_axes(fb, &n->options);
  bool keep = sl_reduce_options_keep_dims(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (p->kind >= SL_REDUCE_KIND_COUNT) return sl_node_fail(m, n, "unknown reduction %u", p->kind);
  bool reduced[SL_MAX_RANK] = {false};
  if (axes.len > (uint32_t)x->rank)
    return sl_node_fail(m, n, "%u axes given for an input of rank %d", axes.len, x->rank);
  for (uint32_t i = 0; i < axes.len; i++) {
    int32_t a = sl_fb_vec_i32(fb, axes, i);
    if (a < -x->rank || a >= x->rank) return sl_node_fail(m, n, "axis %d is out of range for rank %d", a, x->rank);
    if (a < 0) a += x->rank;
    if (reduced[a]) return sl_node_fail(m, n, "axis %d is given twice", a);
    reduced[a] = true;
  }
  int32_t yshape[SL_MAX_RANK], yrank = 0;
  for (int32_t d = 0; d < x->rank; d++)
    if (!reduced[d] || keep) yshape[yrank++] = reduced[d] ? 1 : x->shape[d];
  if ((st = sl_expect_f32(m, n, y, "output", yrank)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", yrank, yshape)) != SL_OK) return st;

  /* Merge: blocks of consecutive axes with the same flag, size-1 axes dropped. */
  size_t size[SL_MAX_RANK];
  bool flag[SL_MAX_RANK];
  int32_t blocks = 0;
  size_t count = 1; /* elements per output: at most x's, which the loader bounds to 2^31 */
  for (int32_t d = 0; d < x->rank; d++) {
    if (x->shape[d] == 1) continue;
    if (reduced[d]) count *= (size_t)x->shape[d];
    if (blocks > 0 && flag[blocks - 1] == reduced[d]) {
      size[blocks - 1] *= (size_t)x->shape[d];
    } else {
      size[blocks] = (size_t)x->shape[d];
      flag[blocks++] = reduced[d];
    }
  }
  p->inner = blocks > 0 ? size[blocks - 1] : 1;
  p->inner_reduced = blocks > 0 && flag[blocks - 1];
  p->nkept = p->nred = 0;
  p->units = p->runs = 1;
  size_t stride = p->inner;
  for (int32_t b = blocks - 2; b >= 0; b--) {
    if (flag[b]) {
      p->red_size[p->nred] = size[b];
      p->red_stride[p->nred++] = stride;
      p->runs *= size[b];
    } else {
      p->kept_size[p->nkept] = size[b];
      p->kept_stride[p->nkept++] = stride;
      p->units *= size[b];
    }
    stride *= size[b];
  }
  p->count = (double)count;
  /* Large reductions: about four tasks per thread, over outputs (or output rows). */
  size_t tasks = p->units * p->runs * p->inner >= TASK_WORK ? sl_op_threads(m) * 4 : 1;
  p->units_per_task = (p->units + tasks - 1) / tasks;
  p->tasks = (p->units + p->units_per_task - 1) / p->units_per_task;
  return SL_OK;
}

/* v replaces acc when it is larger (smaller), or NaN: a NaN, once in acc, stays. Bitwise | (no
 * short circuit) lets the compiler vectorize the select. */
static inline float pick(uint8_t kind, float acc, float v) {
  bool take = (kind == SL_REDUCE_KIND_MAX ? v > acc : v < acc) | (v != v);
  return take ? v : acc;
}

/* GCC/clang generic vectors (SSE, NEON or WASM SIMD as the target has): the compiler leaves a
 * NaN-keeping select of scalars unvectorized. */
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

static inline f32x4 load4(const float* p) {
  f32x4 v;
  memcpy(&v, p, sizeof(v));
  return v;
}

static inline f32x4 pick4(uint8_t kind, f32x4 acc, f32x4 v) {
  i32x4 take = (kind == SL_REDUCE_KIND_MAX ? v > acc : v < acc) | (v != v);
  return (f32x4)(((i32x4)v & take) | ((i32x4)acc & ~take));
}

/* The max or min of a run, in two vectors of partial results. */
static float extreme_run(uint8_t kind, const float* x, size_t len) {
  float r = x[0];
  size_t i = 0;
  if (len >= 8) {
    f32x4 a = load4(x), b = load4(x + 4);
    for (i = 8; i + 8 <= len; i += 8) {
      a = pick4(kind, a, load4(x + i));
      b = pick4(kind, b, load4(x + i + 4));
    }
    float lanes[8];
    memcpy(lanes, &a, sizeof(a));
    memcpy(lanes + 4, &b, sizeof(b));
    for (int j = 0; j < 8; j++) r = pick(kind, r, lanes[j]);
  }
  for (; i < len; i++) r = pick(kind, r, x[i]);
  return r;
}

/* One run of x reduced to a partial result: the sum, or the max / min. */
static double reduce_run(uint8_t kind, const float* x, size_t len) {
  if (kind == SL_REDUCE_KIND_MAX || kind == SL_REDUCE_KIND_MIN) return extreme_run(kind, x, len);
  float acc[LANES];
  size_t i = 0;
  double total = 0.0;
  for (size_t start = 0; start < len; start += BLOCK) {
    size_t end = len - start < BLOCK ? len : start + BLOCK;
    memset(acc, 0, sizeof(acc));
    for (i = start; i + LANES <= end; i += LANES)
      for (int j = 0; j < LANES; j++) acc[j] += x[i + j];
    float s = 0.0f;
    for (; i < end; i++) s += x[i];
    for (int j = 0; j < LANES; j++) s += acc[j];
    total += s;
  }
  return total;
}

/* acc[i] = acc[i] (op) x[i] for a row. */
static void combine_row(uint8_t kind, float* acc, const float* x, size_t len) {
  if (kind == SL_REDUCE_KIND_MAX) {
    for (size_t i = 0; i < len; i++) acc[i] = pick(SL_REDUCE_KIND_MAX, acc[i], x[i]);
  } else if (kind == SL_REDUCE_KIND_MIN) {
    for (size_t i = 0; i < len; i++) acc[i] = pick(SL_REDUCE_KIND_MIN, acc[i], x[i]);
  } else {
    for (size_t i = 0; i < len; i++) acc[i] += x[i];
  }
}

typedef struct {
  const reduce_params_t* p;
  const float* x;
  float* y;
} job_t;

static void task(void* ctx, size_t t, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const reduce_params_t* p = j->p;
  size_t u0 = t * p->units_per_task, u1 = u0 + p->units_per_task < p->units ? u0 + p->units_per_task : p->units;
  bool sum = p->kind == SL_REDUCE_KIND_SUM || p->kind == SL_REDUCE_KIND_MEAN;
  bool mean = p->kind == SL_REDUCE_KIND_MEAN;
  for (size_t u = u0; u < u1; u++) {
    size_t base = 0, rest = u; /* kept blocks, innermost first */
    for (int32_t k = 0; k < p->nkept; k++) {
      base += rest % p->kept_size[k] * p->kept_stride[k];
      rest /= p->kept_size[k];
    }
    size_t idx[SL_MAX_RANK] = {0}, off = 0;
    if (p->inner_reduced) {
      double total = 0.0;
      for (size_t r = 0; r < p->runs; r++) {
        double v = reduce_run(p->kind, j->x + base + off, p->inner);
        total = r == 0 ? v : sum ? total + v : (double)pick(p->kind, (float)total, (float)v);
        for (int32_t k = 0; k < p->nred; k++) { /* odometer over the reduced blocks */
          off += p->red_stride[k];
          if (++idx[k] < p->red_size[k]) break;
          off -= p->red_size[k] * p->red_stride[k];
          idx[k] = 0;
        }
      }
      j->y[u] = (float)(mean ? total / p->count : total);
    } else {
      float* row = j->y + u * p->inner;
      memcpy(row, j->x + base, p->inner * sizeof(float));
      for (size_t r = 1; r < p->runs; r++) {
        for (int32_t k = 0; k < p->nred; k++) {
          off += p->red_stride[k];
          if (++idx[k] < p->red_size[k]) break;
          off -= p->red_size[k] * p->red_stride[k];
          idx[k] = 0;
        }
        combine_row(p->kind, row, j->x + base + off, p->inner);
      }
      if (mean)
        for (size_t i = 0; i < p->inner; i++) row[i] = (float)(row[i] / p->count);
    }
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  job_t j = {n->params, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, j.p->tasks, task, &j);
}

const sl_op_def_t sl_op_reduce = {SL_OP_SCHEMA(REDUCE), 1, 1, prepare, run, prepare};
