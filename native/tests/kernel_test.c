/* Every microkernel in the lists that this CPU can run, against the plain C
 * references, on random shapes, densities (including empty rows and empty
 * layers), group sizes, permutations, pixel tails and clamps. Prints
 * "N passed, N failed"; exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"

static int passed, failed;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n) { /* uniform in [0, n) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % n);
}
static float frand(void) { return (float)rnd(2000001) / 1000000.0f - 1.0f; }

static void* xmalloc(size_t n) {
  void* p = malloc(n > 0 ? n : 1);
  if (p == NULL) abort();
  return p;
}

/* Each output against the reference, scaled by the size of what it sums. */
static void compare(const char* kernel, const char* shape, const float* got, const float* want, size_t n,
                    float scale) {
  for (size_t i = 0; i < n; i++) {
    if (fabsf(got[i] - want[i]) <= 1e-5f * scale + 1e-6f) continue;
    failed++;
    fprintf(stderr, "FAIL %s %s: element %zu is %g, reference %g\n", kernel, shape, i, (double)got[i],
            (double)want[i]);
    return;
  }
  passed++;
}

static void random_clamp(sl_activation_t* act, sl_minmax_t* mm) {
  act->type = SL_ACT_CLAMP;
  switch (rnd(3)) {
    case 0: act->min = -INFINITY; act->max = INFINITY; break;
    case 1: act->min = 0.0f; act->max = INFINITY; break;
    default: act->min = -0.5f; act->max = 0.7f; break;
  }
  mm->min = act->min;
  mm->max = act->max;
}

/* Random group-sparse weights with file group size fr; density in [0, 1]. */
static sl_group_sparse_f32_t random_sparse(uint32_t rows, uint32_t cols, uint32_t fr, float density) {
  sl_group_sparse_f32_t w = {rows, cols, fr, (rows + fr - 1) / fr, NULL, NULL, NULL, NULL};
  uint32_t* row_ptr = xmalloc((w.group_rows + 1) * sizeof(uint32_t));
  uint32_t* col_idx = xmalloc((size_t)w.group_rows * cols * sizeof(uint32_t));
  float* values = xmalloc((size_t)w.group_rows * cols * fr * sizeof(float));
  uint32_t e = 0;
  row_ptr[0] = 0;
  for (uint32_t g = 0; g < w.group_rows; g++) {
    for (uint32_t c = 0; c < cols; c++) {
      if ((float)rnd(1000) >= density * 1000.0f) continue;
      col_idx[e] = c;
      /* Some explicit zeros inside groups, as partly filled groups have. */
      for (uint32_t j = 0; j < fr; j++) values[(size_t)e * fr + j] = rnd(5) == 0 ? 0.0f : frand();
      e++;
    }
    row_ptr[g + 1] = e;
  }
  if (rnd(2) == 0) {
    uint32_t* perm = xmalloc(rows * sizeof(uint32_t));
    for (uint32_t i = 0; i < rows; i++) perm[i] = i;
    for (uint32_t i = rows; i > 1; i--) {
      uint32_t k = rnd(i), t = perm[i - 1];
      perm[i - 1] = perm[k];
      perm[k] = t;
    }
    w.out_perm = perm;
  }
  w.row_ptr = row_ptr;
  w.col_idx = col_idx;
  w.values = values;
  return w;
}

static void free_sparse(sl_group_sparse_f32_t* w) {
  free((void*)w->row_ptr);
  free((void*)w->col_idx);
  free((void*)w->values);
  free((void*)w->out_perm);
}

