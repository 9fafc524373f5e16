/* MATMUL: y[b] = A[b] (M x K) * B[b] (K x N) over equal batch dimensions, or one B (rank 2)
 * shared by every batch (a linear layer with dynamic inputs). Both operands may be computed:
 * each batch packs its A into gemm panels in scratch and runs the gemm microkernel with B's
 * rows as the pixel dimension. */
#include <math.h>

#include "op.h"

typedef struct {
  size_t batch, m, k, n;
  bool shared_b;
  const sl_ukernel_t* gemm;
  sl_minmax_t mm;
} matmul_params_t;

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  (void)fb;
  matmul_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *a = sl_in(m, n, 0), *b = sl_in(m, n, 1), *y = sl_out(m, n, 0);
  sl_status_t st = sl_expect_f32(m, n, a, "A", -1);
  if (st == SL_OK) st = sl_expect_f32(m, n, b, "B", -1);
  if (st != SL_OK) return st;
  if (a->rank < 2 || b->rank < 2) return sl_node_fail(m, n, "A and B must have rank >= 2");
  p->m = (size_t)a->shape[a->rank - 2];
  p->k = (size_t)a->shape[a->rank - 1];
  p->n = (size_t)b->shape[b->rank - 1];
  if ((size_t)b->shape[b->rank - 2] != p->k)
    return sl_node_fail(m, n, "A has %zu columns but B has %d rows", p->k, b->shape[b->rank - 2]);
  p->shared_b = b->rank == 2;
  if (!p->shared_b) {
    bool same = b->rank == a->rank;
    for (int32_t d = 0; same && d < a->rank - 2; d++) same = a->shape[d] == b->shape[d];
    if (!same) return sl_node_fail(m, n, "batch dimensions of A and B differ (B of rank 2 is shared)");
  }
  int32_t yshape[SL_MAX_RANK];
  p->batch = 1;
  for (int32_t d = 0; d < a->rank - 2; d++) {
    yshape[d] = a->shape[d];
    p->batch *= (size_t)a->shape[d];
  }
  yshape[a->rank - 2] = (int32_t)p->m;
  yshape[a->rank - 1] = (int32_t)p->n;
  if ((st = sl_expect_f32(m, n, y, "output", a->rank)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", a->rank, yshape)) != SL_OK) return st;
  p->gemm = sl_op_kernel(m, SL_FAMILY_gemm, 0);
  p->mm.min = -INFINITY;
  p->mm.max = INFINITY;
  size_t panels;
  if (!sl_gemm_pack_bytes(p->m, p->k, p->gemm->rows, &panels))
    return sl_node_fail(m, n, "A's panels (%zu x %zu) do not fit in memory", p->m, p->k);
  sl_reserve_scratch(m, n, 0, panels);
  n->kernel = p->gemm->name;
  n->flops = n->dense_flops = 2.0 * (double)p->batch * (double)p->m * (double)p->k * (double)p->n;
  return SL_OK;
}

typedef struct {
  const sl_model_t* m;
  const sl_node_t* n;
  const matmul_params_t* p;
  const float *a, *b;
  float* y;
} job_t;

static void batch_task(void* ctx, size_t task, size_t thread) {
  const job_t* j = ctx;
  const matmul_params_t* p = j->p;
  float* panels = sl_scratch_thread(j->m, j->n, thread);
  sl_gemm_pack(j->a + task * p->m * p->k, NULL, p->m, p->k, p->gemm->rows, panels);
  const float* b = j->b + (p->shared_b ? 0 : task * p->k * p->n);
  p->gemm->fn.gemm(p->n, p->m, p->k, b, p->n, NULL, panels, j->y + task * p->m * p->n, p->n,
                   &(sl_matrix_out_t){.mm = p->mm});
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  const matmul_params_t* p = n->params;
  job_t j = {m, n, p, sl_in(m, n, 0)->data, sl_in(m, n, 1)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, p->batch, batch_task, &j);
}

const sl_op_def_t sl_op_matmul = {SL_OP_SCHEMA(MATMUL), 2, 2, prepare, run, prepare};
