/* Micro-benchmark: spmm microkernels against the dense gemm microkernel on
 * MobileNet-like 1x1 shapes, one thread, the CPU's best ISA (or SL_ISA_MASK).
 * One JSON object per line; benchmarks/bench_spmm.py runs and tabulates it. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/kernels.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

typedef void (*run_fn)(void* ctx);

/* Median seconds of `reps` timed runs after two warm-ups. */
static double median_time(run_fn fn, void* ctx, int reps) {
  double t[101];
  if (reps > 101) reps = 101;
  fn(ctx);
  fn(ctx);
  for (int i = 0; i < reps; i++) {
    double t0 = now();
    fn(ctx);
    t[i] = now() - t0;
  }
  qsort(t, (size_t)reps, sizeof(double), cmp_double);
  return t[reps / 2];
}

typedef struct {
  const sl_spmm_ukernel_t* k;
  const sl_spmm_ukernel_t* tail;
  sl_spmm_packed_t p;
  size_t pixels;
  const float* x;
  float* y;
  sl_minmax_t mm;
} spmm_ctx_t;

static void run_spmm(void* c) {
  spmm_ctx_t* s = c;
  s->k->fn(s->pixels, s->p.blocks, s->x, s->p.values, s->p.x_offset, s->p.nz_start, s->p.out_row, s->y, s->pixels,
           &s->mm);
}

typedef struct {
  const sl_gemm_ukernel_t* k;
  size_t rows, cols, pixels;
  const float* x;
  const float* panels;
  float* y;
  sl_minmax_t mm;
} gemm_ctx_t;

static void run_gemm(void* c) {
  gemm_ctx_t* g = c;
  g->k->fn(g->pixels, g->rows, g->cols, g->x, g->pixels, g->panels, g->y, g->pixels, &g->mm);
}

int main(int argc, char** argv) {
  /* pixels, out channels, in channels: MobileNetV2 1x1 layers at 224x224. */
  static const size_t shapes[][3] = {{12544, 16, 32}, {3136, 144, 24}, {3136, 24, 144}, {784, 192, 32},
                                     {784, 32, 192}, {196, 384, 64}, {196, 576, 96}, {49, 960, 160},
                                     {49, 160, 960}, {49, 1280, 320}};
  static const double sparsities[] = {0.5, 0.7, 0.8, 0.9, 0.95};
  int reps = argc > 1 ? atoi(argv[1]) : 31;
  uint32_t isa = sl_cpu_isa();
  if (getenv("SL_ISA_MASK") != NULL) isa &= (uint32_t)strtoul(getenv("SL_ISA_MASK"), NULL, 0);
  const sl_gemm_ukernel_t* gk = sl_gemm_select(isa);
  for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
    size_t pixels = shapes[s][0], rows = shapes[s][1], cols = shapes[s][2];
    float* x = malloc(cols * pixels * sizeof(float));
    float* y = malloc(rows * pixels * sizeof(float));
    float* w = malloc(rows * cols * sizeof(float));
    for (size_t i = 0; i < cols * pixels; i++) x[i] = (float)rnd(1000) / 1000.0f;
    for (size_t i = 0; i < rows * cols; i++) w[i] = (float)rnd(1000) / 1000.0f - 0.5f;
    float* panels = malloc(sl_gemm_pack_size(rows, cols, gk->mr) * sizeof(float));
    sl_gemm_pack(w, NULL, rows, cols, gk->mr, panels);
    gemm_ctx_t g = {gk, rows, cols, pixels, x, panels, y, {-1e30f, 1e30f}};
    double dense_flops = 2.0 * rows * cols * pixels;
    double tg = median_time(run_gemm, &g, reps);
    printf("{\"kernel\": \"%s\", \"pixels\": %zu, \"rows\": %zu, \"cols\": %zu, \"sparsity\": 0, \"r\": 0, "
           "\"ms\": %.5f, \"gflops\": %.3f}\n",
           gk->name, pixels, rows, cols, tg * 1e3, dense_flops / tg / 1e9);
    for (uint32_t r = 1; r <= 8; r *= 2) {
      const sl_spmm_ukernel_t* k = sl_spmm_select(isa, r);
      if (k == NULL || rows % r != 0) continue;
      for (size_t d = 0; d < sizeof(sparsities) / sizeof(sparsities[0]); d++) {
        /* Keep whole r x 1 groups, a random (1 - sparsity) share of them. */
        uint32_t groups = (uint32_t)(rows / r);
        uint32_t* row_ptr = malloc((groups + 1) * sizeof(uint32_t));
        uint32_t* col_idx = malloc((size_t)groups * cols * sizeof(uint32_t));
        float* values = malloc((size_t)groups * cols * r * sizeof(float));
        uint32_t e = 0;
        row_ptr[0] = 0;
        for (uint32_t gi = 0; gi < groups; gi++) {
          for (uint32_t c = 0; c < cols; c++) {
            if (rnd(10000) < (uint32_t)(sparsities[d] * 10000)) continue;
            col_idx[e] = c;
            for (uint32_t j = 0; j < r; j++) values[(size_t)e * r + j] = w[(gi * r + j) * cols + c];
            e++;
          }
          row_ptr[gi + 1] = e;
        }
        sl_group_sparse_f32_t gs = {(uint32_t)rows, (uint32_t)cols, r, groups, row_ptr, col_idx, values, NULL};
        spmm_ctx_t c = {k, NULL, {r, 0, 0, NULL, NULL, NULL, NULL}, pixels, x, y, {-1e30f, 1e30f}};
        size_t nonzeros, nvalues;
        sl_spmm_pack_count(&gs, r, &c.p.blocks, &c.p.tail_rows, &nonzeros, &nvalues);
        c.p.nz_start = malloc((c.p.blocks + c.p.tail_rows + 1) * sizeof(uint32_t));
        c.p.x_offset = malloc((nonzeros + 1) * sizeof(uint32_t));
        c.p.values = malloc((nvalues + 1) * sizeof(float));
        c.p.out_row = malloc(rows * sizeof(uint32_t));
        sl_spmm_pack(&gs, NULL, pixels, &c.p);
        double ts = median_time(run_spmm, &c, reps);
        double flops = 2.0 * (double)e * r * pixels;
        printf("{\"kernel\": \"%s\", \"pixels\": %zu, \"rows\": %zu, \"cols\": %zu, \"sparsity\": %.2f, "
               "\"r\": %u, \"ms\": %.5f, \"gflops\": %.3f, \"speedup_vs_gemm\": %.3f}\n",
               k->name, pixels, rows, cols, sparsities[d], r, ts * 1e3, flops / ts / 1e9, tg / ts);
        fflush(stdout);
        free(c.p.nz_start);
        free(c.p.x_offset);
        free(c.p.values);
        free(c.p.out_row);
        free(row_ptr);
        free(col_idx);
        free(values);
      }
    }
    free(x);
    free(y);
    free(w);
    free(panels);
  }
  return 0;
}