static void test_spmm(const sl_spmm_ukernel_t* k, const sl_spmm_ukernel_t* tail) {
  for (int trial = 0; trial < 60; trial++) {
    uint32_t fr = k->r * (1u << rnd(k->r < 8 ? 2 : 1)); /* file groups of r or 2r */
    uint32_t rows = 1 + rnd(70), cols = 1 + rnd(90);
    size_t pixels = 1 + rnd(3 * k->mr + 5);
    float density = trial % 10 == 0 ? 0.0f : (float)rnd(1001) / 1000.0f;
    sl_group_sparse_f32_t w = random_sparse(rows, cols, fr, density);
    float* bias = xmalloc(rows * sizeof(float));
    for (uint32_t i = 0; i < rows; i++) bias[i] = frand();
    bool with_bias = rnd(4) != 0;
    float* x = xmalloc((size_t)cols * pixels * sizeof(float));
    for (size_t i = 0; i < (size_t)cols * pixels; i++) x[i] = frand();
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    float* want = xmalloc(rows * pixels * sizeof(float));
    float* got = xmalloc(rows * pixels * sizeof(float));
    sl_f32_spmm_ref(&w, with_bias ? bias : NULL, pixels, x, want, &act);

    sl_spmm_packed_t p = {k->r, 0, 0, NULL, NULL, NULL, NULL};
    size_t nonzeros, values;
    sl_spmm_pack_count(&w, k->r, &p.blocks, &p.tail_rows, &nonzeros, &values);
    p.nz_start = xmalloc((p.blocks + p.tail_rows + 1) * sizeof(uint32_t));
    p.x_offset = xmalloc(nonzeros * sizeof(uint32_t));
    p.values = xmalloc(values * sizeof(float));
    p.out_row = xmalloc(rows * sizeof(uint32_t));
    sl_spmm_pack(&w, with_bias ? bias : NULL, pixels, &p);
    memset(got, 0xff, rows * pixels * sizeof(float)); /* NaN: every output must be written */
    k->fn(pixels, p.blocks, x, p.values, p.x_offset, p.nz_start, p.out_row, got, pixels, &mm);
    uint32_t b = p.blocks;
    tail->fn(pixels, p.tail_rows, x, p.values + sl_spmm_values_start(&p, b), p.x_offset + p.nz_start[b],
             p.nz_start + b, p.out_row + (size_t)b * p.r, got, pixels, &mm);
    char shape[128];
    snprintf(shape, sizeof(shape), "rows=%u cols=%u pixels=%zu r=%u density=%.3f", rows, cols, pixels, fr,
             (double)density);
    compare(k->name, shape, got, want, rows * pixels, (float)cols);
    free(p.nz_start);
    free(p.x_offset);
    free(p.values);
    free(p.out_row);
    free(bias);
    free(x);
    free(want);
    free(got);
    free_sparse(&w);
  }
}

static void test_gemm(const sl_gemm_ukernel_t* k) {
  for (int trial = 0; trial < 60; trial++) {
    size_t rows = 1 + rnd(30), cols = 1 + rnd(70), pixels = 1 + rnd(3 * k->nr + 5);
    size_t x_stride = pixels + rnd(9), y_stride = pixels + rnd(9);
    float* w = xmalloc(rows * cols * sizeof(float));
    float* bias = xmalloc(rows * sizeof(float));
    float* x = xmalloc(cols * x_stride * sizeof(float));
    float* xc = xmalloc(cols * pixels * sizeof(float));
    for (size_t i = 0; i < rows * cols; i++) w[i] = frand();
    for (size_t i = 0; i < rows; i++) bias[i] = frand();
    for (size_t i = 0; i < cols * x_stride; i++) x[i] = frand();
    for (size_t c = 0; c < cols; c++) memcpy(xc + c * pixels, x + c * x_stride, pixels * sizeof(float));
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    float* want = xmalloc(rows * pixels * sizeof(float));
    float* got = xmalloc(rows * y_stride * sizeof(float));
    float* packed = xmalloc(sl_gemm_pack_size(rows, cols, k->mr) * sizeof(float));
    sl_f32_gemm_ref(w, bias, rows, cols, pixels, xc, want, &act);
    sl_gemm_pack(w, bias, rows, cols, k->mr, packed);
    for (size_t i = 0; i < rows * y_stride; i++) got[i] = 12345.0f;
    k->fn(pixels, rows, cols, x, x_stride, packed, got, y_stride, &mm);
    float* compact = xmalloc(rows * pixels * sizeof(float));
    bool gaps_intact = true;
    for (size_t r = 0; r < rows; r++) {
      memcpy(compact + r * pixels, got + r * y_stride, pixels * sizeof(float));
      for (size_t p = pixels; p < y_stride; p++) gaps_intact &= got[r * y_stride + p] == 12345.0f;
    }
    char shape[128];
    snprintf(shape, sizeof(shape), "rows=%zu cols=%zu pixels=%zu strides=%zu/%zu", rows, cols, pixels, x_stride,
             y_stride);
    compare(k->name, shape, compact, want, rows * pixels, (float)cols);
    if (!gaps_intact) {
      failed++;
      fprintf(stderr, "FAIL %s %s: wrote past the pixels\n", k->name, shape);
    }
    free(w);
    free(bias);
    free(x);
    free(xc);
    free(want);
    free(got);
    free(packed);
    free(compact);
  }
}

