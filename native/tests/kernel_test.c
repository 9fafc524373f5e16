/* The kernel registry: that it is complete (every ISA of this build has every family, and
 * every r spmm offers anywhere), and that every kernel this CPU can run matches the plain C
 * references on random shapes, densities (including empty rows and empty layers), group sizes,
 * permutations, tails and clamps, with NaN and infinities where the reference defines them.
 * The matrix kernels' inputs lie between unreadable pages (on Linux): a read outside them faults.
 * Prints "N passed, N failed"; exits non-zero on any failure. */
#if defined(__linux__)
#define _DEFAULT_SOURCE /* mmap's MAP_ANONYMOUS */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

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

/* n bytes between two unreadable pages (Linux), starting right after the first or ending right
 * before the second: a kernel that reads outside its input faults. Elsewhere plain malloc. */
typedef struct {
  void* p;
  void* map;
  size_t map_len;
} guarded_t;

static guarded_t guarded_alloc_bytes(size_t n, bool at_end) {
  guarded_t g = {NULL, NULL, 0};
#if defined(__linux__)
  size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = (n + page - 1) / page * page;
  g.map_len = bytes + 2 * page;
  char* m = mmap(NULL, g.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) != 0 || mprotect(m + page + bytes, page, PROT_NONE) != 0)
    abort();
  g.map = m;
  g.p = at_end ? m + page + bytes - n : m + page;
#else
  (void)at_end;
  g.p = xmalloc(n);
#endif
  return g;
}

static void guarded_free(guarded_t* g) {
#if defined(__linux__)
  munmap(g->map, g->map_len);
#else
  free(g->p);
#endif
}

static void fail(const char* kernel, const char* what) {
  failed++;
  fprintf(stderr, "FAIL %s: %s\n", kernel, what);
}

/* Each output against the reference: NaN where it has NaN, the same infinity where it has
 * one, else within a tolerance scaled by the size of what the output sums. */
static void compare_within(const char* kernel, const char* shape, const float* got, const float* want, size_t n,
                           float scale, float tolerance) {
  for (size_t i = 0; i < n; i++) {
    bool ok;
    if (isnan(want[i])) ok = isnan(got[i]);
    else if (isinf(want[i])) ok = got[i] == want[i];
    else ok = fabsf(got[i] - want[i]) <= tolerance * (scale > fabsf(want[i]) ? scale : fabsf(want[i])) + 1e-6f;
    if (ok) continue;
    char what[256];
    snprintf(what, sizeof(what), "%s: element %zu is %g, reference %g", shape, i, (double)got[i], (double)want[i]);
    fail(kernel, what);
    return;
  }
  passed++;
}

static void compare(const char* kernel, const char* shape, const float* got, const float* want, size_t n,
                    float scale) {
  compare_within(kernel, shape, got, want, n, scale, 1e-5f);
}

