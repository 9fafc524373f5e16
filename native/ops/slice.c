/* SLICE of any dtype and rank: y[i...] = x[begin[d] + i[d] * step[d] ...], the counts being the output's
 * shape. Prepare checks that every axis's first and last index lie in the input, drops axes of one output
 * element, and merges axes that read on as one; run then copies runs of the innermost axis with memcpy
 * where its step is 1, element by element otherwise. Offsets are unsigned and wrap for negative steps:
 * every offset run reaches lies between an axis's first and last index, which prepare checked. */
#include <string.h>

#include "op.h"

enum { CHUNK = 64 * 1024 }; /* bytes a task copies at least */

typedef struct {
  int32_t rank;                            /* after dropping and merging; >= 1 */
  size_t count[SL_MAX_RANK];               /* output elements per axis */
  size_t stride[SL_MAX_RANK];              /* input bytes from one output element to the next (mod 2^N) */
  size_t start;                            /* input byte offset of output element 0 */
  size_t elem;                             /* bytes per element */
  bool contiguous;                         /* the innermost axis reads consecutive elements */
} slice_params_t;

/* Whether an axis of x (or y) that follows a dynamic dimension is sliced in a way every size of it
 * allows: whole (begin 0, step 1, the output following the same dimension), its first element, or
 * into another dynamic dimension (a convolution's taps: frames of samples), whose bounds resize
 * checks again at every size. */
