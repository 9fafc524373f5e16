/* ADD, SUB, MUL, DIV and PRELU (x > 0 ? x : alpha * x) with numpy broadcasting and a fused
 * activation.
 * Prepare merges dimensions that are contiguous (or broadcast) in both inputs, so the
 * innermost loop runs over a whole row with each input either contiguous or one value:
 * a residual add is one row, an attention mask [B,1,1,T] over [B,H,T,T] is rows of T. Rows
 * run on the vbinary kernel (with the clamp-like activations fused), others on vunary. */
#include "op.h"

typedef struct {
  sl_activation_t post; /* what the kernel's clamp cannot do, NONE otherwise */
  sl_minmax_t mm;
  const sl_ukernel_t *vbinary, *vunary;
  int32_t rank; /* after merging; the last dimension is the row */
  size_t shape[SL_MAX_RANK];
  size_t a_stride[SL_MAX_RANK], b_stride[SL_MAX_RANK]; /* 0 along broadcast dims */
  size_t rows, row_len;
} binary_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  binary_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  const sl_fb_table_t* o = &n->options;
  sl_activation_t act;
  sl_status_t st = sl_parse_activation(m, n, sl_binary_options_activation(fb, o), sl_binary_options_act_min(fb, o),
                                       sl_binary_options_act_max(fb, o), &act);
  sl_tensor_t *a = sl_in(m, n, 0), *b = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  if (st == SL_OK) st = sl_expect_f32(m, n, a, "first input", -1);
  if (st == SL_OK) st = sl_expect_f32(m, n, b, "second input", -1);
  if (st != SL_OK) return st;
  int32_t rank = a->rank > b->rank ? a->rank : b->rank, shape[SL_MAX_RANK];
  for (int32_t d = 0; d < rank; d++) {
    int32_t ad = d - (rank - a->rank), bd = d - (rank - b->rank);
    int32_t da = ad >= 0 ? a->shape[ad] : 1, db = bd >= 0 ? b->shape[bd] : 1;
    if (da != db && da != 1 && db != 1)
      return sl_node_fail(m, n, "inputs %s and %s do not broadcast along dimension %d (%d vs %d)",
                          a->name, b->name, d, da, db);
    shape[d] = da > db ? da : db;
  }
  if ((st = sl_expect_f32(m, n, y, "output", -1)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", rank, shape)) != SL_OK) return st;
  size_t as[SL_MAX_RANK], bs[SL_MAX_RANK];
  sl_broadcast_strides(a, rank, as);
  sl_broadcast_strides(b, rank, bs);
  /* Drop size-1 dimensions, then merge from the innermost out: dimension d joins the run
   * inside it when one step along d equals a whole pass of that run, in both inputs. */
  size_t sh[SL_MAX_RANK], sa[SL_MAX_RANK], sb[SL_MAX_RANK];
  int32_t k = 0;
  for (int32_t d = 0; d < rank; d++) {
    if (shape[d] == 1) continue;
    sh[k] = (size_t)shape[d];
    sa[k] = as[d];
    sb[k] = bs[d];
    k++;
  }
  p->rank = 0;
  for (int32_t d = k - 1; d >= 0; d--) {
    int32_t last = p->rank - 1;
    if (last >= 0 && sa[d] == p->a_stride[last] * p->shape[last] && sb[d] == p->b_stride[last] * p->shape[last]) {
      p->shape[last] *= sh[d];
      continue;
    }
    p->shape[p->rank] = sh[d];
    p->a_stride[p->rank] = sa[d];
    p->b_stride[p->rank] = sb[d];
    p->rank++;
  }
  if (p->rank == 0) { /* every dimension is 1 */
    p->shape[0] = 1;
    p->a_stride[0] = p->b_stride[0] = 0;
    p->rank = 1;
  }
  for (int32_t i = 0, j = p->rank - 1; i < j; i++, j--) { /* into outer-to-inner order */
    size_t t = p->shape[i];
    p->shape[i] = p->shape[j];
    p->shape[j] = t;
    t = p->a_stride[i];
    p->a_stride[i] = p->a_stride[j];
    p->a_stride[j] = t;
    t = p->b_stride[i];
    p->b_stride[i] = p->b_stride[j];
    p->b_stride[j] = t;
  }
  p->post = sl_activation_split(&act, &p->mm);
  p->vbinary = sl_op_kernel(m, SL_FAMILY_vbinary, 0);
  p->vunary = sl_op_kernel(m, SL_FAMILY_vunary, 0);
  n->kernel = p->vbinary->name;
  p->row_len = p->shape[p->rank - 1];
  p->rows = y->num_elems / p->row_len;
  return SL_OK;
}

typedef struct {
  const binary_params_t* p;
  const float *a, *b;
  float* y;
  sl_binary_op_t op;
  size_t rows_per_task;
} job_t;

static void rows_task(void* ctx, size_t task, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const binary_params_t* p = j->p;
  size_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task < p->rows ? r0 + j->rows_per_task : p->rows;
  int32_t outer = p->rank - 1;
  size_t idx[SL_MAX_RANK] = {0}, ai = 0, bi = 0, rest = r0;
  for (int32_t d = outer - 1; d >= 0; d--) {
    idx[d] = rest % p->shape[d];
    rest /= p->shape[d];
    ai += idx[d] * p->a_stride[d];
    bi += idx[d] * p->b_stride[d];
  }
  size_t as = p->a_stride[outer], bs = p->b_stride[outer], len = p->row_len;
  for (size_t r = r0; r < r1; r++) {
    float* y = j->y + r * len;
    p->vbinary->fn.vbinary(j->op, j->a + ai, as, j->b + bi, bs, y, len, &p->mm);
    if (p->post.type != SL_ACT_NONE) p->vunary->fn.vunary(&p->post, y, y, len);
    /* Odometer over the outer dimensions, keeping both input offsets in step. */
    for (int32_t d = outer - 1; d >= 0; d--) {
      ai += p->a_stride[d];
      bi += p->b_stride[d];
      if (++idx[d] < p->shape[d]) break;
      ai -= p->a_stride[d] * p->shape[d];
      bi -= p->b_stride[d] * p->shape[d];
      idx[d] = 0;
    }
  }
}

enum { CHUNK = 16384 }; /* elements per task */

static void run_op(const sl_model_t* m, const sl_node_t* n, sl_binary_op_t op) {
  const binary_params_t* p = n->params;
  size_t per_task = CHUNK / p->row_len;
  job_t j = {p, sl_in(m, n, 0)->data, sl_in(m, n, 1)->data, sl_out(m, n, 0)->data, op, per_task ? per_task : 1};
  sl_parallel_for(m, (p->rows + j.rows_per_task - 1) / j.rows_per_task, rows_task, &j);
}

static void run_add(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, SL_BINARY_ADD); }
static void run_sub(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, SL_BINARY_SUB); }
static void run_mul(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, SL_BINARY_MUL); }
static void run_div(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, SL_BINARY_DIV); }
static void run_prelu(const sl_model_t* m, const sl_node_t* n) { run_op(m, n, SL_BINARY_PRELU); }

const sl_op_def_t sl_op_add = {SL_OP_SCHEMA(ADD), 2, 2, prepare, run_add, prepare};
const sl_op_def_t sl_op_sub = {SL_OP_SCHEMA(SUB), 2, 2, prepare, run_sub, prepare};
const sl_op_def_t sl_op_mul = {SL_OP_SCHEMA(MUL), 2, 2, prepare, run_mul, prepare};
const sl_op_def_t sl_op_div = {SL_OP_SCHEMA(DIV), 2, 2, prepare, run_div, prepare};
const sl_op_def_t sl_op_prelu = {SL_OP_SCHEMA(PRELU), 2, 2, prepare, run_prelu, prepare};