/* Sets a few elements of x to NaN (and to infinities when `infinities`). */
static void poison(float* x, size_t n, bool infinities) {
  static const float bad[3] = {NAN, INFINITY, -INFINITY};
  for (int i = 0; i < 3; i++) x[rnd((uint32_t)n)] = bad[infinities ? rnd(3) : 0];
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

/* --- registry ------------------------------------------------------------------------ */

static bool has_kernel(sl_family_t family, uint32_t isa, uint32_t rows) {
  for (size_t i = 0; i < sl_ukernel_count; i++) {
    const sl_ukernel_t* k = &sl_ukernels[i];
    if (k->family == family && k->isa == isa && (rows == 0 || k->rows == rows)) return true;
  }
  return false;
}

/* Every ISA of this build (any kernel's, and every bit this CPU reports) has a kernel of every
 * family, and of every rows value its family selects by anywhere (spmm's r, Winograd's m); spmm
 * covers the file's r in {1, 2, 4, 8}. */
static void test_registry_complete(void) {
  uint32_t isas[32], count = 0;
  for (size_t i = 0; i <= sl_ukernel_count; i++) {
    uint32_t isa = i < sl_ukernel_count ? sl_ukernels[i].isa : SL_ISA_SCALAR;
    bool seen = false;
    for (uint32_t j = 0; j < count; j++) seen |= isas[j] == isa;
    if (!seen && count < 32) isas[count++] = isa;
  }
  for (uint32_t bit = 1; bit != 0; bit <<= 1) {
    bool seen = false;
    for (uint32_t j = 0; j < count; j++) seen |= isas[j] == bit;
    if ((sl_cpu_isa() & bit) && !seen && count < 32) isas[count++] = bit;
  }
  for (int f = 0; f < SL_FAMILY_COUNT; f++) {
    uint32_t rows_seen = 0; /* bit r: some ISA has rows == r */
    for (size_t i = 0; i < sl_ukernel_count; i++)
      if (sl_ukernels[i].family == (sl_family_t)f && sl_ukernels[i].rows < 32) rows_seen |= 1u << sl_ukernels[i].rows;
    if (f == SL_FAMILY_spmm) rows_seen |= (1u << 1) | (1u << 2) | (1u << 4) | (1u << 8);
    const bool f16 = strncmp(sl_family_names[f], "f16_", 4) == 0;
    for (uint32_t j = 0; j < count; j++) {
      char what[160];
      /* In-order kernels replace some of NEON's; selection falls back to NEON for the others. */
      if (isas[j] & SL_ISA_NEON_INORDER) {
        if (has_kernel((sl_family_t)f, isas[j], 0) && !has_kernel((sl_family_t)f, isas[j] & ~SL_ISA_NEON_INORDER, 0))
          fail(sl_family_names[f], "an in-order kernel without a NEON one to fall back to");
        continue;
      }
      /* fp16 ISAs have the f16 families and nothing else; fp32 falls back to their NEON twins */
      const bool wants = f16 == ((isas[j] & SL_ISA_NEON_FP16) != 0);
      if (!wants && has_kernel((sl_family_t)f, isas[j], 0)) {
        snprintf(what, sizeof(what), "a kernel for ISA bits 0x%x, whose precision is not this family's", isas[j]);
        fail(sl_family_names[f], what);
      }
      if (!wants) continue;
      if (!has_kernel((sl_family_t)f, isas[j], 0)) {
        snprintf(what, sizeof(what), "no kernel for ISA bits 0x%x, which this build targets", isas[j]);
        fail(sl_family_names[f], what);
        continue;
      }
      for (uint32_t r = 1; sl_family_rows_select[f] && r < 32; r++) {
        if (!(rows_seen & (1u << r)) || has_kernel((sl_family_t)f, isas[j], r)) continue;
        snprintf(what, sizeof(what), "ISA bits 0x%x has no kernel for r = %u, which its peers have", isas[j], r);
        fail(sl_family_names[f], what);
      }
    }
  }
  for (size_t i = 0; i < sl_ukernel_count; i++) { /* names say what the entry is */
    char prefix[64];
    const char* family = sl_family_names[sl_ukernels[i].family];
    snprintf(prefix, sizeof(prefix), "sl_%s%s_ukernel_", strncmp(family, "f16_", 4) == 0 ? "" : "f32_", family);
    if (strncmp(sl_ukernels[i].name, prefix, strlen(prefix)) != 0) fail(sl_ukernels[i].name, "named for another family");
  }
  passed++;
}

/* /proc/cpuinfo's "CPU part" lines, and the gemm each CPU gets: the in-order kernel only where every
 * core is an A53/A55-class one (a phone's big cores keep NEON's). */
static void test_cpu_parts(void) {
#define CORE(impl, part) "processor\t: 0\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm crc32 cpuid\n" \
                         "CPU implementer\t: " impl "\nCPU architecture: 8\nCPU variant\t: 0x0\n"          \
                         "CPU part\t: " part "\nCPU revision\t: 4\n\n"
  static const struct {
    const char* what;
    const char* text;
    int in_order;
  } cases[] = {
      {"Raspberry Pi 3 (4 x A53)",
       CORE("0x41", "0xd03") CORE("0x41", "0xd03") CORE("0x41", "0xd03") CORE("0x41", "0xd03"), 1},
      {"4 x A55", CORE("0x41", "0xd05") CORE("0x41", "0xd05") CORE("0x41", "0xd05") CORE("0x41", "0xD05"), 1},
      {"A55 + A76 phone", CORE("0x41", "0xd05") CORE("0x41", "0xd05") CORE("0x41", "0xd0b") CORE("0x41", "0xd0b"), 0},
      {"A76 first", CORE("0x41", "0xd0b") CORE("0x41", "0xd05"), 0},
      {"Raspberry Pi 4 (A72)", CORE("0x41", "0xd08"), 0},
      {"Kryo 385 (Silver + Gold)", CORE("0x51", "0x803") CORE("0x51", "0x803") CORE("0x51", "0x802"), 0},
      {"Kryo Silver only", CORE("0x51", "0x805") CORE("0x51", "0x801"), 1},
      {"an Arm part number from another implementer", CORE("0x51", "0xd05"), 0},
      {"a part before any implementer", "CPU part\t: 0xd05\n", 0},
      {"no trailing newline", "CPU implementer : 0x41\nCPU part : 0xd05", 1},
      {"x86", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n\n", -1},
      {"empty", "", -1},
      {"no value", "CPU implementer\t: 0x41\nCPU part\t:\nCPU part\t: zzz\nCPU part 0xd05\nCPU part\t: 0x\n", -1},
  };
#undef CORE
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const int got = sl_cpuinfo_in_order(cases[i].text);
    if (got != cases[i].in_order) {
      char what[160];
      snprintf(what, sizeof(what), "%s: in_order %d, want %d", cases[i].what, got, cases[i].in_order);
      fail("sl_cpuinfo_in_order", what);
      continue;
    }
#if SL_ARCH_ARM64
    const uint32_t isa = SL_ISA_NEON | (got == 1 ? SL_ISA_NEON_INORDER : 0u);
    const sl_ukernel_t* gemm = sl_ukernel_select(isa, SL_FAMILY_gemm, 0);
    const sl_ukernel_t* spmm = sl_ukernel_select(isa, SL_FAMILY_spmm, 4);
    if (gemm == NULL || spmm == NULL || (strstr(gemm->name, "__neon_inorder") != NULL) != (got == 1) ||
        spmm->isa != SL_ISA_NEON) {
      fail(cases[i].what, "selected the wrong gemm or spmm for its cores");
      continue;
    }
#endif
    passed++;
  }
}

/* --- matrix kernels ---------------------------------------------------------------------
 * spmm, gemm, gemm_nc and depthwise tests serve their fp16 twins too (f16_ families: halves in and out).
 * There the inputs, weights and biases are rounded to half first; the reference computes on
 * those in float (or double) and rounds its outputs to half where the kernel stores. The kernels
 * also round every partial sum, so they agree within a tolerance of the half's precision (2^-11)
 * times what the output sums. NaN and infinities go into fp32 inputs only. */
#define F16_TOLERANCE 1e-3f

static float round_f16(float v) { return sl_f16_to_f32(sl_f16_from_f32(v)); }

static void round_f16_n(float* x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = round_f16(x[i]);
}

static bool is_f16(const sl_ukernel_t* k) { return strncmp(sl_family_names[k->family], "f16_", 4) == 0; }

/* Bytes per element of k's inputs and outputs. */
static size_t elem_size(bool half) { return half ? sizeof(sl_f16) : sizeof(float); }

/* n floats as the kernel reads them: the same floats, or halves (xf already rounded to half). */
static void store_as(bool half, const float* xf, void* x, size_t n) {
  if (half) sl_f16_from_f32_n(xf, x, n);
  else memcpy(x, xf, n * sizeof(float));
}

/* n of the kernel's outputs as floats. */
static void load_as(bool half, const void* y, float* yf, size_t n) {
  if (half) sl_f16_to_f32_n(y, yf, n);
  else memcpy(yf, y, n * sizeof(float));
}

/* n random floats in [-1, 1], rounded to half for an fp16 kernel. */
static void random_floats(bool half, float* x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = half ? round_f16(frand()) : frand();
}

/* The kernel's outputs (as floats) against the reference, rounded to half for an fp16 kernel. */
static void compare_as(bool half, const char* kernel, const char* shape, const float* got, float* want, size_t n,
                       float scale) {
  if (half) round_f16_n(want, n);
  compare_within(kernel, shape, got, want, n, scale, half ? F16_TOLERANCE : 1e-5f);
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

/* Runs spmm kernel k (tail rows on its ISA's r = 1 kernel, as the runtime does) on packed w,
 * whose values the kernel reads as floats or halves. With in_place, mm's residual r0 [rows][pixels]
 * is first copied into y and read from there. */
static void run_spmm(const sl_ukernel_t* k, const sl_spmm_packed_t* p, const void* values, size_t pixels,
                     const void* x, void* y, const sl_matrix_out_t* stage, bool in_place) {
  const bool half = is_f16(k);
  const sl_ukernel_t* tail = sl_ukernel_select(k->isa, k->family, 1);
  const uint32_t b = p->blocks;
  const size_t start = sl_spmm_values_start(p, b), rows = (size_t)p->blocks * p->r + p->tail_rows;
  sl_matrix_out_t own = *stage;
  const sl_matrix_out_t* mm = &own;
  if (in_place) {
    memcpy(y, stage->residual, rows * pixels * sizeof(float));
    own.residual = y;
  } else
    memset(y, 0xff, rows * pixels * elem_size(half)); /* NaN: each written */
  if (half) {
    k->fn.f16_spmm(pixels, p->blocks, x, values, p->x_offset, p->nz_start, p->out_row, y, pixels, mm);
    tail->fn.f16_spmm(pixels, p->tail_rows, x, (const sl_f16*)values + start, p->x_offset + p->nz_start[b],
                      p->nz_start + b, p->out_row + (size_t)b * p->r, y, pixels, mm);
  } else {
    k->fn.spmm(pixels, p->blocks, x, values, p->x_offset, p->nz_start, p->out_row, y, pixels, mm);
    tail->fn.spmm(pixels, p->tail_rows, x, (const float*)values + start, p->x_offset + p->nz_start[b],
                  p->nz_start + b, p->out_row + (size_t)b * p->r, y, pixels, mm);
  }
}

static void test_spmm(const sl_ukernel_t* k) {
  /* The portable kernel of the same r packs alike (it drops the same all-zero columns), so it
   * gives the NaN and infinities every ISA must give. */
  const sl_ukernel_t* portable = sl_ukernel_select(SL_ISA_SCALAR, SL_FAMILY_spmm, k->rows);
  const bool half = is_f16(k);
  for (int trial = 0; trial < 60; trial++) {
    uint32_t fr = k->rows * (1u << rnd(k->rows < 8 ? 2 : 1)); /* file groups of r or 2r */
    uint32_t rows = 1 + rnd(70), cols = 1 + rnd(90);
    size_t pixels = trial % 6 == 5 ? 1 : 1 + rnd(3 * k->pixels + 5); /* one pixel: FC over a token */
    float density = trial % 10 == 0 ? 0.0f : (float)rnd(1001) / 1000.0f;
    bool nonfinite = !half && trial % 4 == 3;
    sl_group_sparse_f32_t w = random_sparse(rows, cols, fr, density);
    if (half) round_f16_n((float*)w.values, (size_t)w.row_ptr[w.group_rows] * fr);
    float* bias = xmalloc(rows * sizeof(float));
    random_floats(half, bias, rows);
    bool with_bias = rnd(4) != 0;
    float* xf = xmalloc((size_t)cols * pixels * sizeof(float));
    random_floats(half, xf, (size_t)cols * pixels);
    if (nonfinite) poison(xf, (size_t)cols * pixels, true);
    guarded_t xg = guarded_alloc_bytes((size_t)cols * pixels * elem_size(half), trial % 2 == 1);
    store_as(half, xf, xg.p, (size_t)cols * pixels);
    sl_activation_t act;
    /* fp32, trials 3 and 4 of every 5: a residual (4: read from y itself), then on 4 PRELU (one
     * slope per row, or one shared) */
    sl_matrix_out_t out = {.residual = NULL};
    random_clamp(&act, &out.mm);
    float* slopes = xmalloc(rows * sizeof(float));
    random_floats(false, slopes, rows);
    float* y0 = xmalloc(rows * pixels * sizeof(float));
    random_floats(false, y0, rows * pixels);
    const bool in_place = !half && trial % 5 == 4;
    if (!half && trial % 5 >= 3) out.residual = y0;
    if (in_place) {
      out.slopes = slopes;
      out.slope_step = trial % 10 == 4 ? 0 : 1;
    }
    float* want = xmalloc(rows * pixels * sizeof(float));
    void* got = xmalloc(rows * pixels * sizeof(float));
    float* gotf = xmalloc(rows * pixels * sizeof(float));

    sl_spmm_packed_t p = {k->rows, 0, 0, NULL, NULL, NULL, NULL};
    size_t nonzeros, values;
    sl_spmm_pack_count(&w, k->rows, &p.blocks, &p.tail_rows, &nonzeros, &values);
    p.nz_start = xmalloc((p.blocks + p.tail_rows + 1) * sizeof(uint32_t));
    p.x_offset = xmalloc(nonzeros * sizeof(uint32_t));
    p.values = xmalloc(values * sizeof(float));
    p.out_row = xmalloc(rows * sizeof(uint32_t));
    sl_spmm_pack(&w, with_bias ? bias : NULL, pixels, &p);
    void* kernel_values = xmalloc(values * elem_size(half));
    store_as(half, p.values, kernel_values, values);
    if (nonfinite)
      run_spmm(portable, &p, p.values, pixels, xf, want, &out, in_place);
    else if (!half) { /* the sum, then y0, the clamp and PRELU as vbinary's reference applies them */
      const sl_activation_t none = {.type = SL_ACT_NONE};
      sl_f32_spmm_ref(&w, with_bias ? bias : NULL, pixels, xf, want, &none);
      for (size_t o = 0; o < rows; o++)
        for (size_t q = 0; q < pixels; q++) {
          const float r = out.residual != NULL ? y0[o * pixels + q] : 0.0f;
          float v = sl_activation_scalar(&act, want[o * pixels + q] + r);
          if (out.slopes != NULL && !(v > 0.0f)) v *= slopes[o * out.slope_step];
          want[o * pixels + q] = v;
        }
    } else
      sl_f32_spmm_ref(&w, with_bias ? bias : NULL, pixels, xf, want, &act);
    run_spmm(k, &p, kernel_values, pixels, xg.p, got, &out, in_place);
    load_as(half, got, gotf, rows * pixels);
    char shape[128];
    snprintf(shape, sizeof(shape), "rows=%u cols=%u pixels=%zu r=%u density=%.3f%s%s%s", rows, cols, pixels, fr,
             (double)density, nonfinite ? " with NaN/inf" : "",
             out.residual == NULL ? "" : in_place ? " residual in y" : " residual", out.slopes != NULL ? " prelu" : "");
    compare_as(half, k->name, shape, gotf, want, rows * pixels, (float)cols);
    free(p.nz_start);
    free(p.x_offset);
    free(p.values);
    free(p.out_row);
    free(kernel_values);
    free(bias);
    free(xf);
    guarded_free(&xg);
    free(want);
    free(got);
    free(gotf);
    free(slopes);
    free(y0);
    free_sparse(&w);
  }
}

/* A random dense layer of rows x cols over xc [cols][pixels]: its weights (rounded to half when
 * `half`) packed for kernel k, a random clamp in mm, and the reference outputs [rows][pixels]. */
/* With `out` (the output stage, NULL for none), y0 [rows][pixels] is its residual's values. */
static float* random_dense_layer(const sl_ukernel_t* k, bool half, size_t rows, size_t cols, size_t pixels,
                                 const float* xc, float** packed, sl_minmax_t* mm, const sl_matrix_out_t* out,
                                 const float* y0) {
  float* w = xmalloc(rows * cols * sizeof(float));
  float* bias = xmalloc(rows * sizeof(float));
  random_floats(half, w, rows * cols);
  random_floats(half, bias, rows);
  sl_activation_t act;
  random_clamp(&act, mm);
  float* want = xmalloc(rows * pixels * sizeof(float));
  *packed = xmalloc(sl_gemm_pack_size(rows, cols, k->rows) * sizeof(float));
  if (out == NULL)
    sl_f32_gemm_ref(w, bias, rows, cols, pixels, xc, want, &act);
  else { /* the sum, then y0, the clamp and PRELU as vbinary's reference applies them */
    const sl_activation_t none = {.type = SL_ACT_NONE};
    sl_f32_gemm_ref(w, bias, rows, cols, pixels, xc, want, &none);
    for (size_t o = 0; o < rows; o++)
      for (size_t p = 0; p < pixels; p++) {
        const float r = out->residual != NULL ? y0[o * pixels + p] : 0.0f;
        float v = sl_activation_scalar(&act, want[o * pixels + p] + r);
        if (out->slopes != NULL && !(v > 0.0f)) v *= out->slopes[o * out->slope_step];
        want[o * pixels + p] = v;
      }
  }
  sl_gemm_pack(w, bias, rows, cols, k->rows, *packed);
  free(w);
  free(bias);
  return want;
}

/* Columns at a stride, and (odd trials) at offsets that overlap and repeat, as an implicit
 * convolution's taps do; every eighth trial over up to three column chunks (matrix.h's
 * SL_GEMM_L1_BYTES / 4 / pixels per tile columns each), and every eighth ends a few pixels past
 * whole tiles. */
static void test_gemm(const sl_ukernel_t* k) {
  const bool half = is_f16(k);
  for (int trial = 0; trial < 80; trial++) {
    size_t rows = 1 + rnd(30), pixels = 1 + rnd(3 * k->pixels + 5);
    size_t cols = 1 + (trial % 8 >= 6 ? rnd(3 * 8192 / k->pixels) : rnd(70));
    size_t x_stride = pixels + rnd(9), y_stride = pixels + rnd(9);
    if (trial % 8 == 4) { /* many panels over deep columns 4 KB apart: the packed-tile path where an ISA has it */
      rows = 8 * k->rows + rnd(3 * k->rows + 3);
      cols = 32 + rnd(60);
      pixels = k->pixels + rnd(2 * k->pixels + 5);
      x_stride = 4096 / elem_size(half);
      y_stride = pixels + rnd(9);
    }
    if (trial % 8 == 5) { /* whole tiles and 1-4 pixels more (a 14x14 map): the row tail where an ISA has it */
      rows = 1 + rnd(5 * k->rows);
      pixels = k->pixels * (1 + rnd(3)) + 1 + rnd(4);
      x_stride = pixels + rnd(9);
      y_stride = pixels + rnd(9);
    }
    uint32_t* x_offset = trial % 2 == 1 ? xmalloc(cols * sizeof(uint32_t)) : NULL;
    for (size_t c = 0; x_offset != NULL && c < cols; c++) x_offset[c] = rnd((uint32_t)(cols * x_stride - pixels + 1));
    guarded_t xg = guarded_alloc_bytes(cols * x_stride * elem_size(half), trial % 4 >= 2);
    float* xf = xmalloc(cols * x_stride * sizeof(float));
    float* xc = xmalloc(cols * pixels * sizeof(float));
    random_floats(half, xf, cols * x_stride);
    if (!half && trial % 4 == 3) poison(xf, cols * x_stride, true);
    store_as(half, xf, xg.p, cols * x_stride);
    for (size_t c = 0; c < cols; c++)
      memcpy(xc + c * pixels, xf + (x_offset != NULL ? x_offset[c] : c * x_stride), pixels * sizeof(float));
    float* packed;
    sl_minmax_t mm;
    /* fp32, trials 3 and 4 of every 5: a residual at y's strides (4: y itself), then on 4 PRELU (one
     * slope per row, or one shared) */
    sl_matrix_out_t out = {.residual = NULL};
    float* slopes = xmalloc(rows * sizeof(float));
    random_floats(false, slopes, rows);
    float* y0 = xmalloc(rows * pixels * sizeof(float));
    random_floats(false, y0, rows * pixels);
    float* residual = xmalloc(rows * y_stride * sizeof(float));
    for (size_t r = 0; r < rows; r++) memcpy(residual + r * y_stride, y0 + r * pixels, pixels * sizeof(float));
    const bool in_place = !half && trial % 5 == 4;
    if (!half && trial % 5 >= 3) out.residual = residual;
    if (in_place) {
      out.slopes = slopes;
      out.slope_step = trial % 10 == 4 ? 0 : 1;
    }
    float* want = random_dense_layer(k, half, rows, cols, pixels, xc, &packed, &mm, half ? NULL : &out, y0);
    out.mm = mm;
    size_t packed_n = sl_gemm_pack_size(rows, cols, k->rows);
    void* kernel_packed = xmalloc(packed_n * elem_size(half));
    store_as(half, packed, kernel_packed, packed_n);
    const float guard = half ? round_f16(12345.0f) : 12345.0f;
    float* gotf = xmalloc(rows * y_stride * sizeof(float));
    for (size_t i = 0; i < rows * y_stride; i++) gotf[i] = guard;
    for (size_t r = 0; r < rows && in_place; r++) memcpy(gotf + r * y_stride, y0 + r * pixels, pixels * sizeof(float));
    void* got = xmalloc(rows * y_stride * sizeof(float));
    store_as(half, gotf, got, rows * y_stride);
    if (in_place) out.residual = got;
    if (half) k->fn.f16_gemm(pixels, rows, cols, xg.p, x_stride, x_offset, kernel_packed, got, y_stride, &out);
    else k->fn.gemm(pixels, rows, cols, xg.p, x_stride, x_offset, kernel_packed, got, y_stride, &out);
    load_as(half, got, gotf, rows * y_stride);
    float* compact = xmalloc(rows * pixels * sizeof(float));
    bool gaps_intact = true;
    for (size_t r = 0; r < rows; r++) {
      memcpy(compact + r * pixels, gotf + r * y_stride, pixels * sizeof(float));
      for (size_t p = pixels; p < y_stride; p++) gaps_intact &= gotf[r * y_stride + p] == guard;
    }
    char shape[128];
    snprintf(shape, sizeof(shape), "rows=%zu cols=%zu pixels=%zu strides=%zu/%zu%s%s%s", rows, cols, pixels,
             x_stride, y_stride, x_offset != NULL ? " offsets" : "",
             out.residual == NULL ? "" : in_place ? " residual in y" : " residual", out.slopes != NULL ? " prelu" : "");
    compare_as(half, k->name, shape, compact, want, rows * pixels, (float)cols);
    if (!gaps_intact) fail(k->name, "wrote past the pixels");
    guarded_free(&xg);
    free(xf);
    free(xc);
    free(want);
    free(got);
    free(gotf);
    free(packed);
    free(kernel_packed);
    free(compact);
    free(x_offset);
    free(slopes);
    free(y0);
    free(residual);
  }
}

/* Token-major (x[p][c], y[p][o]) and channel-major (x[c][p], y[o][p]) data, with padded strides. */
static void test_gemm_nc(const sl_ukernel_t* k) {
  const bool half = is_f16(k);
  for (int trial = 0; trial < 80; trial++) {
    /* Wide layers run their columns in chunks, the partial sums kept in y: up to 10000 columns
     * chunk on every ISA. */
    bool big = trial % 10 == 9, wide = trial % 10 == 8, token_major_in = trial % 2 == 0, token_major_out = trial % 4 < 2;
    size_t rows = 1 + rnd(big ? 1100 : 3 * k->rows), cols = wide ? 5000 + rnd(5000) : 1 + rnd(big ? 1300 : 70);
    size_t pixels = big ? 1 + rnd(3) : 1 + rnd(3 * k->pixels + 5);
    size_t x_pixel_stride = token_major_in ? cols + rnd(5) : 1, x_k_stride = token_major_in ? 1 : pixels + rnd(5);
    size_t y_pixel_stride = token_major_out ? rows + rnd(5) : 1, y_channel_stride = token_major_out ? 1 : pixels + rnd(5);
    size_t x_size = token_major_in ? pixels * x_pixel_stride : cols * x_k_stride;
    size_t y_size = token_major_out ? pixels * y_pixel_stride : rows * y_channel_stride;
    float* xf = xmalloc(x_size * sizeof(float));
    float* xc = xmalloc(cols * pixels * sizeof(float)); /* [c][p], as the reference takes it */
    random_floats(half, xf, x_size);
    if (!half && trial % 8 == 3) poison(xf, x_size, true);
    void* x = xmalloc(x_size * elem_size(half));
    store_as(half, xf, x, x_size);
    for (size_t c = 0; c < cols; c++)
      for (size_t p = 0; p < pixels; p++) xc[c * pixels + p] = xf[p * x_pixel_stride + c * x_k_stride];
    float* packed;
    sl_minmax_t mm;
    float* want = random_dense_layer(k, half, rows, cols, pixels, xc, &packed, &mm, NULL, NULL);
    size_t packed_n = sl_gemm_pack_size(rows, cols, k->rows);
    void* kernel_packed = xmalloc(packed_n * elem_size(half));
    store_as(half, packed, kernel_packed, packed_n);
    const float guard = half ? round_f16(12345.0f) : 12345.0f;
    float* gotf = xmalloc(y_size * sizeof(float));
    for (size_t i = 0; i < y_size; i++) gotf[i] = guard;
    void* got = xmalloc(y_size * elem_size(half));
    store_as(half, gotf, got, y_size);
    if (half)
      k->fn.f16_gemm_nc(pixels, rows, cols, x, x_pixel_stride, x_k_stride, kernel_packed, got, y_pixel_stride,
                        y_channel_stride, &mm);
    else
      k->fn.gemm_nc(pixels, rows, cols, x, x_pixel_stride, x_k_stride, kernel_packed, got, y_pixel_stride,
                    y_channel_stride, &mm);
    load_as(half, got, gotf, y_size);
    float* gathered = xmalloc(rows * pixels * sizeof(float)); /* [o][p] */
    size_t written = 0;
    for (size_t i = 0; i < y_size; i++) written += gotf[i] != guard;
    for (size_t o = 0; o < rows; o++)
      for (size_t p = 0; p < pixels; p++) gathered[o * pixels + p] = gotf[p * y_pixel_stride + o * y_channel_stride];
    char shape[160];
    snprintf(shape, sizeof(shape), "rows=%zu cols=%zu pixels=%zu in %s out %s", rows, cols, pixels,
             token_major_in ? "token-major" : "channel-major", token_major_out ? "token-major" : "channel-major");
    compare_as(half, k->name, shape, gathered, want, rows * pixels, (float)cols);
    if (written > rows * pixels) fail(k->name, "wrote outside the outputs");
    free(x);
    free(xf);
    free(xc);
    free(want);
    free(got);
    free(gotf);
    free(packed);
    free(kernel_packed);
    free(gathered);
  }
}

/* Several channels at strides with gaps, rows of 1 to past two vectors' width (count not always
 * whole rows; every seventh trial up to SL_F16_DWCONV_MAX_WIDTH wide), random tap rows (steps
 * -2..2, offsets from the least the kernel may take) against the definition in double; NaN and
 * infinities also where only dropped lanes read them. Each channel's input ends right after the
 * last float the kernel may read. */
static void test_dwconv(const sl_ukernel_t* k) {
  const bool half = is_f16(k);
  for (int trial = 0; trial < 260; trial++) {
    /* Every fifth trial: mostly chains of tap rows one output row apart with the same columns, as a
     * kernel's rows over one plane are (what NEON's row reuse takes), over wider rows. The last 60:
     * square 3x3 and 5x5 kernels as wide as their rows (AVX-512's register-held paths), rows of 1
     * to 10 vectors, every other trial of at most 20 floats (one vector, tall bands). */
    const bool square = trial >= 200, chains = trial % 5 == 2 || square;
    size_t width = 1 + rnd(square ? (trial % 2 ? 20 : 160)
                                  : trial % 3 == 0 ? 6 : trial % 7 == 0 ? SL_F16_DWCONV_MAX_WIDTH : chains ? 120 : 40);
    size_t count = (1 + rnd(trial % 7 == 0 ? 2 : square ? 20 : 10)) * width;
    if (trial % 4 == 1) count -= rnd((uint32_t)width);
    size_t channels = 1 + rnd(3), nrows = square ? 3 + 2 * rnd(2) : rnd(7), taps = 0, span = 2, w_stride = 1 + 5 * nrows;
    sl_dwconv_row_t row[6];
    for (size_t r = 0; r < nrows; r++) {
      row[r].offset = 2 + (rnd(4) == 0 ? 0 : rnd(200));
      row[r].columns = square ? (nrows == 3 ? 0xEu : 0x1Fu) : rnd(32);
      if (chains && r > 0 && (square || rnd(4) != 0)) {
        row[r].offset = row[r - 1].offset + (uint32_t)width;
        row[r].columns = row[r - 1].columns;
      }
      taps += (size_t)__builtin_popcount(row[r].columns);
      if (row[r].offset > span) span = row[r].offset;
    }
    sl_dwconv_taps_t tp = {(uint32_t)nrows, row};
    size_t x_stride = count + span + 2 + rnd(3), y_stride = count + 1 + rnd(3);
    guarded_t xg = guarded_alloc_bytes(channels * x_stride * elem_size(half), trial % 2 == 1);
    float* x = xmalloc(channels * x_stride * sizeof(float));
    float* w = xmalloc(channels * w_stride * sizeof(float));
    /* the weights end SL_F16_DWCONV_W_PAST halves (never used: NaN) before an unreadable page */
    const size_t w_past = half ? SL_F16_DWCONV_W_PAST : 0;
    guarded_t wg = guarded_alloc_bytes((channels * w_stride + w_past) * elem_size(half), true);
    memset((char*)wg.p + channels * w_stride * elem_size(half), 0xff, w_past * elem_size(half));
    random_floats(half, x, channels * x_stride);
    random_floats(half, w, channels * w_stride);
    if (!half && trial % 4 == 3) poison(x, channels * x_stride, true);
    store_as(half, x, xg.p, channels * x_stride);
    store_as(half, w, wg.p, channels * w_stride);
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    const float guard = half ? round_f16(12345.0f) : 12345.0f;
    float* want = xmalloc(channels * y_stride * sizeof(float));
    float* gotf = xmalloc(channels * y_stride * sizeof(float));
    void* got = xmalloc(channels * y_stride * sizeof(float));
    for (size_t i = 0; i < channels * y_stride; i++) want[i] = gotf[i] = guard;
    store_as(half, gotf, got, channels * y_stride);
    for (size_t c = 0; c < channels; c++) /* the definition, in double */
      for (size_t i = 0; i < count; i++) {
        const float* wc = w + c * w_stride;
        double acc = wc[0];
        for (size_t r = 0; r < nrows; r++)
          for (int b = 0; b < 5; b++) {
            long col = (long)(i % width) + b - 2;
            if ((row[r].columns & (1u << b)) && col >= 0 && col < (long)width)
              acc += (double)wc[1 + 5 * r + b] * x[c * x_stride + i + row[r].offset + b - 2];
          }
        want[c * y_stride + i] = sl_activation_scalar(&act, (float)acc);
      }
    if (half) k->fn.f16_dwconv(channels, count, width, xg.p, x_stride, wg.p, &tp, got, y_stride, &mm);
    else k->fn.dwconv(channels, count, width, xg.p, x_stride, wg.p, &tp, got, y_stride, &mm);
    load_as(half, got, gotf, channels * y_stride);
    char shape[96];
    snprintf(shape, sizeof(shape), "channels=%zu count=%zu width=%zu rows=%zu taps=%zu", channels, count, width,
             nrows, taps);
    compare_as(half, k->name, shape, gotf, want, channels * y_stride, (float)taps + 1.0f);
    guarded_free(&xg);
    free(x);
    free(w);
    guarded_free(&wg);
    free(want);
    free(got);
    free(gotf);
  }
}

/* A depthwise convolution by its definition, in double: channel c's planes at x + c * x_stride and
 * want + c * y_stride, its weights at w + c * (1 + taps), the bias first. */
static void depthwise_reference(const sl_conv2d_shape_t* s, size_t channels, const float* x, size_t x_stride,
                                const float* w, float* want, size_t y_stride, const sl_activation_t* act) {
  size_t taps = (size_t)s->kernel_h * s->kernel_w;
  for (size_t c = 0; c < channels; c++)
    for (size_t oy = 0; oy < s->out_h; oy++)
      for (size_t ox = 0; ox < s->out_w; ox++) {
        const float* wc = w + c * (taps + 1);
        double acc = wc[0];
        for (size_t ky = 0; ky < s->kernel_h; ky++)
          for (size_t kx = 0; kx < s->kernel_w; kx++) {
            long iy = (long)(oy * s->stride_h + ky) - (long)s->pad_top;
            long ix = (long)(ox * s->stride_w + kx) - (long)s->pad_left;
            if (iy >= 0 && iy < (long)s->in_h && ix >= 0 && ix < (long)s->in_w)
              acc += (double)wc[1 + ky * s->kernel_w + kx] * x[c * x_stride + (size_t)iy * s->in_w + (size_t)ix];
          }
        want[c * y_stride + oy * s->out_w + ox] = sl_activation_scalar(act, (float)acc);
      }
}

/* Random planes (rows shorter than a vector up to several tiles, odd and even widths), vertical
 * strides 1..3, top padding past the kernel, every left padding and kernel width the kernel
 * takes, against a direct convolution in double with NaN and infinities in the input. Planes end
 * right after their last float; the output must not be written past its channels. */
static void test_dwconv_s2(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 160; trial++) {
    sl_conv2d_shape_t s = {0};
    /* every fourth trial 3x3 with the paddings frameworks use (AVX-512's fixed-tap path, tiles of
     * 128 input columns: up to three across) */
    const bool k3 = trial % 4 == 1;
    s.in_h = 1 + rnd(trial % 4 == 0 ? 40 : 12);
    /* half of those with rows that end within a float of a tile's end */
    const bool seam = k3 && trial % 8 == 1;
    s.in_w = seam ? 128 * (1 + rnd(2)) + rnd(3) - 1 : 1 + rnd(k3 ? 400 : trial % 3 == 0 ? 150 : 40);
    s.stride_h = 1 + rnd(3);
    s.stride_w = 2;
    s.pad_top = rnd(4);
    s.pad_left = k3 ? rnd(2) : rnd(3);
    s.kernel_h = k3 ? 3 : 1 + rnd(5);
    s.kernel_w = k3 ? 3 : 1 + rnd(4 + s.pad_left < 5 ? 4 + s.pad_left : 5);
    uint32_t pad_bottom = rnd(4), pad_right = seam ? 2 : rnd(4);
    if (s.in_h + s.pad_top + pad_bottom < s.kernel_h) pad_bottom = s.kernel_h;
    if (s.in_w + s.pad_left + pad_right < s.kernel_w) pad_right = s.kernel_w;
    s.out_h = (s.in_h + s.pad_top + pad_bottom - s.kernel_h) / s.stride_h + 1;
    s.out_w = (s.in_w + s.pad_left + pad_right - s.kernel_w) / 2 + 1;
    size_t channels = 1 + rnd(3), hw = (size_t)s.in_h * s.in_w, ohw = (size_t)s.out_h * s.out_w;
    size_t taps = (size_t)s.kernel_h * s.kernel_w;
    float* x = xmalloc(channels * hw * sizeof(float));
    float* w = xmalloc(channels * (taps + 1) * sizeof(float));
    float* want = xmalloc(channels * ohw * sizeof(float));
    float* got = xmalloc((channels * ohw + 1) * sizeof(float));
    for (size_t i = 0; i < channels * hw; i++) x[i] = frand();
    for (size_t i = 0; i < channels * (taps + 1); i++) w[i] = frand();
    if (trial % 4 == 3) poison(x, channels * hw, true);
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    depthwise_reference(&s, channels, x, hw, w, want, ohw, &act);
    got[channels * ohw] = 12345.0f;
    k->fn.dwconv_s2(channels, &s, x, w, got, &mm);
    char shape[128];
    snprintf(shape, sizeof(shape), "channels=%zu %ux%u -> %ux%u kernel %ux%u stride_h %u pad %u,%u", channels, s.in_h,
             s.in_w, s.out_h, s.out_w, s.kernel_h, s.kernel_w, s.stride_h, s.pad_top, s.pad_left);
    compare(k->name, shape, got, want, channels * ohw, (float)taps + 1.0f);
    if (got[channels * ohw] != 12345.0f) fail(k->name, "wrote past the end");
    free(x);
    free(w);
    free(want);
    free(got);
  }
}


/* Random shapes: strides 1..3 each way, kernels up to 7x7 and some up to 12 rows, padding up to
 * past the kernel, maps from one pixel to rows wide enough that the window slides, channel counts
 * that leave a short last group, planes with gaps between them; against the definition in double,
 * with NaN and infinities in the input. The input ends at an unreadable page, the scratch starts as
 * NaN, and nothing past each output plane may be written. */
static void test_dwconv_nc(const sl_ukernel_t* k) {
  const size_t lanes = k->rows;
  for (int trial = 0; trial < 200; trial++) {
    sl_conv2d_shape_t s = {0};
    s.kernel_h = 1 + rnd(trial % 10 == 0 ? 12 : 7);
    s.kernel_w = 1 + rnd(7);
    s.stride_h = 1 + rnd(3);
    s.stride_w = 1 + rnd(3);
    s.pad_top = rnd(s.kernel_h + 1);
    s.pad_left = rnd(s.kernel_w + 1);
    s.in_h = 1 + rnd(trial % 4 == 0 ? 40 : 12);
    s.in_w = 1 + rnd(trial % 3 == 0 ? 90 : 20);
    if (trial % 7 == 0) { /* rows wide enough that the window slides, whatever the lanes */
      s.in_h = 20 + rnd(30);
      s.in_w = 300 + rnd(900);
    }
    uint32_t pad_bottom = rnd(s.kernel_h + 1), pad_right = rnd(s.kernel_w + 1);
    if (s.in_h + s.pad_top + pad_bottom < s.kernel_h) pad_bottom = s.kernel_h;
    if (s.in_w + s.pad_left + pad_right < s.kernel_w) pad_right = s.kernel_w;
    s.out_h = (s.in_h + s.pad_top + pad_bottom - s.kernel_h) / s.stride_h + 1;
    s.out_w = (s.in_w + s.pad_left + pad_right - s.kernel_w) / s.stride_w + 1;
    s.in_c = s.out_c = s.groups = 1 + rnd(3 * (uint32_t)lanes + 2);
    size_t channels = s.in_c, hw = (size_t)s.in_h * s.in_w, ohw = (size_t)s.out_h * s.out_w;
    size_t x_stride = hw + rnd(3), y_stride = ohw + 1 + rnd(3), taps = (size_t)s.kernel_h * s.kernel_w;
    size_t groups = (channels + lanes - 1) / lanes;
    sl_dwconv_nc_layout_t layout;
    if (!sl_dwconv_nc_layout(&s, lanes, &layout)) {
      fail(k->name, "sl_dwconv_nc_layout overflowed on a small shape");
      continue;
    }
    size_t scratch_floats = layout.floats;
    guarded_t xg = guarded_alloc_bytes(((channels - 1) * x_stride + hw) * sizeof(float), true);
    float* x = xg.p;
    float* w = xmalloc(channels * (taps + 1) * sizeof(float));
    float* packed = xmalloc(groups * lanes * (taps + 1) * sizeof(float));
    float* scratch = xmalloc(scratch_floats * sizeof(float));
    float* want = xmalloc(channels * y_stride * sizeof(float));
    float* got = xmalloc(channels * y_stride * sizeof(float));
    for (size_t i = 0; i < (channels - 1) * x_stride + hw; i++) x[i] = frand();
    for (size_t i = 0; i < channels * (taps + 1); i++) w[i] = frand();
    for (size_t i = 0; i < scratch_floats; i++) scratch[i] = NAN;
    if (trial % 4 == 3) poison(x, (channels - 1) * x_stride + hw, true);
    memset(packed, 0, groups * lanes * (taps + 1) * sizeof(float));
    for (size_t c = 0; c < channels; c++) {
      float* group = packed + c / lanes * (taps + 1) * lanes + c % lanes;
      for (size_t t = 0; t < taps; t++) group[t * lanes] = w[c * (taps + 1) + 1 + t];
      group[taps * lanes] = w[c * (taps + 1)];
    }
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    for (size_t i = 0; i < channels * y_stride; i++) want[i] = got[i] = 12345.0f;
    depthwise_reference(&s, channels, x, x_stride, w, want, y_stride, &act);
    k->fn.dwconv_nc(channels, &s, x, x_stride, packed, got, y_stride, scratch, &mm);
    char shape[160];
    snprintf(shape, sizeof(shape), "channels=%zu %ux%u -> %ux%u kernel %ux%u stride %u,%u pad %u,%u", channels, s.in_h,
             s.in_w, s.out_h, s.out_w, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_top, s.pad_left);
    compare(k->name, shape, got, want, channels * y_stride, (float)taps + 1.0f);
    guarded_free(&xg);
    free(w);
    free(packed);
    free(scratch);
    free(want);
    free(got);
  }
}

/* Exact copies, rows apart, nothing written past either half. */
static void test_unzip(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 80; trial++) {
    size_t rows = 1 + rnd(4), n = rnd(trial < 40 ? 40 : 300), x_stride = n + rnd(3), y_stride = (n + 1) / 2 + rnd(3);
    float* x = xmalloc(rows * x_stride * sizeof(float));
    float* got = xmalloc(2 * rows * y_stride * sizeof(float));
    float* want = xmalloc(2 * rows * y_stride * sizeof(float));
    for (size_t i = 0; i < rows * x_stride; i++) x[i] = frand();
    if (trial % 2 == 1 && rows * x_stride > 0) poison(x, rows * x_stride, true);
    for (size_t i = 0; i < 2 * rows * y_stride; i++) got[i] = want[i] = 12345.0f;
    for (size_t r = 0; r < rows; r++)
      for (size_t i = 0; i < n; i++) want[(i % 2) * rows * y_stride + r * y_stride + i / 2] = x[r * x_stride + i];
    k->fn.unzip(rows, n, x, x_stride, got, got + rows * y_stride, y_stride);
    char shape[96];
    snprintf(shape, sizeof(shape), "rows=%zu n=%zu", rows, n);
    if (memcmp(got, want, 2 * rows * y_stride * sizeof(float)) != 0) fail(k->name, shape);
    else passed++;
    free(x);
    free(got);
    free(want);
  }
}