static bool dynamic_ok(const sl_tensor_t* x, const sl_tensor_t* y, int32_t d, int32_t begin, int32_t step) {
  if (x->dynamic[d] == 0 && y->dynamic[d] == 0) return true;
  if (x->dynamic[d] != 0 && y->dynamic[d] != 0 && x->dynamic[d] != y->dynamic[d] && step > 0) return true;
  if (begin != 0) return false;
  return (x->dynamic[d] == y->dynamic[d] && step == 1) || (y->dynamic[d] == 0 && y->shape[d] == 1);
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  slice_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (x == NULL) return sl_node_fail(m, n, "input is missing");
  if (x->sparse != NULL || x->dtype != y->dtype)
    return sl_node_fail(m, n, "input (%s) and output (%s) must have one dense dtype", x->name, y->name);
  if (x->rank != y->rank)
    return sl_node_fail(m, n, "output (%s) has rank %d, the input rank %d", y->name, y->rank, x->rank);
  sl_fb_vec_t begin = sl_slice_options_begin(fb, &n->options), step = sl_slice_options_step(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (begin.len != (uint32_t)x->rank || step.len != (uint32_t)x->rank)
    return sl_node_fail(m, n, "%u begins and %u steps given for an input of rank %d", begin.len, step.len,
                        x->rank);
  p->elem = x->num_bytes / x->num_elems; /* num_elems >= 1: every dimension is */
  size_t in_stride = p->elem;
  p->start = 0;
  p->rank = 0;
  int32_t axes[SL_MAX_RANK]; /* the axes kept, innermost first */
  size_t strides[SL_MAX_RANK];
  for (int32_t d = x->rank - 1; d >= 0; d--) {
    int32_t b = sl_fb_vec_i32(fb, begin, (uint32_t)d), s = sl_fb_vec_i32(fb, step, (uint32_t)d);
    int64_t last = (int64_t)b + (int64_t)(y->shape[d] - 1) * s; /* |.| < 2^62 */
    if (s == 0) return sl_node_fail(m, n, "axis %d has step 0", d);
    if (b < 0 || b >= x->shape[d] || last < 0 || last >= x->shape[d])
      return sl_node_fail(m, n, "axis %d reads indices %d to %lld (step %d) of an input dimension of %d", d, b,
                          (long long)last, s, x->shape[d]);
    if (!dynamic_ok(x, y, d, b, s))
      return sl_node_fail(m, n, "axis %d follows a dynamic dimension: only the whole axis (begin 0, step 1) "
                          "or its first element can follow its size", d);
    p->start += (size_t)b * in_stride; /* < num_bytes */
    if (y->shape[d] > 1) {
      axes[p->rank] = d;
      strides[p->rank++] = (size_t)(int64_t)s * in_stride; /* |s| < x->shape[d]: |.| < num_bytes */
    }
    in_stride *= (size_t)x->shape[d];
  }
  /* Innermost first: an axis continues the one inside it when its step spans all of that one's reads. */
  int32_t kept = 0;
  for (int32_t k = 0; k < p->rank; k++) {
    size_t count = (size_t)y->shape[axes[k]];
    if (kept > 0 && strides[k] == p->stride[kept - 1] * p->count[kept - 1]) {
      p->count[kept - 1] *= count;
      continue;
    }
    p->count[kept] = count;
    p->stride[kept++] = strides[k];
  }
  if (kept == 0) { /* one element */
    p->count[0] = 1;
    p->stride[0] = p->elem;
    kept = 1;
  }
  /* Stored outermost first, as run walks them. */
  for (int32_t k = 0; k < kept / 2; k++) {
    size_t c = p->count[k], s = p->stride[k];
    p->count[k] = p->count[kept - 1 - k];
    p->stride[k] = p->stride[kept - 1 - k];
    p->count[kept - 1 - k] = c;
    p->stride[kept - 1 - k] = s;
  }
  p->rank = kept;
  p->contiguous = p->stride[kept - 1] == p->elem;
  return SL_OK;
}

/* n elements of elem bytes, `stride` bytes apart in src (mod 2^N), to consecutive dst. */
static void gather_run(char* dst, const char* src, size_t n, size_t stride, size_t elem) {
  size_t off = 0;
  switch (elem) { /* constant sizes, so each memcpy is one load and store */
    case 1: for (size_t i = 0; i < n; i++, off += stride) dst[i] = src[off]; break;
    case 2: for (size_t i = 0; i < n; i++, off += stride) memcpy(dst + 2 * i, src + off, 2); break;
    case 4: for (size_t i = 0; i < n; i++, off += stride) memcpy(dst + 4 * i, src + off, 4); break;
    default: for (size_t i = 0; i < n; i++, off += stride) memcpy(dst + 8 * i, src + off, 8); break;
  }
}

typedef struct {
  const slice_params_t* p;
  const char* x;
  char* y;
  size_t runs, per_task; /* runs of the innermost axis, and how many a task copies */
} slice_job_t;

static void slice_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const slice_job_t* j = ctx;
  const slice_params_t* p = j->p;
  int32_t inner = p->rank - 1;
  size_t run_bytes = p->count[inner] * p->elem;
  size_t r0 = task * j->per_task, r1 = r0 + j->per_task < j->runs ? r0 + j->per_task : j->runs;
  size_t idx[SL_MAX_RANK] = {0}, in = p->start, rest = r0;
  for (int32_t d = inner - 1; d >= 0; d--) {
    idx[d] = rest % p->count[d];
    rest /= p->count[d];
    in += idx[d] * p->stride[d];
  }
  for (size_t r = r0; r < r1; r++) {
    if (p->contiguous)
      memcpy(j->y + r * run_bytes, j->x + in, run_bytes);
    else
      gather_run(j->y + r * run_bytes, j->x + in, p->count[inner], p->stride[inner], p->elem);
    /* Odometer over the outer axes, keeping the input offset in step. */
    for (int32_t d = inner - 1; d >= 0; d--) {
      in += p->stride[d];
      if (++idx[d] < p->count[d]) break;
      in -= p->stride[d] * p->count[d];
      idx[d] = 0;
    }
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const slice_params_t* p = n->params;
  const sl_tensor_t* y = sl_out(m, n, 0);
  size_t run_bytes = p->count[p->rank - 1] * p->elem;
  slice_job_t j = {p, sl_in(m, n, 0)->data, y->data, y->num_bytes / run_bytes,
                   run_bytes >= CHUNK ? 1 : CHUNK / run_bytes};
  sl_parallel_for(m, (j.runs + j.per_task - 1) / j.per_task, slice_task, &j);
}

const sl_op_def_t sl_op_slice = {SL_OP_SCHEMA(SLICE), 1, 1, prepare, run, prepare};