static void test_dwconv(const sl_dwconv_ukernel_t* k) {
  for (int trial = 0; trial < 80; trial++) {
    size_t count = 1 + rnd(300), taps = 1 + rnd(25), span = 0;
    uint32_t offset[25];
    for (size_t t = 0; t < taps; t++) {
      offset[t] = rnd(200);
      if (offset[t] > span) span = offset[t];
    }
    float* x = xmalloc((count + span) * sizeof(float));
    float w[25];
    for (size_t i = 0; i < count + span; i++) x[i] = frand();
    for (size_t t = 0; t < taps; t++) w[t] = frand();
    float bias = frand();
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    float* want = xmalloc(count * sizeof(float));
    float* got = xmalloc((count + 1) * sizeof(float));
    for (size_t i = 0; i < count; i++) { /* the definition, in double */
      double acc = bias;
      for (size_t t = 0; t < taps; t++) acc += (double)w[t] * x[i + offset[t]];
      want[i] = sl_activation_scalar(&act, (float)acc);
    }
    got[count] = 12345.0f;
    k->fn(count, taps, offset, x, w, bias, got, &mm);
    char shape[96];
    snprintf(shape, sizeof(shape), "count=%zu taps=%zu", count, taps);
    compare(k->name, shape, got, want, count, (float)taps);
    if (got[count] != 12345.0f) {
      failed++;
      fprintf(stderr, "FAIL %s %s: wrote past the end\n", k->name, shape);
    }
    free(x);
    free(want);
    free(got);
  }
}

/* The vectorized activations and row reductions against libm, over odd lengths (tails) and
 * inputs from saturation to zero. */
static void test_elementwise(void) {
  enum { N = 1037 };
  float* x = xmalloc(N * sizeof(float));
  float* got = xmalloc(N * sizeof(float));
  float* want = xmalloc(N * sizeof(float));
  for (size_t i = 0; i < N; i++) x[i] = frand() * (i % 3 == 0 ? 12.0f : 4.0f);
  x[5] = 0.0f;
  x[6] = -100.0f;
  x[7] = 100.0f;
  for (int t = 0; t < SL_ACT_COUNT; t++) {
    sl_activation_t act = {(sl_act_type_t)t, -0.5f, 2.0f};
    sl_f32_activation(&act, x, got, N);
    sl_f32_activation_ref(&act, x, want, N);
    char name[32];
    snprintf(name, sizeof(name), "activation %d", t);
    compare(name, "1037", got, want, N, 1.0f);
  }
  size_t len = 1 + rnd(200);
  float shift = sl_f32_max(x, len), mx = x[0];
  for (size_t i = 1; i < len; i++) mx = fmaxf(mx, x[i]);
  compare("f32_max", "random", &shift, &mx, 1, 1.0f);
  float sum = sl_f32_exp_sum(x, shift, got, len), want_sum = 0.0f;
  for (size_t i = 0; i < len; i++) want_sum += want[i] = expf(x[i] - shift);
  compare("f32_exp_sum", "values", got, want, len, 1.0f);
  compare("f32_exp_sum", "sum", &sum, &want_sum, 1, want_sum);
  float mean, rstd;
  double dsum = 0.0, dsq = 0.0;
  for (size_t i = 0; i < len; i++) dsum += x[i];
  for (size_t i = 0; i < len; i++) dsq += (x[i] - dsum / len) * (x[i] - dsum / len);
  sl_f32_mean_rstd(x, len, 1e-5f, &mean, &rstd);
  float want_stats[2] = {(float)(dsum / len), (float)(1.0 / sqrt(dsq / len + 1e-5))};
  float got_stats[2] = {mean, rstd};
  compare("f32_mean_rstd", "random", got_stats, want_stats, 2, 1.0f);
  free(x);
  free(got);
  free(want);
}

int main(void) {
  uint32_t isa = sl_cpu_isa();
  test_elementwise();
  int skipped = 0;
  for (size_t i = 0; i < sl_spmm_ukernel_count; i++) {
    const sl_spmm_ukernel_t* k = &sl_spmm_ukernels[i];
    if ((k->isa & ~isa) != 0) {
      skipped++;
      continue;
    }
    /* Tail rows run on the r = 1 kernel of the same ISA, as in the runtime. */
    test_spmm(k, sl_spmm_select(k->isa, 1));
  }
  for (size_t i = 0; i < sl_gemm_ukernel_count; i++) {
    if ((sl_gemm_ukernels[i].isa & ~isa) != 0) {
      skipped++;
      continue;
    }
    test_gemm(&sl_gemm_ukernels[i]);
  }
  for (size_t i = 0; i < sl_dwconv_ukernel_count; i++) {
    if ((sl_dwconv_ukernels[i].isa & ~isa) != 0) {
      skipped++;
      continue;
    }
    test_dwconv(&sl_dwconv_ukernels[i]);
  }
  printf("%d passed, %d failed, %d kernels this CPU cannot run\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