/* Max pooling rows against the definition: windows of 1..5 at stride 1 or 2 over 1..4 rows, with
 * NaN and infinities in half the trials; the input ends right after the last float a window
 * reaches (an unreadable page follows), and nothing is written past the outputs. */
static void test_maxpool(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 160; trial++) {
    size_t out_rows = 1 + rnd(3), n = 1 + rnd(trial < 80 ? 40 : 200), kh = 1 + rnd(4), kw = 1 + rnd(5);
    size_t stride = 1 + rnd(2), width = (n - 1) * stride + kw, x_stride = width + rnd(3);
    size_t x_step = (1 + rnd(2)) * x_stride, y_stride = n + rnd(3);
    size_t x_size = (out_rows - 1) * x_step + (kh - 1) * x_stride + width;
    guarded_t xg = guarded_alloc_bytes(x_size * sizeof(float), true);
    float* x = xg.p;
    float* got = xmalloc(out_rows * y_stride * sizeof(float));
    float* want = xmalloc(out_rows * y_stride * sizeof(float));
    for (size_t i = 0; i < x_size; i++) x[i] = frand();
    if (trial % 2 == 1) poison(x, x_size, true);
    for (size_t i = 0; i < out_rows * y_stride; i++) got[i] = want[i] = 12345.0f;
    sl_f32_maxpool_ref(out_rows, n, kh, kw, stride, x, x_stride, x_step, want, y_stride);
    k->fn.maxpool(out_rows, n, kh, kw, stride, x, x_stride, x_step, got, y_stride);
    char shape[128];
    snprintf(shape, sizeof(shape), "rows=%zu n=%zu window %zux%zu stride %zu", out_rows, n, kh, kw, stride);
    compare_within(k->name, shape, got, want, out_rows * y_stride, 1.0f, 0.0f);
    guarded_free(&xg);
    free(got);
    free(want);
  }
}

