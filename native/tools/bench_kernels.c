/* Micro-benchmark of every kernel in the registry this CPU runs (or those SL_ISA_MASK allows),
 * one thread: spmm against the same ISA's gemm on MobileNet-like 1x1 shapes, depthwise on a
 * 3x3 plane, and the row kernels on transformer-sized rows. One JSON object per line;
 * benchmarks/bench_kernels.py runs and tabulates it. */
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
static float frand(void) { return (float)rnd(2000) / 1000.0f - 1.0f; }

/* 64-byte aligned, as the runtime's arena aligns every tensor: with malloc's 16 bytes, AVX-512 loads
 * split over two cache lines, which cost the Intel Xeon's gemm a sixth of its speed (not the runtime's). */
static float* random_floats(size_t n) {
  float* p = aligned_alloc(64, ((n + 1) * sizeof(float) + 63) / 64 * 64);
  if (p == NULL) abort();
  for (size_t i = 0; i < n; i++) p[i] = frand();
  return p;
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

typedef void (*run_fn)(const void* ctx);

/* Median seconds of `reps` timed runs after two warm-ups. */
static double median_time(run_fn fn, const void* ctx, int reps) {
  double t[101]; /* main allows 1..101 */
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

static void result(const sl_ukernel_t* k, const char* shape, double seconds, double work, const char* unit,
                   const char* extra) {
  printf("{\"family\": \"%s\", \"kernel\": \"%s\", \"isa\": %u, \"shape\": \"%s\", \"ms\": %.5f, \"%s\": %.3f%s}\n",
         sl_family_names[k->family], k->name, k->isa, shape, seconds * 1e3, unit, work / seconds / 1e9, extra);
  fflush(stdout);
}

/* --- spmm against gemm ------------------------------------------------------------------ */

typedef struct {
  const sl_ukernel_t* k;
  size_t rows, cols, pixels;
  const float *x, *panels;
  float* y;
} gemm_ctx_t;

static void run_gemm(const void* c) {
  const gemm_ctx_t* g = c;
  sl_minmax_t mm = {-1e30f, 1e30f};
  g->k->fn.gemm(g->pixels, g->rows, g->cols, g->x, g->pixels, NULL, g->panels, g->y, g->pixels,
                &(sl_matrix_out_t){.mm = mm});
}

/* gemm_nc on the same channel-major data as gemm. */
static void run_gemm_nc(const void* c) {
  const gemm_ctx_t* g = c;
  sl_minmax_t mm = {-1e30f, 1e30f};
  g->k->fn.gemm_nc(g->pixels, g->rows, g->cols, g->x, 1, g->pixels, g->panels, g->y, 1, g->pixels, &mm);
}

/* The same ISA's gemm_nc on a gemm shape, and its speed against gemm's. */
static void bench_nc(uint32_t gemm_isa, const gemm_ctx_t* shape_of, double gemm_seconds, const char* shape, int reps) {
  for (size_t i = 0; i < sl_ukernel_count; i++) {
    const sl_ukernel_t* k = &sl_ukernels[i];
    if (k->family != SL_FAMILY_gemm_nc || k->isa != gemm_isa) continue;
    gemm_ctx_t g = *shape_of;
    float* panels = malloc(sl_gemm_pack_size(g.rows, g.cols, k->rows) * sizeof(float));
    if (panels == NULL) abort();
    float* w = random_floats(g.rows * g.cols);
    sl_gemm_pack(w, NULL, g.rows, g.cols, k->rows, panels);
    g.k = k, g.panels = panels;
    double t = median_time(run_gemm_nc, &g, reps);
    char extra[64];
    snprintf(extra, sizeof(extra), ", \"speedup_vs_gemm\": %.3f", gemm_seconds / t);
    result(k, shape, t, 2.0 * g.rows * g.cols * g.pixels, "gflops", extra);
    free(w);
    free(panels);
  }
}

typedef struct {
  const sl_ukernel_t* k;
  sl_spmm_packed_t p;
  size_t pixels;
  const float* x;
  float* y;
} spmm_ctx_t;

static void run_spmm(const void* c) {
  const spmm_ctx_t* s = c;
  sl_minmax_t mm = {-1e30f, 1e30f};
  s->k->fn.spmm(s->pixels, s->p.blocks, s->x, s->p.values, s->p.x_offset, s->p.nz_start, s->p.out_row, s->y,
                s->pixels, &(sl_matrix_out_t){.mm = mm});
}

/* The dense layer's time, then each sparsity's, with whole r x 1 groups kept at random. */
static void bench_matrix(const sl_ukernel_t* gk, uint32_t isa, int reps) {
  /* pixels, out channels, in channels: MobileNetV2's 1x1 layers at 224x224, then ResNet-50's
   * (1x1, and 3x3 ones as the gemm their implicit convolution runs: 9 x in channels). */
  static const size_t shapes[][3] = {{12544, 16, 32}, {3136, 144, 24}, {3136, 24, 144}, {784, 192, 32},
                                     {784, 32, 192},  {196, 384, 64},  {196, 576, 96},  {49, 960, 160},
                                     {49, 160, 960},  {49, 1280, 320}, {3136, 256, 64}, {3136, 64, 576},
                                     {784, 128, 1152}, {196, 1024, 256}, {49, 2048, 512}};
  static const double sparsities[] = {0.5, 0.7, 0.8, 0.9, 0.95};
  for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
    size_t pixels = shapes[s][0], rows = shapes[s][1], cols = shapes[s][2];
    float* x = random_floats(cols * pixels);
    float* y = random_floats(rows * pixels);
    float* w = random_floats(rows * cols);
    float* panels = malloc(sl_gemm_pack_size(rows, cols, gk->rows) * sizeof(float));
    if (panels == NULL) abort();
    sl_gemm_pack(w, NULL, rows, cols, gk->rows, panels);
    gemm_ctx_t g = {gk, rows, cols, pixels, x, panels, y};
    double tg = median_time(run_gemm, &g, reps);
    char shape[64];
    snprintf(shape, sizeof(shape), "%zux%zux%zu", pixels, rows, cols);
    result(gk, shape, tg, 2.0 * rows * cols * pixels, "gflops", ", \"sparsity\": 0, \"r\": 0");
    bench_nc(gk->isa, &g, tg, shape, reps);
    for (size_t i = 0; i < sl_ukernel_count; i++) {
      const sl_ukernel_t* k = &sl_ukernels[i];
      uint32_t r = k->rows;
      if (k->family != SL_FAMILY_spmm || k->isa != gk->isa || (k->isa & ~isa) != 0 || rows % r != 0) continue;
      for (size_t d = 0; d < sizeof(sparsities) / sizeof(sparsities[0]); d++) {
        uint32_t groups = (uint32_t)(rows / r);
        uint32_t* row_ptr = malloc((groups + 1) * sizeof(uint32_t));
        uint32_t* col_idx = malloc((size_t)groups * cols * sizeof(uint32_t));
        float* values = malloc((size_t)groups * cols * r * sizeof(float));
        if (row_ptr == NULL || col_idx == NULL || values == NULL) abort();
        uint32_t e = 0;
        row_ptr[0] = 0;
        for (uint32_t gi = 0; gi < groups; gi++) {
          uint32_t kept = rnd((uint32_t)cols); /* one column always: a group of none would time no work */
          for (uint32_t c = 0; c < cols; c++) {
            if (c != kept && rnd(10000) < (uint32_t)(sparsities[d] * 10000)) continue;
            col_idx[e] = c;
            for (uint32_t j = 0; j < r; j++) values[(size_t)e * r + j] = w[(gi * r + j) * cols + c];
            e++;
          }
          row_ptr[gi + 1] = e;
        }
        sl_group_sparse_f32_t gs = {(uint32_t)rows, (uint32_t)cols, r, groups, row_ptr, col_idx, values, NULL};
        spmm_ctx_t c = {k, {r, 0, 0, NULL, NULL, NULL, NULL}, pixels, x, y};
        size_t nonzeros, nvalues;
        sl_spmm_pack_count(&gs, r, &c.p.blocks, &c.p.tail_rows, &nonzeros, &nvalues);
        c.p.nz_start = malloc((c.p.blocks + c.p.tail_rows + 1) * sizeof(uint32_t));
        c.p.x_offset = malloc((nonzeros + 1) * sizeof(uint32_t));
        c.p.values = malloc((nvalues + 1) * sizeof(float));
        c.p.out_row = malloc(rows * sizeof(uint32_t));
        if (c.p.nz_start == NULL || c.p.x_offset == NULL || c.p.values == NULL || c.p.out_row == NULL) abort();
        sl_spmm_pack(&gs, NULL, pixels, &c.p);
        double ts = median_time(run_spmm, &c, reps);
        char extra[128];
        snprintf(extra, sizeof(extra), ", \"sparsity\": %.2f, \"r\": %u, \"speedup_vs_gemm\": %.3f", sparsities[d], r,
                 tg / ts);
        result(k, shape, ts, 2.0 * (double)e * r * pixels, "gflops", extra);
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
}

/* --- depthwise and row kernels ---------------------------------------------------------- */

typedef struct {
  const sl_ukernel_t* k;
  size_t n, rows;
  const float *x, *b;
  float* y;
  sl_activation_t act;
  sl_dwconv_row_t taprows[3];
  sl_dwconv_taps_t taps;
  float* scratch; /* dwconv_nc's */
  sl_bilinear_cols_t cols;
} row_ctx_t;

static void run_classifier(const void* c) {
  const row_ctx_t* r = c;
  sl_minmax_t mm = {-1e30f, 1e30f};
  r->k->fn.gemm_nc(1, r->rows, r->n, r->x, r->n, 1, r->b, r->y, r->rows, 1, &mm);
}
static void run_dwconv(const void* c) {
  const row_ctx_t* r = c;
  sl_minmax_t mm = {0.0f, 6.0f};
  r->k->fn.dwconv(r->rows, r->n, 112, r->x, r->n + 2 * 112 + 2, r->b, &r->taps, r->y, r->n, &mm);
}
/* MobileNet's 112x112 -> 56x56 3x3 stride-2 depthwise layer (the kernels take their channel count apart). */
static const sl_conv2d_shape_t mobilenet_s2 = {16, 112, 112, 16, 56, 56, 3, 3, 2, 2, 1, 1, 1, 1, 16};
static void run_dwconv_s2(const void* c) { /* r->rows channels of it */
  const row_ctx_t* r = c;
  sl_minmax_t mm = {0.0f, 6.0f};
  r->k->fn.dwconv_s2(r->rows, &mobilenet_s2, r->x, r->b, r->y, &mm);
}
static void run_dwconv_nc(const void* c) { /* r->rows channels of it, channels along the vectors */
  const row_ctx_t* r = c;
  sl_minmax_t mm = {0.0f, 6.0f};
  r->k->fn.dwconv_nc(r->rows, &mobilenet_s2, r->x, 112 * 112, r->b, r->y, 56 * 56, r->scratch, &mm);
}
static void run_unzip(const void* c) {
  const row_ctx_t* r = c;
  r->k->fn.unzip(r->rows, r->n, r->x, r->n, r->y, r->y + r->rows * r->n / 2, r->n / 2);
}
static void run_maxpool(const void* c) { /* r->rows planes of ResNet's 3x3 stride-2 pooling: its unpadded 55x55 windows */
  const row_ctx_t* r = c;
  for (size_t p = 0; p < r->rows; p++) r->k->fn.maxpool(55, 55, 3, 3, 2, r->x + p * 112 * 112, 112, 224, r->y + p * 56 * 56, 56);
}
/* r->rows source rows of 64 interpolated to 128 columns (a 2x upsampling, TFLite's half-pixel centers). */
static void run_bilinear_row(const void* c) {
  const row_ctx_t* r = c;
  for (size_t i = 0; i < r->rows; i++) r->k->fn.bilinear_row(128, r->x + i * 64, 64, &r->cols, r->y + i * 128);
}

/* Those columns packed for the kernel (int32s: 8 block bases, then 128 lo and 128 hi). */
static sl_bilinear_cols_t upsample_columns(int32_t* ints, float* frac) {
  int32_t lo[128], hi[128];
  float weight[128];
  for (int32_t o = 0; o < 128; o++) {
    const float src = ((float)o + 0.5f) * 0.5f - 0.5f;
    lo[o] = src < 0.0f ? 0 : (int32_t)src;
    hi[o] = lo[o] + 1 < 64 ? lo[o] + 1 : 63;
    weight[o] = src < 0.0f ? 0.0f : src - (float)lo[o];
  }
  sl_bilinear_pack(128, lo, hi, weight, ints, ints + 8, ints + 8 + 128, frac);
  return (sl_bilinear_cols_t){ints, ints + 8, ints + 8 + 128, frac};
}

static void run_vunary(const void* c) {
  const row_ctx_t* r = c;
  r->k->fn.vunary(&r->act, r->x, r->y, r->n * r->rows);
}
static void run_vbinary(const void* c) {
  const row_ctx_t* r = c;
  sl_minmax_t mm = {-1e30f, 1e30f};
  r->k->fn.vbinary(SL_BINARY_ADD, r->x, 1, r->b, 1, r->y, r->n * r->rows, &mm, NULL);
}
static void run_softmax(const void* c) {
  const row_ctx_t* r = c;
  for (size_t i = 0; i < r->rows; i++) r->k->fn.softmax(r->x + i * r->n, r->b, 0.125f, r->y + i * r->n, r->n);
}
static void run_layernorm(const void* c) {
  const row_ctx_t* r = c;
  for (size_t i = 0; i < r->rows; i++)
    r->k->fn.layernorm(r->x + i * r->n, r->n, 1e-5f, r->b, r->b, r->y + i * r->n);
}

/* Winograd transforms of 64 channels of a 56x56 map (its padded 58x58 planes), a row of tiles
 * per call, as ops/winograd.c runs them. */
static void run_winograd_in(const void* c) {
  const row_ctx_t* r = c;
  size_t m = r->k->rows, tiles = 56 / m;
  for (size_t row = 0; row < tiles; row++)
    r->k->fn.winograd_in(tiles, r->rows, r->x + row * m * 58, 58, 58 * 58, r->y, tiles * r->rows, tiles);
}
static void run_winograd_out(const void* c) {
  const row_ctx_t* r = c;
  size_t m = r->k->rows, tiles = 56 / m;
  sl_minmax_t mm = {0.0f, 6.0f};
  for (size_t row = 0; row < tiles; row++)
    r->k->fn.winograd_out(tiles, r->rows, r->x, tiles * r->rows, tiles, r->b, r->y + row * m * 56, 56, 56 * 56, m, 56,
                          &mm);
}

/* Elements per second (GElem/s; for gemm_nc, weights; Winograd: map pixels) on MobileNetV2's 1000 x 1280 classifier,
 * four of MobileNet's 112x112 3x3 depthwise planes read in place (outputs), four at stride 2
 * (outputs), sixteen at stride 2 with the channels along the vectors (outputs), the stride-2 column
 * split of 32 such planes' rows, a 2x bilinear upsampling's rows (outputs), MiniLM's 128 x 1536 GELU and 128 x 384 residual adds and layer
 * norms, and its 12 x 128 attention rows. */
static void bench_rows(const sl_ukernel_t* k, int reps) {
  row_ctx_t c = {k, 0, 0, NULL, NULL, NULL, {.type = SL_ACT_GELU}, {{0, 0}}, {0, NULL}, NULL, {NULL, NULL, NULL, NULL}};
  int32_t column_ints[8 + 2 * 128];
  float column_frac[128];
  run_fn fn = NULL;
  const char* shape = "";
  switch (k->family) {
    case SL_FAMILY_gemm_nc: c.n = 1280, c.rows = 1000, fn = run_classifier, shape = "1000x1280 classifier"; break;
    case SL_FAMILY_dwconv: /* in place: three rows of steps -1..1 */
      c.n = 112 * 112, c.rows = 4, fn = run_dwconv, shape = "4x112x112 3x3";
      for (uint32_t r = 0; r < 3; r++) c.taprows[r] = (sl_dwconv_row_t){r * 112 + 2, 0xe};
      c.taps = (sl_dwconv_taps_t){3, c.taprows};
      break;
    case SL_FAMILY_dwconv_s2: c.n = 56 * 56, c.rows = 4, fn = run_dwconv_s2, shape = "4x112x112 3x3 s2"; break;
    case SL_FAMILY_dwconv_nc: c.n = 56 * 56, c.rows = 16, fn = run_dwconv_nc, shape = "16x112x112 3x3 s2"; break;
    case SL_FAMILY_unzip: c.n = 112, c.rows = 112 * 32, fn = run_unzip, shape = "3584 rows of 112"; break;
    case SL_FAMILY_maxpool: c.n = 55 * 55, c.rows = 16, fn = run_maxpool, shape = "16x112x112 3x3 s2 (outputs)"; break;
    case SL_FAMILY_bilinear_row:
      c.n = 128, c.rows = 16 * 64, fn = run_bilinear_row, shape = "1024 rows of 64 -> 128 (outputs)";
      c.cols = upsample_columns(column_ints, column_frac);
      break;
    case SL_FAMILY_vunary: c.n = 1536, c.rows = 128, fn = run_vunary, shape = "128x1536 gelu"; break;
    case SL_FAMILY_vbinary: c.n = 384, c.rows = 128, fn = run_vbinary, shape = "128x384 add"; break;
    case SL_FAMILY_softmax: c.n = 128, c.rows = 12 * 128, fn = run_softmax, shape = "1536x128 masked"; break;
    case SL_FAMILY_layernorm: c.n = 384, c.rows = 128, fn = run_layernorm, shape = "128x384"; break;
    case SL_FAMILY_winograd_in: c.n = 56 * 56, c.rows = 64, fn = run_winograd_in, shape = "64x56x56 in"; break;
    case SL_FAMILY_winograd_out: c.n = 56 * 56, c.rows = 64, fn = run_winograd_out, shape = "64x56x56 out"; break;
    default: return;
  }
  size_t total = (c.n + 1) * (c.rows + k->rows) + 4 * 114; /* gemm_nc: padded panels in b; dwconv: planes */
  if (k->family == SL_FAMILY_dwconv_s2) total = 4 * 112 * 112;  /* its input planes */
  if (k->family == SL_FAMILY_dwconv_nc || k->family == SL_FAMILY_maxpool) total = 16 * 112 * 112;
  if (k->family == SL_FAMILY_winograd_in || k->family == SL_FAMILY_winograd_out) total = 64 * 58 * 58 + 64;
  sl_dwconv_nc_layout_t layout = {0, 0, 0, 0};
  if (k->family == SL_FAMILY_dwconv_nc && sl_dwconv_nc_layout(&mobilenet_s2, k->rows, &layout))
    c.scratch = random_floats(layout.floats);
  float* x = random_floats(total);
  float* b = random_floats(total);
  float* y = random_floats(total);
  if (k->family == SL_FAMILY_softmax) memset(b, 0, c.n * sizeof(float)); /* the additive mask */
  c.x = x, c.b = b, c.y = y;
  result(k, shape, median_time(fn, &c, reps), (double)c.n * c.rows, "gelem_per_s", "");
  free(x);
  free(b);
  free(y);
  free(c.scratch);
}

/* The FMA peak this core reaches, measured rather than derived from a clock: 12 independent
 * register-only chains cover latency x units on every current core; the best of several trials,
 * since a shared machine can only slow a trial down. A clock estimate from dependent
 * integer adds was wrong on Golden Cove, whose renamer folds add-immediate chains (10 "GHz"). */
#define PEAK_STEPS 500000L
#define PEAK_TRIALS 9
#define PEAK_CHAINS 12
#define PEAK_LOOP(vec, set1, fma, lanes)                                   \
  vec acc[PEAK_CHAINS];                                                    \
  const vec a = set1(0.999999f), b = set1(1e-7f);                          \
  for (int j = 0; j < PEAK_CHAINS; j++) acc[j] = set1((float)j);           \
  double seconds = 1e9;                                                    \
  for (int trial = 0; trial < PEAK_TRIALS; trial++) {                      \
    double t0 = now();                                                     \
    for (long i = 0; i < PEAK_STEPS; i++)                                  \
      for (int j = 0; j < PEAK_CHAINS; j++) acc[j] = fma(acc[j], a, b);    \
    const double elapsed = now() - t0;                                     \
    if (elapsed < seconds) seconds = elapsed;                              \
  }                                                                        \
  float sink[lanes];                                                       \
  for (int j = 1; j < PEAK_CHAINS; j++) acc[0] = fma(acc[0], a, acc[j]);  \
  memcpy(sink, &acc[0], sizeof(sink));                                     \
  peak_sink += sink[0];                                                    \
  return 2.0 * lanes * PEAK_CHAINS * (double)PEAK_STEPS / seconds / 1e9;

static volatile float peak_sink;

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static double peak_avx512(void) {
  PEAK_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
}
__attribute__((target("avx2,fma"))) static double peak_avx2(void) {
  PEAK_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
}
/* SSE2 has no FMA: its kernels multiply then add, two instructions per lane pair of FLOPs. */
static __m128 mul_add_sse2(__m128 x, __m128 y, __m128 z) { return _mm_add_ps(_mm_mul_ps(x, y), z); }
static double peak_sse2(void) { PEAK_LOOP(__m128, _mm_set1_ps, mul_add_sse2, 4) }
#elif defined(__aarch64__)
#include <arm_neon.h>
static float32x4_t fma_neon(float32x4_t x, float32x4_t y, float32x4_t z) { return vfmaq_f32(z, x, y); }
static double peak_neon(void) { PEAK_LOOP(float32x4_t, vdupq_n_f32, fma_neon, 4) }
#endif

static void print_peaks(uint32_t isa) {
  printf("{\"family\": \"machine\", \"peak_gflops\": {");
  const char* sep = "";
#if defined(__x86_64__)
  if (isa & SL_ISA_AVX512) printf("%s\"avx512\": %.2f", sep, peak_avx512()), sep = ", ";
  if (isa & SL_ISA_AVX2_FMA) printf("%s\"avx2\": %.2f", sep, peak_avx2()), sep = ", ";
  if (isa & SL_ISA_SSE2) printf("%s\"sse2\": %.2f", sep, peak_sse2()), sep = ", ";
#elif defined(__aarch64__)
  if (isa & SL_ISA_NEON) printf("%s\"neon\": %.2f", sep, peak_neon()), sep = ", ";
#endif
  (void)isa;
  (void)sep;
  printf("}}\n");
}

int main(int argc, char** argv) {
  /* Timed runs per kernel, the median kept (at most 101): a positive count, or the usage. */
  char* end = NULL;
  long reps = argc > 1 ? strtol(argv[1], &end, 10) : 31;
  if (argc > 2 || (argc > 1 && (end == argv[1] || *end != '\0' || reps < 1 || reps > 101))) {
    fprintf(stderr, "usage: bench_kernels [REPS]  (timed runs per kernel, 1 to 101; default 31)\n");
    return 2;
  }
  uint32_t isa = sl_cpu_isa();
  if (getenv("SL_ISA_MASK") != NULL) isa &= (uint32_t)strtoul(getenv("SL_ISA_MASK"), NULL, 0);
  print_peaks(isa);
  for (size_t i = 0; i < sl_ukernel_count; i++) {
    const sl_ukernel_t* k = &sl_ukernels[i];
    if ((k->isa & ~isa) != 0) continue;
    if (k->family == SL_FAMILY_gemm) bench_matrix(k, isa, (int)reps);
    else if (k->family != SL_FAMILY_spmm) bench_rows(k, (int)reps);
  }
  return 0;
}
