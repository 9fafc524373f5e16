/* EXPAND of any dtype: x broadcast (numpy rules) to y's shape. Prepare lines x's dimensions up
 * with y's from the right, drops y's axes of size 1 and merges neighbouring axes that are both
 * copied or both repeated, so y is a few blocks. Run writes y in runs of its innermost block: a
 * memcpy of x's run when that block is copied, one element repeated when it is broadcast (a
 * scalar fill is one such run). Long runs are cut in pieces and short ones grouped, so each task
 * writes about CHUNK bytes. */
#include <string.h>

#include "op.h"

enum { CHUNK = 64 * 1024 }; /* bytes a task writes at least */

typedef struct {
  int32_t rank;              /* merged blocks, outermost first; >= 1 */
  size_t count[SL_MAX_RANK]; /* y elements per block */
  size_t stride[SL_MAX_RANK]; /* x elements from one index of the block to the next; 0 when repeated */
  size_t elem;               /* bytes per element */
  size_t runs;               /* runs of the innermost block */
  size_t piece;              /* elements a task writes of one run (pieces > 1), or 0 */
  size_t pieces;             /* per run */
  size_t runs_per_task, tasks;
} expand_params_t;

/* Whether y's axis d (x's axis xd, or none when xd < 0) broadcasts for every size its dynamic
 * dimensions can take: x's follows the same dimension as y's, or is fixed at 1, or both are fixed. */
static bool dynamic_ok(const sl_tensor_t* x, const sl_tensor_t* y, int32_t d, int32_t xd) {
  if (xd < 0 || (x->shape[xd] == 1 && x->dynamic[xd] == 0)) return true;
  return x->dynamic[xd] == y->dynamic[d];
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  expand_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  if (x == NULL) return sl_node_fail(m, n, "input is missing");
  if (x->sparse != NULL || x->dtype != y->dtype)
    return sl_node_fail(m, n, "input (%s) and output (%s) must have one dense dtype", x->name, y->name);
  if (x->rank > y->rank)
    return sl_node_fail(m, n, "input (%s) has rank %d, more than the output's %d", x->name, x->rank, y->rank);
  p->elem = x->num_bytes / x->num_elems; /* num_elems >= 1: every dimension is */
  size_t count[SL_MAX_RANK], stride[SL_MAX_RANK], x_stride = 1;
  bool repeated[SL_MAX_RANK];
  int32_t blocks = 0; /* innermost first */
  for (int32_t d = y->rank - 1; d >= 0; d--) {
    int32_t xd = d - (y->rank - x->rank), xn = xd >= 0 ? x->shape[xd] : 1;
    if (xn != y->shape[d] && xn != 1)
      return sl_node_fail(m, n, "input (%s) axis %d of %d cannot broadcast to the output's %d", x->name, xd, xn,
                          y->shape[d]);
    if (!dynamic_ok(x, y, d, xd))
      return sl_node_fail(m, n, "input (%s) axis %d and the output's axis %d follow different dynamic dimensions "
                          "(or one is fixed): only a fixed size of 1 broadcasts to a dynamic one", x->name, xd, d);
    if (y->shape[d] == 1) continue;
    bool rep = xn == 1;
    if (blocks > 0 && repeated[blocks - 1] == rep) { /* copied axes continue in x: sizes of 1 between */
      count[blocks - 1] *= (size_t)y->shape[d];
    } else {
      count[blocks] = (size_t)y->shape[d];
      stride[blocks] = rep ? 0 : x_stride;
      repeated[blocks++] = rep;
    }
    x_stride *= (size_t)xn;
  }
  if (blocks == 0) { /* one element */
    count[0] = 1;
    stride[0] = 0;
    blocks = 1;
  }
  p->rank = blocks;
  for (int32_t k = 0; k < blocks; k++) { /* outermost first, as run walks them */
    p->count[k] = count[blocks - 1 - k];
    p->stride[k] = stride[blocks - 1 - k];
  }
  size_t inner = p->count[blocks - 1], run_bytes = inner * p->elem;
  p->runs = y->num_elems / inner;
  if (run_bytes > CHUNK) {
    p->piece = CHUNK / p->elem;
    p->pieces = (inner + p->piece - 1) / p->piece;
    p->runs_per_task = 1;
    p->tasks = p->runs * p->pieces;
  } else {
    p->piece = inner;
    p->pieces = 1;
    p->runs_per_task = CHUNK / run_bytes;
    p->tasks = (p->runs + p->runs_per_task - 1) / p->runs_per_task;
  }
  return SL_OK;
}

/* count copies of the elem-byte value at src into dst: one, then doubling copies of what is written. */
static void fill(char* dst, const char* src, size_t count, size_t elem) {
  if (elem == 1) {
    memset(dst, *src, count);
    return;
  }
  size_t total = count * elem, done = elem;
  memcpy(dst, src, elem);
  while (done < total) {
    size_t step = done < total - done ? done : total - done;
    memcpy(dst + done, dst, step);
    done += step;
  }
}

typedef struct {
  const expand_params_t* p;
  const char* x;
  char* y;
} job_t;

/* Elements [e0, e1) of run r. */
static void write_run(const job_t* j, size_t r, size_t e0, size_t e1) {
  const expand_params_t* p = j->p;
  int32_t inner = p->rank - 1;
  size_t off = 0, rest = r; /* x's element offset of the run's start, from its outer indices */
  for (int32_t d = inner - 1; d >= 0; d--) {
    off += rest % p->count[d] * p->stride[d];
    rest /= p->count[d];
  }
  char* dst = j->y + (r * p->count[inner] + e0) * p->elem;
  if (p->stride[inner] != 0)
    memcpy(dst, j->x + (off + e0) * p->elem, (e1 - e0) * p->elem);
  else
    fill(dst, j->x + off * p->elem, e1 - e0, p->elem);
}

static void task(void* ctx, size_t t, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const expand_params_t* p = j->p;
  size_t inner = p->count[p->rank - 1];
  if (p->pieces > 1) {
    size_t r = t / p->pieces, e0 = t % p->pieces * p->piece;
    write_run(j, r, e0, inner - e0 < p->piece ? inner : e0 + p->piece);
    return;
  }
  size_t r1 = (t + 1) * p->runs_per_task < p->runs ? (t + 1) * p->runs_per_task : p->runs;
  for (size_t r = t * p->runs_per_task; r < r1; r++) write_run(j, r, 0, inner);
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  job_t j = {n->params, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, j.p->tasks, task, &j);
}

const sl_op_def_t sl_op_expand = {SL_OP_SCHEMA(EXPAND), 1, 1, prepare, run, prepare};