/* Bilinear rows: 1 to 200 columns over rows of 1 to 100 floats (ending right before an unreadable
 * page), packed as RESIZE_BILINEAR packs them (sl_bilinear_pack: neighbours within 16 floats
 * relative to the block's least column, upsampling and columns out of order; the rest absolute);
 * NaN and infinities in half the rows. Same floats as the reference (bar 1e-6 absolute). */
static void test_bilinear_row(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 160; trial++) {
    size_t src_n = 1 + rnd(trial % 3 == 0 ? 16 : 100), n = 1 + rnd(200);
    size_t blocks = (n + SL_BILINEAR_BLOCK - 1) / SL_BILINEAR_BLOCK, padded = blocks * SL_BILINEAR_BLOCK;
    int32_t* lo = xmalloc(n * sizeof(int32_t));
    int32_t* hi = xmalloc(n * sizeof(int32_t));
    float* frac = xmalloc(n * sizeof(float));
    const bool ordered = trial % 4 != 3; /* else columns anywhere */
    for (size_t i = 0; i < n; i++) {
      float pos = ordered ? (float)i * (float)src_n / (float)n : (float)rnd((uint32_t)src_n);
      int32_t l = (int32_t)pos < (int32_t)src_n ? (int32_t)pos : (int32_t)src_n - 1;
      lo[i] = l;
      hi[i] = l + 1 < (int32_t)src_n ? l + 1 : l;
      frac[i] = (float)rnd(1000) / 1000.0f;
    }
    int32_t* base = xmalloc(blocks * sizeof(int32_t));
    int32_t* blo = xmalloc(padded * sizeof(int32_t));
    int32_t* bhi = xmalloc(padded * sizeof(int32_t));
    float* bfrac = xmalloc(padded * sizeof(float));
    sl_bilinear_pack(n, lo, hi, frac, base, blo, bhi, bfrac);
    guarded_t xg = guarded_alloc_bytes(src_n * sizeof(float), true);
    float* src = xg.p;
    for (size_t i = 0; i < src_n; i++) src[i] = frand();
    if (trial % 2 == 1) poison(src, src_n, true);
    float* got = xmalloc((n + 1) * sizeof(float));
    float* want = xmalloc((n + 1) * sizeof(float));
    got[n] = want[n] = 12345.0f;
    const sl_bilinear_cols_t cols = {base, blo, bhi, bfrac};
    sl_f32_bilinear_row_ref(n, src, src_n, &cols, want);
    k->fn.bilinear_row(n, src, src_n, &cols, got);
    char shape[96];
    snprintf(shape, sizeof(shape), "n=%zu src_n=%zu %s", n, src_n, ordered ? "ordered" : "scattered");
    compare_within(k->name, shape, got, want, n + 1, 1.0f, 0.0f);
    for (size_t i = 0; i < n; i++) /* the packing kept every column: the definition on the unpacked ones */
      got[i] = src[lo[i]] * (1.0f - frac[i]) + src[hi[i]] * frac[i];
    compare_within("sl_bilinear_pack", shape, want, got, n + 1, 1.0f, 0.0f);
    guarded_free(&xg);
    free(lo);
    free(hi);
    free(frac);
    free(base);
    free(blo);
    free(bhi);
    free(bfrac);
    free(got);
    free(want);
  }
}

