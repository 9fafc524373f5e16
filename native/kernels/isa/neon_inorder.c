/* AArch64 NEON scheduled for in-order cores (Cortex-A53/A55 and Qualcomm's Kryo Silver cores):
 * selected where sl_cpu_isa() reports SL_ISA_NEON_INORDER; elsewhere the NEON kernels stay.
 *
 * gemm 8x8: whole tiles of dense columns run the loop below, written in assembly because the
 * core issues in order and what it may pair is narrow: one Q-form FMLA per cycle, beside which a
 * 64-bit load (LDR d, LDR x), an INS or an integer add can issue, but no 128-bit load (it stalls
 * the pipeline two cycles). So every vector is loaded as two 64-bit halves (LDR d, LDR x, then
 * INS), the weights as LDR d of two rows each (FMLA by lane), and the next column's loads go
 * between this column's FMLAs (two register sets, software pipelined): 32 FMLAs and 25 other
 * instructions per two columns, none waiting on a load or an address. An 8x8 tile loads 10
 * halves per 16 FMLAs (16x4: 14). Tails, offsets (implicit convolutions) and partial panels
 * take the template's tile; both sum each output in column order with fused multiply-adds, so
 * the results are the NEON kernels' bit for bit. */
#include "../kernels.h"
#if SL_ARCH_ARM64
#include "../vec/neon.h"

/* rows 0..7 of output y (rows y_stride bytes apart), 8 pixels each = clamp(sums over cols columns
 * of 8 pixels, x_stride bytes apart, times the panel's 8 weights per column), starting from the
 * panel's biases or, when accumulate, from y. */
