/* GROUP_NORM (torch.nn.functional.group_norm): x [N, C, *] float32; each of `groups` groups of
 * C / groups channels is normalized over its channels and all positions, y = (x - mean) /
 * sqrt(var + epsilon) * gamma[c] + beta[c], the variance biased, gamma and beta optional constants
 * [C]. The statistics take two passes in double over the group's contiguous slab (partial sums
 * in LANES independent accumulators, which the compiler vectorizes); the (n, group) slabs are
 * split over the threads. */
#include <math.h>

#include "op.h"

enum { LANES = 8, TASK_WORK = 1 << 15 }; /* partial sums; elements worth a task */

typedef struct {
  float epsilon;
  size_t channels, per_group, spatial; /* C, C / groups, positions per channel */
  size_t units;                        /* N * groups slabs of per_group * spatial floats */
  size_t units_per_task, tasks;
  const float *gamma, *beta;
} group_norm_params_t;

static sl_status_t expect_channels(sl_model_t* m, const sl_node_t* n, const sl_tensor_t* t, const char* what,
                                   int32_t channels) {
  if (t == NULL) return SL_OK;
  sl_status_t st = sl_expect_f32(m, n, t, what, 1);
  if (st == SL_OK && !t->is_const) st = sl_node_fail(m, n, "%s (%s) must be constant", what, t->name);
  if (st == SL_OK) st = sl_expect_shape(m, n, t, what, 1, &channels);
  return st;
}

static sl_status_t prepare(sl_model_t* m, sl_node_t* n, sl_fb_t* fb) {
  group_norm_params_t* p = sl_node_params(m, n, sizeof(*p));
  if (p == NULL) return SL_ERROR_OUT_OF_MEMORY;
  sl_tensor_t *x = sl_in(m, n, 0), *y = sl_out(m, n, 0);
  sl_tensor_t *gamma = n->num_inputs > 1 ? sl_in(m, n, 1) : NULL, *beta = n->num_inputs > 2 ? sl_in(m, n, 2) : NULL;
  sl_status_t st = sl_expect_f32(m, n, x, "input", -1);
  if (st != SL_OK) return st;
  int32_t groups = sl_group_norm_options_groups(fb, &n->options);
  p->epsilon = sl_group_norm_options_epsilon(fb, &n->options);
  if (fb->error) return SL_OK; /* reported by the loader */
  if (x->rank < 2) return sl_node_fail(m, n, "input (%s) has rank %d: GROUP_NORM needs [N, C, ...]", x->name, x->rank);
  if (x->dynamic[1] != 0)
    return sl_node_fail(m, n, "input (%s) has its channels (axis 1) follow a dynamic dimension: they must be fixed",
                        x->name);
  int32_t channels = x->shape[1];
  if (groups < 1 || channels % groups != 0)
    return sl_node_fail(m, n, "%d groups cannot split %d channels: groups must be >= 1 and divide them", groups,
                        channels);
  if (!(p->epsilon > 0.0f) || isinf(p->epsilon))
    return sl_node_fail(m, n, "epsilon %g must be positive and finite", (double)p->epsilon);
  if ((st = expect_channels(m, n, gamma, "gamma", channels)) != SL_OK) return st;
  if ((st = expect_channels(m, n, beta, "beta", channels)) != SL_OK) return st;
  if ((st = sl_expect_f32(m, n, y, "output", -1)) != SL_OK) return st;
  if ((st = sl_expect_shape(m, n, y, "output", x->rank, x->shape)) != SL_OK) return st;
  p->channels = (size_t)channels;
  p->per_group = (size_t)(channels / groups);
  p->spatial = x->num_elems / ((size_t)x->shape[0] * p->channels);
  p->units = (size_t)x->shape[0] * (size_t)groups;
  size_t slab = p->per_group * p->spatial;
  p->units_per_task = slab >= TASK_WORK ? 1 : TASK_WORK / slab;
  p->tasks = (p->units + p->units_per_task - 1) / p->units_per_task;
  p->gamma = sl_const_f32(gamma);
  p->beta = sl_const_f32(beta);
  return SL_OK;
}

/* sum_k f(x[k]) over a slab in double, LANES partial sums at a time. */
#define SLAB_SUM(F)                                                   \
  double acc[LANES] = {0}, total = 0.0;                               \
  size_t i = 0;                                                       \
  for (; i + LANES <= len; i += LANES)                                \
    for (int j = 0; j < LANES; j++) acc[j] += F((double)x[i + j]);     \
  for (; i < len; i++) total += F((double)x[i]);                      \
  for (int j = 0; j < LANES; j++) total += acc[j];                    \
  return total

#define SELF(v) (v)
#define SQUARED_DEVIATION(v) (((v) - mean) * ((v) - mean))
static double sum(const float* x, size_t len) { SLAB_SUM(SELF); }
static double squared_deviations(const float* x, size_t len, double mean) { SLAB_SUM(SQUARED_DEVIATION); }

typedef struct {
  const group_norm_params_t* p;
  const float* x;
  float* y;
} job_t;

static void task(void* ctx, size_t t, size_t thread) {
  (void)thread;
  const job_t* j = ctx;
  const group_norm_params_t* p = j->p;
  size_t slab = p->per_group * p->spatial, groups = p->channels / p->per_group;
  size_t u1 = (t + 1) * p->units_per_task < p->units ? (t + 1) * p->units_per_task : p->units;
  for (size_t u = t * p->units_per_task; u < u1; u++) {
    const float* x = j->x + u * slab;
    float* y = j->y + u * slab;
    double mean = sum(x, slab) / (double)slab, var = squared_deviations(x, slab, mean) / (double)slab;
    /* The mean as a float and its rounding error: x - hi is exact for x near the mean, so a
     * mean far from zero costs no digits of the deviations. */
    float hi = (float)mean, lo = (float)(mean - (double)hi), rstd = (float)(1.0 / sqrt(var + (double)p->epsilon));
    size_t c0 = u % groups * p->per_group;
    for (size_t c = 0; c < p->per_group; c++) {
      float scale = p->gamma != NULL ? rstd * p->gamma[c0 + c] : rstd;
      float shift = p->beta != NULL ? p->beta[c0 + c] : 0.0f;
      const float* xc = x + c * p->spatial;
      float* yc = y + c * p->spatial;
      for (size_t i = 0; i < p->spatial; i++) yc[i] = (xc[i] - hi - lo) * scale + shift;
    }
  }
}

static void run(const sl_model_t* m, const sl_node_t* n) {
  job_t j = {n->params, sl_in(m, n, 0)->data, sl_out(m, n, 0)->data};
  sl_parallel_for(m, j.p->tasks, task, &j);
}

const sl_op_def_t sl_op_group_norm = {SL_OP_SCHEMA(GROUP_NORM), 1, 3, prepare, run, prepare};