/* Winograd transforms: a row of 1 to past three vectors of tiles in up to three channels at padded
 * strides, against the matrices in double, with NaN in the input (NaN exactly where the reference
 * has it: the kernels add the same nonzero terms). Inputs end right after the last float the
 * kernel may read; nothing is written outside the outputs. */
static void test_winograd_in(const sl_ukernel_t* k) {
  const uint32_t m = k->rows;
  const size_t a = m + 2;
  for (int trial = 0; trial < 80; trial++) {
    size_t tiles = 1 + rnd(3 * k->pixels + 5), channels = 1 + rnd(3);
    size_t x_row_stride = m * tiles + 2 + rnd(3), x_channel_stride = a * x_row_stride + rnd(3);
    size_t x_size = (channels - 1) * x_channel_stride + (a - 1) * x_row_stride + m * tiles + 2;
    size_t v_channel_stride = tiles + rnd(3), v_point_stride = channels * v_channel_stride + rnd(3);
    size_t v_size = a * a * v_point_stride;
    float* x = xmalloc(x_size * sizeof(float));
    for (size_t i = 0; i < x_size; i++) x[i] = frand();
    if (trial % 4 == 3) poison(x, x_size, false);
    float* want = xmalloc(v_size * sizeof(float));
    float* got = xmalloc(v_size * sizeof(float));
    for (size_t i = 0; i < v_size; i++) want[i] = got[i] = 12345.0f;
    sl_f32_winograd_in_ref(m, tiles, channels, x, x_row_stride, x_channel_stride, want, v_point_stride,
                           v_channel_stride);
    k->fn.winograd_in(tiles, channels, x, x_row_stride, x_channel_stride, got, v_point_stride, v_channel_stride);
    char shape[96];
    snprintf(shape, sizeof(shape), "tiles=%zu channels=%zu%s", tiles, channels, trial % 4 == 3 ? " with NaN" : "");
    compare(k->name, shape, got, want, v_size, m == 2 ? 4.0f : 100.0f); /* sentinels compare equal */
    free(x);
    free(want);
    free(got);
  }
}