static void gemm_8x8_tile(const float* panel, size_t cols, const float* x, size_t x_stride, float* y,
                          size_t y_stride, const sl_minmax_t* mm, int accumulate) {
  const float* w = panel;
  size_t n, t0, t1;
#define SL_FMA_SET(X0, X1, W0, W1, W2, W3)                                                    \
  "fmla v16.4s, " X0 ".4s, " W0 ".s[0]\n"                                                     \
  "fmla v17.4s, " X1 ".4s, " W0 ".s[0]\n"                                                     \
  "fmla v18.4s, " X0 ".4s, " W0 ".s[1]\n"                                                     \
  "fmla v19.4s, " X1 ".4s, " W0 ".s[1]\n"                                                     \
  "fmla v20.4s, " X0 ".4s, " W1 ".s[0]\n"                                                     \
  "fmla v21.4s, " X1 ".4s, " W1 ".s[0]\n"                                                     \
  "fmla v22.4s, " X0 ".4s, " W1 ".s[1]\n"                                                     \
  "fmla v23.4s, " X1 ".4s, " W1 ".s[1]\n"                                                     \
  "fmla v24.4s, " X0 ".4s, " W2 ".s[0]\n"                                                     \
  "fmla v25.4s, " X1 ".4s, " W2 ".s[0]\n"                                                     \
  "fmla v26.4s, " X0 ".4s, " W2 ".s[1]\n"                                                     \
  "fmla v27.4s, " X1 ".4s, " W2 ".s[1]\n"                                                     \
  "fmla v28.4s, " X0 ".4s, " W3 ".s[0]\n"                                                     \
  "fmla v29.4s, " X1 ".4s, " W3 ".s[0]\n"                                                     \
  "fmla v30.4s, " X0 ".4s, " W3 ".s[1]\n"                                                     \
  "fmla v31.4s, " X1 ".4s, " W3 ".s[1]\n"
/* The FMLAs of one column's set, the next column's loads between them (weights at w + WOFF),
 * ADVANCE last: after every load, before the FMLAs that end the set. */
#define SL_FMA_LOAD_SET(X0, X1, W0, W1, W2, W3, L0, L1, M0, M1, M2, M3, WOFF, ADVANCE)        \
  "fmla v16.4s, " X0 ".4s, " W0 ".s[0]\n"                                                     \
  "ldr d" L0 ", [%x[x]]\n"                                                                   \
  "fmla v17.4s, " X1 ".4s, " W0 ".s[0]\n"                                                     \
  "ldr %x[t0], [%x[x], #8]\n"                                                                \
  "fmla v18.4s, " X0 ".4s, " W0 ".s[1]\n"                                                     \
  "ldr d" L1 ", [%x[x], #16]\n"                                                              \
  "fmla v19.4s, " X1 ".4s, " W0 ".s[1]\n"                                                     \
  "ldr %x[t1], [%x[x], #24]\n"                                                               \
  "fmla v20.4s, " X0 ".4s, " W1 ".s[0]\n"                                                     \
  "add %x[x], %x[x], %x[xs]\n"                                                               \
  "fmla v21.4s, " X1 ".4s, " W1 ".s[0]\n"                                                     \
  "ldr d" M0 ", [%x[w], #" WOFF "]\n"                                                       \
  "fmla v22.4s, " X0 ".4s, " W1 ".s[1]\n"                                                     \
  "ldr d" M1 ", [%x[w], #" WOFF " + 8]\n"                                                   \
  "fmla v23.4s, " X1 ".4s, " W1 ".s[1]\n"                                                     \
  "ins v" L0 ".d[1], %x[t0]\n"                                                               \
  "fmla v24.4s, " X0 ".4s, " W2 ".s[0]\n"                                                     \
  "ldr d" M2 ", [%x[w], #" WOFF " + 16]\n"                                                  \
  "fmla v25.4s, " X1 ".4s, " W2 ".s[0]\n"                                                     \
  "ins v" L1 ".d[1], %x[t1]\n"                                                               \
  "fmla v26.4s, " X0 ".4s, " W2 ".s[1]\n"                                                     \
  "ldr d" M3 ", [%x[w], #" WOFF " + 24]\n"                                                  \
  "fmla v27.4s, " X1 ".4s, " W2 ".s[1]\n"                                                     \
  ADVANCE                                                                                     \
  "fmla v28.4s, " X0 ".4s, " W3 ".s[0]\n"                                                     \
  "fmla v29.4s, " X1 ".4s, " W3 ".s[0]\n"                                                     \
  "fmla v30.4s, " X0 ".4s, " W3 ".s[1]\n"                                                     \
  "fmla v31.4s, " X1 ".4s, " W3 ".s[1]\n"
  /* Set A: x in v0 v1, weights in v2..v5 (rows 0-1, 2-3, 4-5, 6-7); set B: v6 v7, v8..v11.
   * Accumulators: row j in v(16 + 2j) (pixels 0-3) and v(17 + 2j) (pixels 4-7). */
  __asm__ volatile(
      "ldp q0, q1, [%x[w]]\n" /* the biases, or y's partial sums below */
      "add %x[w], %x[w], #32\n"
      "cbnz %x[acc], 1f\n"
      "dup v16.4s, v0.s[0]\n"
      "dup v17.4s, v0.s[0]\n"
      "dup v18.4s, v0.s[1]\n"
      "dup v19.4s, v0.s[1]\n"
      "dup v20.4s, v0.s[2]\n"
      "dup v21.4s, v0.s[2]\n"
      "dup v22.4s, v0.s[3]\n"
      "dup v23.4s, v0.s[3]\n"
      "dup v24.4s, v1.s[0]\n"
      "dup v25.4s, v1.s[0]\n"
      "dup v26.4s, v1.s[1]\n"
      "dup v27.4s, v1.s[1]\n"
      "dup v28.4s, v1.s[2]\n"
      "dup v29.4s, v1.s[2]\n"
      "dup v30.4s, v1.s[3]\n"
      "dup v31.4s, v1.s[3]\n"
      "b 2f\n"
      "1:\n"
      "mov %x[t0], %x[y]\n"
      "ldp q16, q17, [%x[t0]]\n"
      "add %x[t0], %x[t0], %x[ys]\n"
      "ldp q18, q19, [%x[t0]]\n"
      "add %x[t0], %x[t0], %x[ys]\n"
      "ldp q20, q21, [%x[t0]]\n"
      "add %x[t0], %x[t0], %x[ys]\n"
      "ldp q22, q23, [%x[t0]]\n"
      "add %x[t0], %x[t0], %x[ys]\n"
      "ldp q24, q25, [%x[t0]]\n"
      "add %x[t0], %x[t0], %x[ys]\n"
      "ldp q26, q27, [%x[t0]]\n"
      "add %x[t0], %x[t0], %x[ys]\n"
      "ldp q28, q29, [%x[t0]]\n"
      "add %x[t0], %x[t0], %x[ys]\n"
      "ldp q30, q31, [%x[t0]]\n"
      "2:\n"
      "cbz %x[k], 6f\n"
      /* set A from column 0 */
      "ldr d0, [%x[x]]\n"
      "ldr %x[t0], [%x[x], #8]\n"
      "ldr d1, [%x[x], #16]\n"
      "ldr %x[t1], [%x[x], #24]\n"
      "add %x[x], %x[x], %x[xs]\n"
      "ldp d2, d3, [%x[w]]\n"
      "ldp d4, d5, [%x[w], #16]\n"
      "ins v0.d[1], %x[t0]\n"
      "ins v1.d[1], %x[t1]\n"
      /* (k - 1) / 2 times: columns c (set A) and c + 1 (set B), loading c + 1 and c + 2 */
      "sub %x[n], %x[k], #1\n"
      "lsr %x[n], %x[n], #1\n"
      "cbz %x[n], 4f\n"
      "3:\n" SL_FMA_LOAD_SET("v0", "v1", "v2", "v3", "v4", "v5", "6", "7", "8", "9", "10", "11", "32", "")
          SL_FMA_LOAD_SET("v6", "v7", "v8", "v9", "v10", "v11", "0", "1", "2", "3", "4", "5", "64",
                          "add %x[w], %x[w], #64\n"
                          "subs %x[n], %x[n], #1\n") "b.ne 3b\n"
      /* the last one or two columns */
      "4:\n"
      "tbnz %x[k], #0, 5f\n" SL_FMA_LOAD_SET("v0", "v1", "v2", "v3", "v4", "v5", "6", "7", "8", "9", "10", "11", "32",
                                             "") SL_FMA_SET("v6", "v7", "v8", "v9", "v10", "v11") "b 6f\n"
      "5:\n" SL_FMA_SET("v0", "v1", "v2", "v3", "v4", "v5")
      /* clamp and store */
      "6:\n"
      "ld1r {v0.4s}, [%x[mm]], #4\n"
      "ld1r {v1.4s}, [%x[mm]]\n"
      "fmax v16.4s, v16.4s, v0.4s\n"
      "fmax v17.4s, v17.4s, v0.4s\n"
      "fmax v18.4s, v18.4s, v0.4s\n"
      "fmax v19.4s, v19.4s, v0.4s\n"
      "fmax v20.4s, v20.4s, v0.4s\n"
      "fmax v21.4s, v21.4s, v0.4s\n"
      "fmax v22.4s, v22.4s, v0.4s\n"
      "fmax v23.4s, v23.4s, v0.4s\n"
      "fmax v24.4s, v24.4s, v0.4s\n"
      "fmax v25.4s, v25.4s, v0.4s\n"
      "fmax v26.4s, v26.4s, v0.4s\n"
      "fmax v27.4s, v27.4s, v0.4s\n"
      "fmax v28.4s, v28.4s, v0.4s\n"
      "fmax v29.4s, v29.4s, v0.4s\n"
      "fmax v30.4s, v30.4s, v0.4s\n"
      "fmax v31.4s, v31.4s, v0.4s\n"
      "fmin v16.4s, v16.4s, v1.4s\n"
      "fmin v17.4s, v17.4s, v1.4s\n"
      "fmin v18.4s, v18.4s, v1.4s\n"
      "fmin v19.4s, v19.4s, v1.4s\n"
      "fmin v20.4s, v20.4s, v1.4s\n"
      "fmin v21.4s, v21.4s, v1.4s\n"
      "fmin v22.4s, v22.4s, v1.4s\n"
      "fmin v23.4s, v23.4s, v1.4s\n"
      "fmin v24.4s, v24.4s, v1.4s\n"
      "fmin v25.4s, v25.4s, v1.4s\n"
      "fmin v26.4s, v26.4s, v1.4s\n"
      "fmin v27.4s, v27.4s, v1.4s\n"
      "fmin v28.4s, v28.4s, v1.4s\n"
      "fmin v29.4s, v29.4s, v1.4s\n"
      "fmin v30.4s, v30.4s, v1.4s\n"
      "fmin v31.4s, v31.4s, v1.4s\n"
      "stp q16, q17, [%x[y]]\n"
      "add %x[y], %x[y], %x[ys]\n"
      "stp q18, q19, [%x[y]]\n"
      "add %x[y], %x[y], %x[ys]\n"
      "stp q20, q21, [%x[y]]\n"
      "add %x[y], %x[y], %x[ys]\n"
      "stp q22, q23, [%x[y]]\n"
      "add %x[y], %x[y], %x[ys]\n"
      "stp q24, q25, [%x[y]]\n"
      "add %x[y], %x[y], %x[ys]\n"
      "stp q26, q27, [%x[y]]\n"
      "add %x[y], %x[y], %x[ys]\n"
      "stp q28, q29, [%x[y]]\n"
      "add %x[y], %x[y], %x[ys]\n"
      "stp q30, q31, [%x[y]]\n"
      : [w] "+r"(w), [x] "+r"(x), [y] "+r"(y), [mm] "+r"(mm), [n] "=&r"(n), [t0] "=&r"(t0), [t1] "=&r"(t1)
      : [k] "r"(cols), [xs] "r"(x_stride), [ys] "r"(y_stride), [acc] "r"((size_t)accumulate)
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v16", "v17",
        "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
#undef SL_FMA_SET
#undef SL_FMA_LOAD_SET
}

/* The template's gemm, whole dense tiles of every row through the tile above (strides in bytes). */
#define SL_V_GEMM_TILE(panel, cols, x, x_stride, y, y_stride, mm, accumulate)                                  \
  gemm_8x8_tile(panel, cols, x, (x_stride) * sizeof(float), y, (y_stride) * sizeof(float), mm, accumulate)
#define SL_V_GEMM_TILE_PIXELS 8
#define SL_V_GEMM_TILE_ROWS 8
#include "../templates/matrix.h"

#define SL_UKERNEL(family, name, isa, pixels, rows, efficiency) SL_DEFINE_##family(name, pixels, rows)
#define SL_LIST_NEON_INORDER 1
#include "../lists.inc"
#undef SL_UKERNEL
#endif