/* Bottom and right edges (rows < m, cols short of the last tile), random clamps and biases, NaN in. */
static void test_winograd_out(const sl_ukernel_t* k) {
  const uint32_t m = k->rows;
  const size_t a = m + 2;
  for (int trial = 0; trial < 80; trial++) {
    size_t tiles = 1 + rnd(3 * k->pixels + 5), channels = 1 + rnd(3);
    size_t rows = trial % 2 ? m : 1 + rnd(m), cols = trial % 3 ? m * tiles : m * (tiles - 1) + 1 + rnd(m);
    size_t m_channel_stride = tiles + rnd(3), m_point_stride = channels * m_channel_stride + rnd(3);
    size_t m_size = a * a * m_point_stride;
    size_t y_row_stride = m * tiles + rnd(3), y_channel_stride = m * y_row_stride + rnd(3);
    size_t y_size = channels * y_channel_stride;
    float* mt = xmalloc(m_size * sizeof(float));
    float* bias = xmalloc(channels * sizeof(float));
    for (size_t i = 0; i < m_size; i++) mt[i] = frand();
    for (size_t i = 0; i < channels; i++) bias[i] = frand();
    if (trial % 4 == 3) poison(mt, m_size, false);
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    float* want = xmalloc(y_size * sizeof(float));
    float* got = xmalloc(y_size * sizeof(float));
    for (size_t i = 0; i < y_size; i++) want[i] = got[i] = 12345.0f;
    sl_f32_winograd_out_ref(m, tiles, channels, mt, m_point_stride, m_channel_stride, bias, want, y_row_stride,
                            y_channel_stride, rows, cols, &mm);
    k->fn.winograd_out(tiles, channels, mt, m_point_stride, m_channel_stride, bias, got, y_row_stride,
                       y_channel_stride, rows, cols, &mm);
    char shape[96];
    snprintf(shape, sizeof(shape), "tiles=%zu channels=%zu rows=%zu cols=%zu%s", tiles, channels, rows, cols,
             trial % 4 == 3 ? " with NaN" : "");
    compare(k->name, shape, got, want, y_size, m == 2 ? 9.0f : 300.0f); /* unwritten floats stay 12345 */
    free(mt);
    free(bias);
    free(want);
    free(got);
  }
}

/* --- row kernels ------------------------------------------------------------------------ */

/* Random lengths with tails, inputs from saturation to zero (negatives, where sqrt, log and
 * fractional powers give NaN), and NaN everywhere; infinities only where every form of an
 * activation must agree on them (all but the smooth ones of sl_v_exp, which saturate before
 * libm overflows). POW runs at each exponent of POW_EXPONENTS. */
static const float POW_EXPONENTS[] = {2.0f, 3.0f, -1.0f, 0.5f, -0.5f, 1.7f, 0.0f, -2.0f, 7.0f, -2.5f, 1e9f};
enum { POW_COUNT = sizeof(POW_EXPONENTS) / sizeof(POW_EXPONENTS[0]) };

static void test_vunary(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 40; trial++) {
    size_t n = 1 + rnd(trial < 20 ? 40 : 1100);
    float* x = xmalloc(n * sizeof(float));
    float* got = xmalloc((n + 1) * sizeof(float));
    float* want = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = frand() * (i % 3 == 0 ? 12.0f : 4.0f);
    x[rnd((uint32_t)n)] = (float)(rnd(3)) * 100.0f - 100.0f; /* -100, 0 or 100 */
    if (trial % 4 == 2) x[rnd((uint32_t)n)] = rnd(2) ? 1e-40f : -0.0f; /* subnormal, negative zero */
    for (int t = 0; t < SL_ACT_COUNT + POW_COUNT - 1; t++) {
      sl_act_type_t type = t < SL_ACT_COUNT ? (sl_act_type_t)t : SL_ACT_POW;
      float exponent = POW_EXPONENTS[t < SL_ACT_COUNT ? 0 : t - SL_ACT_COUNT + 1];
      sl_activation_t act = {type, -0.5f, 2.0f, exponent};
      bool infinities = type <= SL_ACT_HARDSIGMOID || type >= SL_ACT_NEG;
      if (trial % 2 == 1) poison(x, n, infinities);
      sl_f32_vunary_ref(&act, x, want, n);
      got[n] = 12345.0f;
      k->fn.vunary(&act, x, got, n);
      char shape[64];
      snprintf(shape, sizeof(shape), "activation %d (exponent %g), n=%zu", (int)type, (double)exponent, n);
      compare(k->name, shape, got, want, n, 1.0f);
      if (got[n] != 12345.0f) fail(k->name, "wrote past the end");
      for (size_t i = 0; i < n; i++) x[i] = isfinite(x[i]) ? x[i] : frand(); /* unpoison for the next */
    }
    free(x);
    free(got);
    free(want);
  }
}

static void test_vbinary(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 120; trial++) {
    size_t n = 1 + rnd(trial < 60 ? 30 : 700), a_step = rnd(2), b_step = rnd(2);
    sl_binary_op_t op = (sl_binary_op_t)rnd(SL_BINARY_PRELU + 1);
    const float slope_value = frand() * 0.5f, *slope = op == SL_BINARY_ADD && rnd(2) ? &slope_value : NULL;
    float* a = xmalloc(n * sizeof(float));
    float* b = xmalloc(n * sizeof(float));
    float* got = xmalloc((n + 1) * sizeof(float));
    float* want = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
      a[i] = frand() * 3.0f;
      b[i] = op == SL_BINARY_DIV ? 0.5f + rnd(2) + frand() * 0.25f : frand() * 3.0f;
    }
    if (trial % 3 == 2) poison(rnd(2) ? a : b, n, true);
    sl_activation_t act;
    sl_minmax_t mm;
    random_clamp(&act, &mm);
    sl_f32_vbinary_ref(op, a, a_step, b, b_step, want, n, &mm, slope);
    got[n] = 12345.0f;
    k->fn.vbinary(op, a, a_step, b, b_step, got, n, &mm, slope);
    char shape[96];
    snprintf(shape, sizeof(shape), "op=%d n=%zu steps=%zu/%zu%s", (int)op, n, a_step, b_step, slope ? " + PRELU" : "");
    compare(k->name, shape, got, want, n, 1.0f);
    if (got[n] != 12345.0f) fail(k->name, "wrote past the end");
    free(a);
    free(b);
    free(got);
    free(want);
  }
}

static void test_softmax(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 80; trial++) {
    size_t n = 1 + rnd(trial < 40 ? 40 : 600);
    float* x = xmalloc(n * sizeof(float));
    float* mask = xmalloc(n * sizeof(float));
    float* got = xmalloc((n + 1) * sizeof(float));
    float* want = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
      x[i] = frand() * 8.0f;
      mask[i] = rnd(4) == 0 ? -3.4028235e38f : 0.0f; /* attention masks add -FLT_MAX */
    }
    if (trial % 4 == 3) poison(x, n, false);
    bool with_mask = rnd(2) != 0;
    float scale = rnd(2) ? 1.0f : 0.125f;
    sl_f32_softmax_ref(x, with_mask ? mask : NULL, scale, want, n);
    got[n] = 12345.0f;
    k->fn.softmax(x, with_mask ? mask : NULL, scale, got, n);
    char shape[64];
    snprintf(shape, sizeof(shape), "n=%zu mask=%d scale=%g", n, with_mask, (double)scale);
    compare(k->name, shape, got, want, n, 0.1f);
    if (got[n] != 12345.0f) fail(k->name, "wrote past the end");
    free(x);
    free(mask);
    free(got);
    free(want);
  }
}

static void test_layernorm(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 80; trial++) {
    size_t n = 1 + rnd(trial < 40 ? 40 : 1600);
    float* x = xmalloc(n * sizeof(float));
    float* gamma = xmalloc(n * sizeof(float));
    float* beta = xmalloc(n * sizeof(float));
    float* got = xmalloc((n + 1) * sizeof(float));
    float* want = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
      x[i] = frand() * 5.0f + 2.0f;
      gamma[i] = frand();
      beta[i] = frand();
    }
    if (trial % 4 == 3) poison(x, n, false);
    int affine = (int)rnd(3); /* none, gamma, gamma and beta */
    const float* g = affine >= 1 ? gamma : NULL;
    const float* b = affine == 2 ? beta : NULL;
    sl_f32_layernorm_ref(x, n, 1e-5f, g, b, want);
    got[n] = 12345.0f;
    k->fn.layernorm(x, n, 1e-5f, g, b, got);
    char shape[64];
    snprintf(shape, sizeof(shape), "n=%zu affine=%d", n, affine);
    compare(k->name, shape, got, want, n, 4.0f);
    if (got[n] != 12345.0f) fail(k->name, "wrote past the end");
    free(x);
    free(gamma);
    free(beta);
    free(got);
    free(want);
  }
}

/* --- fp16 conversions ----------------------------------------------------------------- */

/* Every half back to itself through float; floats to halves as the compiler rounds them. */
static void test_f16_convert(void) {
  for (uint32_t h = 0; h < 0x10000u; h++) {
    float v = sl_f16_to_f32((sl_f16)h);
    if ((h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0) { /* NaN stays NaN */
      if (!isnan(v) || (sl_f16_from_f32(v) & 0x7FFFu) <= 0x7C00u) fail("sl_f16_to_f32", "NaN lost");
    } else if (sl_f16_from_f32(v) != h) {
      fail("sl_f16_from_f32", "a half does not round-trip");
      return;
    }
  }
#ifdef __FLT16_MAX__
  for (int i = 0; i < 1000000; i++) {
    uint32_t bits = rnd(0x10000u) << 16 | rnd(0x10000u);
    float v;
    memcpy(&v, &bits, sizeof(v));
    _Float16 c = (_Float16)v;
    sl_f16 want;
    memcpy(&want, &c, sizeof(want));
    if (!isnan(v) && sl_f16_from_f32(v) != want) {
      fail("sl_f16_from_f32", "rounds unlike the compiler");
      return;
    }
  }
#endif
  passed++;
}

/* Every length up to a few vectors, random floats of every exponent (subnormal halves, overflow,
 * ties), infinities and NaN: the same bits as the reference, any NaN for a NaN. */
static void test_f16_convert_kernels(const sl_ukernel_t* k) {
  for (int trial = 0; trial < 200; trial++) {
    size_t n = (size_t)trial % 40;
    float* x = xmalloc((n + 1) * sizeof(float));
    float* back = xmalloc((n + 1) * sizeof(float));
    sl_f16* h = xmalloc((n + 1) * sizeof(sl_f16));
    for (size_t i = 0; i < n; i++) {
      uint32_t bits = (rnd(2) << 31) | ((90u + rnd(60)) << 23) | rnd(1u << 23); /* 2^-37 .. 2^22 */
      if (rnd(8) == 0) bits = (bits & 0x80000000u) | 0x7F800000u | (rnd(2) ? rnd(1u << 22) + 1 : 0);
      if (rnd(8) == 0) bits &= ~0x1FFFu, bits |= 0x1000u; /* a tie between two halves */
      memcpy(&x[i], &bits, sizeof(float));
    }
    const sl_f16 guard = 0x1234;
    h[n] = guard;
    back[n] = 12345.0f;
    bool ok = true;
    if (k->family == SL_FAMILY_f16_from_f32) {
      k->fn.f16_from_f32(x, h, n);
      for (size_t i = 0; i < n; i++) {
        sl_f16 want = sl_f16_from_f32(x[i]);
        ok &= isnan(x[i]) ? (h[i] & 0x7C00u) == 0x7C00u && (h[i] & 0x3FFu) != 0 : h[i] == want;
      }
      ok &= h[n] == guard;
    } else {
      for (size_t i = 0; i < n; i++) h[i] = sl_f16_from_f32(x[i]);
      k->fn.f16_to_f32(h, back, n);
      for (size_t i = 0; i < n; i++) {
        float want = sl_f16_to_f32(h[i]);
        ok &= isnan(want) ? isnan(back[i]) : memcmp(&back[i], &want, sizeof(float)) == 0;
      }
      ok &= back[n] == 12345.0f;
    }
    if (!ok) {
      char what[64];
      snprintf(what, sizeof(what), "n=%zu: unlike the reference, or wrote past the end", n);
      fail(k->name, what);
    } else {
      passed++;
    }
    free(x);
    free(back);
    free(h);
  }
}

int main(void) {
  /* In-order kernels are plain NEON scheduled differently: they run wherever NEON does. */
  uint32_t isa = sl_cpu_isa() | (sl_cpu_isa() & SL_ISA_NEON ? SL_ISA_NEON_INORDER : 0u);
  test_registry_complete();
  test_cpu_parts();
  test_f16_convert();
  int skipped = 0;
  for (size_t i = 0; i < sl_ukernel_count; i++) {
    const sl_ukernel_t* k = &sl_ukernels[i];
    if ((k->isa & ~isa) != 0) {
      skipped++;
      continue;
    }
    switch (k->family) {
      case SL_FAMILY_spmm:
      case SL_FAMILY_f16_spmm: test_spmm(k); break;
      case SL_FAMILY_gemm:
      case SL_FAMILY_f16_gemm: test_gemm(k); break;
      case SL_FAMILY_gemm_nc:
      case SL_FAMILY_f16_gemm_nc: test_gemm_nc(k); break;
      case SL_FAMILY_dwconv:
      case SL_FAMILY_f16_dwconv: test_dwconv(k); break;
      case SL_FAMILY_dwconv_s2: test_dwconv_s2(k); break;
      case SL_FAMILY_dwconv_nc: test_dwconv_nc(k); break;
      case SL_FAMILY_unzip: test_unzip(k); break;
      case SL_FAMILY_maxpool: test_maxpool(k); break;
      case SL_FAMILY_bilinear_row: test_bilinear_row(k); break;
      case SL_FAMILY_vunary: test_vunary(k); break;
      case SL_FAMILY_vbinary: test_vbinary(k); break;
      case SL_FAMILY_softmax: test_softmax(k); break;
      case SL_FAMILY_layernorm: test_layernorm(k); break;
      case SL_FAMILY_winograd_in: test_winograd_in(k); break;
      case SL_FAMILY_winograd_out: test_winograd_out(k); break;
      case SL_FAMILY_f16_from_f32:
      case SL_FAMILY_f16_to_f32: test_f16_convert_kernels(k); break;
      case SL_FAMILY_COUNT: break;
    }
  }
  printf("%d passed, %d failed, %d kernels this CPU cannot run\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
