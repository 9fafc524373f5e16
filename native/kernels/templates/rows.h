/* The elementwise and row microkernels (activations, binary ops, softmax, layer norm), written
 * once over the vector operations of vec/<isa>.h (listed in templates/matrix.h). Full vectors
 * first, then one partial vector; lanes past the tail are masked out of every reduction.
 * NaN in gives NaN out as in the references (f32-<family>/ref.c). */
#ifndef SL_TEMPLATES_ROWS_H
#define SL_TEMPLATES_ROWS_H

#include <math.h>

#include "../kernels.h"

/* e^c = 2^n * e^r: n = c / ln2 rounded, r = c - n ln2 (two parts) with |r| <= ln2/2, e^r by a
 * degree-6 polynomial, which this returns; *n_magic is n + 1.5 * 2^23, as sl_v_exp2i reads it. */
SL_V_INLINE sl_v sl_v_exp_reduce(sl_v c, sl_v* n_magic) {
  const sl_v magic = sl_v_dup(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
  const sl_v t = sl_v_add(sl_v_mul(c, sl_v_dup(1.44269504f)), magic);
  const sl_v n = sl_v_sub(t, magic);
  const sl_v r = sl_v_sub(sl_v_sub(c, sl_v_mul(n, sl_v_dup(0.693145752f))), sl_v_mul(n, sl_v_dup(1.42860677e-06f)));
  sl_v p = sl_v_dup(1.38888889e-03f);
  p = sl_v_fma(p, r, sl_v_dup(8.33333333e-03f));
  p = sl_v_fma(p, r, sl_v_dup(4.16666667e-02f));
  p = sl_v_fma(p, r, sl_v_dup(1.66666667e-01f));
  p = sl_v_fma(p, r, sl_v_dup(0.5f));
  p = sl_v_fma(p, r, sl_v_dup(1.0f));
  p = sl_v_fma(p, r, sl_v_dup(1.0f));
  *n_magic = t;
  return p;
}

/* e^x, x clamped so 2^n stays a normal float; the clamp keeps NaN, which the last select returns
 * as it came. */
SL_V_INLINE sl_v sl_v_exp(sl_v x) {
  sl_v t;
  const sl_v p = sl_v_exp_reduce(sl_v_clamp(x, sl_v_dup(-87.0f), sl_v_dup(88.0f)), &t);
  return sl_v_select(sl_v_eq(x, x), sl_v_mul(p, sl_v_exp2i(t)), x);
}

/* e^x over all of float's range (the EXP activation, POW): 2^n applied as two factors so that n
 * reaches 128 (overflow to +inf) and -150 (through the subnormals to 0). */
SL_V_INLINE sl_v sl_v_exp_full(sl_v x) {
  const sl_v magic = sl_v_dup(12582912.0f);
  sl_v t;
  const sl_v p = sl_v_exp_reduce(sl_v_clamp(x, sl_v_dup(-104.0f), sl_v_dup(89.0f)), &t);
  const sl_v n = sl_v_sub(t, magic);
  const sl_v half = sl_v_add(sl_v_mul(n, sl_v_dup(0.5f)), magic); /* n / 2 rounded, + magic: in [-75, 64] */
  const sl_v rest = sl_v_add(sl_v_sub(n, sl_v_sub(half, magic)), magic);
  return sl_v_select(sl_v_eq(x, x), sl_v_mul(sl_v_mul(p, sl_v_exp2i(half)), sl_v_exp2i(rest)), x);
}

/* ln x = e ln2 + ln m for x = m 2^e, m in [sqrt(1/2), sqrt(2)), ln m by Cephes' logf polynomial
 * in f = m - 1; subnormal x is scaled by 2^23 first. x < 0 gives NaN, 0 -inf, +inf +inf, NaN stays. */
SL_V_INLINE sl_v sl_v_log(sl_v x) {
  const sl_v zero = sl_v_dup(0.0f), one = sl_v_dup(1.0f), inf = sl_v_dup(INFINITY);
  const sl_vm tiny = sl_v_lt(x, sl_v_dup(1.17549435e-38f));
  const sl_v s = sl_v_select(tiny, sl_v_mul(x, sl_v_dup(8388608.0f)), x);
  sl_v e = sl_v_sub(sl_v_getexp(s), sl_v_select(tiny, sl_v_dup(23.0f), zero)), m = sl_v_getmant(s);
  const sl_vm big = sl_v_lt(sl_v_dup(1.41421356f), m);
  m = sl_v_select(big, sl_v_mul(m, sl_v_dup(0.5f)), m);
  e = sl_v_select(big, sl_v_add(e, one), e);
  const sl_v f = sl_v_sub(m, one), z = sl_v_mul(f, f);
  sl_v p = sl_v_dup(7.0376836292e-2f);
  p = sl_v_fma(p, f, sl_v_dup(-1.1514610310e-1f));
  p = sl_v_fma(p, f, sl_v_dup(1.1676998740e-1f));
  p = sl_v_fma(p, f, sl_v_dup(-1.2420140846e-1f));
  p = sl_v_fma(p, f, sl_v_dup(1.4249322787e-1f));
  p = sl_v_fma(p, f, sl_v_dup(-1.6668057665e-1f));
  p = sl_v_fma(p, f, sl_v_dup(2.0000714765e-1f));
  p = sl_v_fma(p, f, sl_v_dup(-2.4999993993e-1f));
  p = sl_v_fma(p, f, sl_v_dup(3.3333331174e-1f));
  sl_v y = sl_v_fma(e, sl_v_dup(-2.12194440e-4f), sl_v_mul(sl_v_mul(p, f), z));
  y = sl_v_fma(z, sl_v_dup(-0.5f), y);
  y = sl_v_fma(e, sl_v_dup(0.693359375f), sl_v_add(f, y));
  y = sl_v_select(sl_v_lt(x, zero), sl_v_dup(NAN), y);
  y = sl_v_select(sl_v_eq(x, zero), sl_v_dup(-INFINITY), y);
  y = sl_v_select(sl_v_eq(x, inf), inf, y);
  return sl_v_select(sl_v_eq(x, x), y, x);
}

/* x^k for an integer k >= 0 by repeated squaring (x^0 = 1, NaN included, as powf). */
SL_V_INLINE sl_v sl_v_powi(sl_v x, uint32_t k) {
  sl_v r = sl_v_dup(1.0f);
  for (; k != 0; k >>= 1) {
    if (k & 1u) r = sl_v_mul(r, x);
    if (k > 1u) x = sl_v_mul(x, x);
  }
  return r;
}

/* Eigen's rational approximation, an odd over an even polynomial of x clamped to [-4, 4] (where
 * erf is 1 in float): relative error below 4e-7 everywhere, tiny x included; NaN stays. */
SL_V_INLINE sl_v sl_v_erf(sl_v x) {
  const sl_v c = sl_v_clamp(x, sl_v_dup(-4.0f), sl_v_dup(4.0f)), c2 = sl_v_mul(c, c);
  sl_v p = sl_v_fma(c2, sl_v_dup(-2.72614225801306e-10f), sl_v_dup(2.77068142495902e-08f));
  p = sl_v_fma(c2, p, sl_v_dup(-2.10102402082508e-06f));
  p = sl_v_fma(c2, p, sl_v_dup(-5.69250639462346e-05f));
  p = sl_v_fma(c2, p, sl_v_dup(-7.34990630326855e-04f));
  p = sl_v_fma(c2, p, sl_v_dup(-2.95459980854025e-03f));
  p = sl_v_fma(c2, p, sl_v_dup(-1.60960333262415e-02f));
  sl_v q = sl_v_fma(c2, sl_v_dup(-1.45660718464996e-05f), sl_v_dup(-2.13374055278905e-04f));
  q = sl_v_fma(c2, q, sl_v_dup(-1.68282697438203e-03f));
  q = sl_v_fma(c2, q, sl_v_dup(-7.37332916720468e-03f));
  q = sl_v_fma(c2, q, sl_v_dup(-1.42647390514189e-02f));
  return sl_v_div(sl_v_mul(c, p), q);
}

/* 1 - 2 / (e^2x + 1), which saturates cleanly at both ends. */
SL_V_INLINE sl_v sl_v_tanh(sl_v x) {
  const sl_v e = sl_v_exp(sl_v_add(x, x));
  return sl_v_sub(sl_v_dup(1.0f), sl_v_div(sl_v_dup(2.0f), sl_v_add(e, sl_v_dup(1.0f))));
}

/* Applies F(v) to x[0..n) into y. */
#define SL_V_MAP(F)                                                          \
  do {                                                                       \
    size_t i_ = 0;                                                           \
    for (; i_ + SL_V_WIDTH <= n; i_ += SL_V_WIDTH) {                         \
      const sl_v v = sl_v_load(x + i_);                                      \
      sl_v_store(y + i_, (F));                                               \
    }                                                                        \
    if (i_ < n) {                                                            \
      const sl_v_tail t_ = sl_v_tail_of(n - i_);                             \
      const sl_v v = sl_v_load_tail(x + i_, t_);                             \
      sl_v_store_tail(y + i_, (F), t_);                                      \
    }                                                                        \
  } while (0)

/* |x|^p as e^(p ln|x|); for x < 0 the sign of an odd p, or NaN when p is no integer (x = -inf
 * then gives |x|^p, as powf). */
SL_V_INLINE sl_v sl_v_pow_general(sl_v x, sl_v p, bool integral, bool odd) {
  const sl_v r = sl_v_exp_full(sl_v_mul(p, sl_v_log(sl_v_abs(x))));
  const sl_vm negative = sl_v_lt(x, sl_v_dup(0.0f));
  if (odd) return sl_v_select(negative, sl_v_mul(r, sl_v_dup(-1.0f)), r);
  if (integral) return r;
  return sl_v_select(negative, sl_v_select(sl_v_eq(x, sl_v_dup(-INFINITY)), r, sl_v_dup(NAN)), r);
}

/* y = x^p with powf's special values, the exponent's form picked once per call: +-0.5 by square
 * roots (+ 0 turns sqrt(-0) into powf's +0; -inf gives +inf and +0), integers up to 64 by repeated
 * squaring (the reciprocal for p < 0), others by sl_v_pow_general. */
SL_V_INLINE void sl_vpow(float p, const float* x, float* y, size_t n) {
  const sl_v zero = sl_v_dup(0.0f), one = sl_v_dup(1.0f), inf = sl_v_dup(INFINITY), minus_inf = sl_v_dup(-INFINITY);
  const float a = fabsf(p);
  if (p == 0.5f) {
    SL_V_MAP(sl_v_select(sl_v_eq(v, minus_inf), inf, sl_v_add(sl_v_sqrt(v), zero)));
  } else if (p == -0.5f) {
    SL_V_MAP(sl_v_select(sl_v_eq(v, minus_inf), zero, sl_v_div(one, sl_v_add(sl_v_sqrt(v), zero))));
  } else if (a <= 64.0f && a == (float)(uint32_t)a) {
    const uint32_t k = (uint32_t)a;
    if (p < 0.0f) SL_V_MAP(sl_v_div(one, sl_v_powi(v, k)));
    else SL_V_MAP(sl_v_powi(v, k));
  } else {
    /* Floats of 2^24 and more are even integers (and a NaN p gives NaN whatever this says). */
    const bool integral = !(a < 16777216.0f) || a == (float)(uint32_t)a;
    const bool odd = a < 16777216.0f && integral && ((uint32_t)a & 1u);
    const sl_v e = sl_v_dup(p);
    SL_V_MAP(sl_v_pow_general(v, e, integral, odd));
  }
}

/* c / 6 for a finite c: c * fl(1/6) and one Newton step on its residual c - 6q. fl(1/6) alone is 3e-8
 * too large, a bias every hard-swish output shares and later normalisations amplify (pruned LeViT:
 * 5x torch's error against float64); a division costs 5x the multiply. */
SL_V_INLINE sl_v sl_v_div6(sl_v c, sl_v sixth) {
  const sl_v q = sl_v_mul(c, sixth);
  return sl_v_fma(sl_v_fma(q, sl_v_dup(-6.0f), c), sixth, q);
}

SL_V_INLINE void sl_vunary(const sl_activation_t* act, const float* x, float* y, size_t n) {
  const sl_v zero = sl_v_dup(0.0f), three = sl_v_dup(3.0f), six = sl_v_dup(6.0f), sixth = sl_v_dup(1.0f / 6.0f);
  const sl_v one = sl_v_dup(1.0f), half = sl_v_dup(0.5f), lo = sl_v_dup(act->min), hi = sl_v_dup(act->max);
  switch (act->type) {
    case SL_ACT_NONE: SL_V_MAP(v); break;
    case SL_ACT_RELU: SL_V_MAP(sl_v_max(v, zero)); break;
    case SL_ACT_RELU6: SL_V_MAP(sl_v_clamp(v, zero, six)); break;
    case SL_ACT_CLAMP: SL_V_MAP(sl_v_clamp(v, lo, hi)); break;
    case SL_ACT_HARDSWISH: SL_V_MAP(sl_v_mul(v, sl_v_div6(sl_v_clamp(sl_v_add(v, three), zero, six), sixth))); break;
    case SL_ACT_HARDSIGMOID: SL_V_MAP(sl_v_div6(sl_v_clamp(sl_v_add(v, three), zero, six), sixth)); break;
    case SL_ACT_SIGMOID: SL_V_MAP(sl_v_div(one, sl_v_add(one, sl_v_exp(sl_v_sub(zero, v))))); break;
    case SL_ACT_SILU: SL_V_MAP(sl_v_div(v, sl_v_add(one, sl_v_exp(sl_v_sub(zero, v))))); break;
    case SL_ACT_GELU:
      SL_V_MAP(sl_v_mul(sl_v_mul(half, v), sl_v_add(one, sl_v_erf(sl_v_mul(v, sl_v_dup(0.70710678f))))));
      break;
    case SL_ACT_GELU_TANH:
      SL_V_MAP(sl_v_mul(sl_v_mul(half, v),
                        sl_v_add(one, sl_v_tanh(sl_v_mul(sl_v_dup(0.79788456f),
                                                         sl_v_fma(sl_v_mul(sl_v_dup(0.044715f), v), sl_v_mul(v, v), v))))));
      break;
    case SL_ACT_TANH: SL_V_MAP(sl_v_tanh(v)); break;
    case SL_ACT_NEG: SL_V_MAP(sl_v_mul(v, sl_v_dup(-1.0f))); break;
    case SL_ACT_ABS: SL_V_MAP(sl_v_abs(v)); break;
    case SL_ACT_SQRT: SL_V_MAP(sl_v_sqrt(v)); break;
    case SL_ACT_RSQRT: SL_V_MAP(sl_v_div(one, sl_v_sqrt(v))); break;
    case SL_ACT_EXP: SL_V_MAP(sl_v_exp_full(v)); break;
    case SL_ACT_LOG: SL_V_MAP(sl_v_log(v)); break;
    case SL_ACT_ERF: SL_V_MAP(sl_v_erf(v)); break;
    case SL_ACT_POW: sl_vpow(act->exponent, x, y, n); break;
    case SL_ACT_COUNT: break;
  }
}

/* y = POST(clamp(a op b)) over a row, each input a row (LOAD_A/LOAD_B of sl_v_load) or one value
 * (LOADs that return sa/sb): one loop per combination, so no branch runs per vector. */
#define SL_V_BINARY_LOOP(F, LOAD_A, LOAD_B, POST)                                            \
  do {                                                                                       \
    size_t i_ = 0;                                                                           \
    for (; i_ + SL_V_WIDTH <= n; i_ += SL_V_WIDTH) {                                         \
      const sl_v u = LOAD_A(a + i_, sa), w = LOAD_B(b + i_, sb);                             \
      sl_v_store(y + i_, POST(sl_v_clamp((F), lo, hi)));                                     \
    }                                                                                        \
    if (i_ < n) {                                                                            \
      const sl_v_tail t_ = sl_v_tail_of(n - i_);                                             \
      const sl_v u = LOAD_A##_TAIL(a + i_, sa, t_), w = LOAD_B##_TAIL(b + i_, sb, t_);       \
      sl_v_store_tail(y + i_, POST(sl_v_clamp((F), lo, hi)), t_);                            \
    }                                                                                        \
  } while (0)
#define SL_V_ROW(p, one) sl_v_load(p)
#define SL_V_ROW_TAIL(p, one, t) sl_v_load_tail(p, t)
#define SL_V_ONE(p, one) (one)
#define SL_V_ONE_TAIL(p, one, t) (one)
#define SL_V_AS_IS(v) (v)
#define SL_V_PRELU(v) sl_v_prelu(v, s)
#define SL_V_BINARY_POST(F, POST)                                         \
  do {                                                                    \
    if (a_step && b_step) SL_V_BINARY_LOOP(F, SL_V_ROW, SL_V_ROW, POST);  \
    else if (a_step) SL_V_BINARY_LOOP(F, SL_V_ROW, SL_V_ONE, POST);       \
    else if (b_step) SL_V_BINARY_LOOP(F, SL_V_ONE, SL_V_ROW, POST);       \
    else SL_V_BINARY_LOOP(F, SL_V_ONE, SL_V_ONE, POST);                   \
  } while (0)
#define SL_V_BINARY(F) SL_V_BINARY_POST(F, SL_V_AS_IS)

/* v > 0 ? v : v * s (NaN times s: NaN). */
SL_V_INLINE sl_v sl_v_prelu(sl_v v, sl_v s) { return sl_v_select(sl_v_lt(sl_v_dup(0.0f), v), v, sl_v_mul(v, s)); }

SL_V_INLINE void sl_vbinary(sl_binary_op_t op, const float* a, size_t a_step, const float* b, size_t b_step, float* y,
                            size_t n, const sl_minmax_t* mm, const float* slope) {
  const sl_v sa = sl_v_splat(a), sb = sl_v_splat(b), lo = sl_v_splat(&mm->min), hi = sl_v_splat(&mm->max);
  if (slope != NULL) { /* ADD (a convolution's residual) then PRELU */
    const sl_v s = sl_v_splat(slope);
    SL_V_BINARY_POST(sl_v_add(u, w), SL_V_PRELU);
    return;
  }
  switch (op) {
    case SL_BINARY_ADD: SL_V_BINARY(sl_v_add(u, w)); break;
    case SL_BINARY_SUB: SL_V_BINARY(sl_v_sub(u, w)); break;
    case SL_BINARY_MUL: SL_V_BINARY(sl_v_mul(u, w)); break;
    case SL_BINARY_DIV: SL_V_BINARY(sl_v_div(u, w)); break;
    case SL_BINARY_PRELU: SL_V_BINARY(sl_v_prelu(u, w)); break;
  }
}

/* y = softmax(scale * x + mask) over one row of n >= 1, the mask optional. */
SL_V_INLINE void sl_softmax(const float* x, const float* mask, float scale, float* y, size_t n) {
  const sl_v s = sl_v_dup(scale), zero = sl_v_dup(0.0f);
  sl_v mx = sl_v_dup(-INFINITY);
  size_t i = 0;
  for (; i + SL_V_WIDTH <= n; i += SL_V_WIDTH) {
    sl_v z = sl_v_mul(sl_v_load(x + i), s);
    if (mask != NULL) z = sl_v_add(z, sl_v_load(mask + i));
    sl_v_store(y + i, z);
    mx = sl_v_max(z, mx);
  }
  if (i < n) {
    const sl_v_tail t = sl_v_tail_of(n - i);
    sl_v z = sl_v_mul(sl_v_load_tail(x + i, t), s);
    if (mask != NULL) z = sl_v_add(z, sl_v_load_tail(mask + i, t));
    sl_v_store_tail(y + i, z, t);
    mx = sl_v_max(sl_v_select(sl_v_tail_mask(t), z, sl_v_dup(-INFINITY)), mx);
  }
  const sl_v shift = sl_v_dup(sl_v_hmax(mx));
  sl_v sum = zero;
  for (i = 0; i + SL_V_WIDTH <= n; i += SL_V_WIDTH) {
    const sl_v e = sl_v_exp(sl_v_sub(sl_v_load(y + i), shift));
    sl_v_store(y + i, e);
    sum = sl_v_add(sum, e);
  }
  if (i < n) {
    const sl_v_tail t = sl_v_tail_of(n - i);
    const sl_v e = sl_v_exp(sl_v_sub(sl_v_load_tail(y + i, t), shift));
    sl_v_store_tail(y + i, e, t);
    sum = sl_v_add(sum, sl_v_select(sl_v_tail_mask(t), e, zero));
  }
  const sl_v inv = sl_v_dup(1.0f / sl_v_hsum(sum));
  for (i = 0; i + SL_V_WIDTH <= n; i += SL_V_WIDTH) sl_v_store(y + i, sl_v_mul(sl_v_load(y + i), inv));
  if (i < n) {
    const sl_v_tail t = sl_v_tail_of(n - i);
    sl_v_store_tail(y + i, sl_v_mul(sl_v_load_tail(y + i, t), inv), t);
  }
}

/* Layer norm of one row: (x - mean) / sqrt(variance + epsilon), times gamma plus beta (either
 * may be NULL). Two passes for the statistics, as the reference. */
SL_V_INLINE void sl_layernorm(const float* x, size_t n, float epsilon, const float* gamma, const float* beta,
                              float* y) {
  const sl_v zero = sl_v_dup(0.0f);
  sl_v sum = zero;
  size_t i = 0;
  for (; i + SL_V_WIDTH <= n; i += SL_V_WIDTH) sum = sl_v_add(sum, sl_v_load(x + i));
  if (i < n) sum = sl_v_add(sum, sl_v_load_tail(x + i, sl_v_tail_of(n - i)));
  const float mean = sl_v_hsum(sum) / (float)n;
  const sl_v mu = sl_v_dup(mean);
  sl_v sq = zero;
  for (i = 0; i + SL_V_WIDTH <= n; i += SL_V_WIDTH) {
    const sl_v d = sl_v_sub(sl_v_load(x + i), mu);
    sq = sl_v_fma(d, d, sq);
  }
  if (i < n) {
    const sl_v_tail t = sl_v_tail_of(n - i);
    const sl_v d = sl_v_select(sl_v_tail_mask(t), sl_v_sub(sl_v_load_tail(x + i, t), mu), zero);
    sq = sl_v_fma(d, d, sq);
  }
  const sl_v rstd = sl_v_dup(1.0f / sqrtf(sl_v_hsum(sq) / (float)n + epsilon));
  const sl_v one = sl_v_dup(1.0f);
  for (i = 0; i + SL_V_WIDTH <= n; i += SL_V_WIDTH) {
    const sl_v g = gamma != NULL ? sl_v_load(gamma + i) : one, b = beta != NULL ? sl_v_load(beta + i) : zero;
    sl_v_store(y + i, sl_v_fma(sl_v_mul(sl_v_sub(sl_v_load(x + i), mu), rstd), g, b));
  }
  if (i < n) {
    const sl_v_tail t = sl_v_tail_of(n - i);
    const sl_v g = gamma != NULL ? sl_v_load_tail(gamma + i, t) : one;
    const sl_v b = beta != NULL ? sl_v_load_tail(beta + i, t) : zero;
    sl_v_store_tail(y + i, sl_v_fma(sl_v_mul(sl_v_sub(sl_v_load_tail(x + i, t), mu), rstd), g, b), t);
  }
}

/* Each row's n floats split into its even and odd ones (a stride-2 depthwise convolution's
 * column phases): whole vector pairs, then one pair cut at the tail, whose masks every row
 * shares (rows are often a few vectors long). */
SL_V_INLINE void sl_unzip(size_t rows, size_t n, const float* x, size_t x_stride, float* even, float* odd,
                          size_t y_stride) {
  const size_t full = n / (2 * SL_V_WIDTH) * (2 * SL_V_WIDTH), m = n - full;
  const sl_v_tail ta = sl_v_tail_of(m < SL_V_WIDTH ? m : SL_V_WIDTH), tb = sl_v_tail_of(m > SL_V_WIDTH ? m - SL_V_WIDTH : 0);
  const sl_v_tail te = sl_v_tail_of((m + 1) / 2), to = sl_v_tail_of(m / 2);
  for (size_t r = 0; r < rows; r++, x += x_stride, even += y_stride, odd += y_stride) {
    for (size_t i = 0; i < full; i += 2 * SL_V_WIDTH) {
      const sl_v a = sl_v_load(x + i), b = sl_v_load(x + i + SL_V_WIDTH);
      sl_v_store(even + i / 2, sl_v_unzip_even(a, b));
      sl_v_store(odd + i / 2, sl_v_unzip_odd(a, b));
    }
    if (m == 0) continue;
    const sl_v a = sl_v_load_tail(x + full, ta);
    const sl_v b = m > SL_V_WIDTH ? sl_v_load_tail(x + full + SL_V_WIDTH, tb) : sl_v_dup(0.0f);
    sl_v_store_tail(even + full / 2, sl_v_unzip_even(a, b), te);
    if (m >= 2) sl_v_store_tail(odd + full / 2, sl_v_unzip_odd(a, b), to);
  }
}

/* Max pooling (maxpool): the window's next value into acc. A NaN stays once there (max keeps its
 * first operand's) and a NaN value wins. */
SL_V_INLINE sl_v sl_maxpool_step(sl_v acc, sl_v v) { return sl_v_select(sl_v_eq(v, v), sl_v_max(acc, v), v); }

/* The largest of kh rows, x_stride apart, at p: `lanes` floats (a whole vector when at least its
 * width; lanes >= 1, since a partial load of none reads a whole vector on some ISAs). */
SL_V_INLINE sl_v sl_maxpool_rows(const float* p, size_t kh, size_t x_stride, size_t lanes) {
  if (lanes >= SL_V_WIDTH) {
    sl_v acc = sl_v_load(p);
    for (size_t r = 1; r < kh; r++) acc = sl_maxpool_step(acc, sl_v_load(p + r * x_stride));
    return acc;
  }
  const sl_v_tail t = sl_v_tail_of(lanes);
  sl_v acc = sl_v_load_tail(p, t);
  for (size_t r = 1; r < kh; r++) acc = sl_maxpool_step(acc, sl_v_load_tail(p + r * x_stride, t));
  return acc;
}

/* m <= SL_V_WIDTH outputs from their first window's column at p: each window column j is the
 * rows' maximum, read as a vector at p + j (stride 1), or at stride 2 as the even (j even) or odd
 * floats of the vector pair at p + (j & ~1): one pair serves two columns. Only the floats the
 * windows reach are loaded: 2 (m - 1) + kw at stride 2. */
SL_V_INLINE sl_v sl_maxpool_vector(const float* p, size_t m, size_t kh, size_t kw, size_t stride, size_t x_stride) {
  if (stride == 1) {
    sl_v acc = sl_maxpool_rows(p, kh, x_stride, m);
    for (size_t j = 1; j < kw; j++) acc = sl_maxpool_step(acc, sl_maxpool_rows(p + j, kh, x_stride, m));
    return acc;
  }
  const size_t need = 2 * (m - 1) + kw;
  sl_v acc = sl_v_dup(0.0f);
  for (size_t j = 0; j < kw; j += 2) {
    const size_t lanes = need - j;
    const sl_v a = sl_maxpool_rows(p + j, kh, x_stride, lanes);
    const sl_v b = lanes > SL_V_WIDTH ? sl_maxpool_rows(p + j + SL_V_WIDTH, kh, x_stride, lanes - SL_V_WIDTH)
                                      : sl_v_dup(0.0f);
    acc = j == 0 ? sl_v_unzip_even(a, b) : sl_maxpool_step(acc, sl_v_unzip_even(a, b));
    if (j + 1 < kw) acc = sl_maxpool_step(acc, sl_v_unzip_odd(a, b));
  }
  return acc;
}

#if SL_V_WIDTH >= 4
/* Stride 2 over 3 columns (most CNNs' 3x3 pooling) along one output row: each vector pair's rows'
 * maximum is taken once and the third column, x[2i + 2], shifted out of it and the next pair's
 * first vector, which the next outputs start from: two vertical maxima per output vector instead
 * of four. Returns the outputs done, whole vectors. */
SL_V_INLINE size_t sl_maxpool_s2k3(size_t n, size_t kh, const float* x, size_t x_stride, float* y) {
  if (n < SL_V_WIDTH) return 0;
  const size_t need = 2 * n + 1; /* the floats the row's windows reach */
  sl_v v0 = sl_maxpool_rows(x, kh, x_stride, SL_V_WIDTH);
  size_t i = 0;
  for (; i + SL_V_WIDTH <= n; i += SL_V_WIDTH) {
    const float* p = x + 2 * i;
    const sl_v v1 = sl_maxpool_rows(p + SL_V_WIDTH, kh, x_stride, SL_V_WIDTH);
    const size_t rest = need - 2 * i - 2 * SL_V_WIDTH; /* at least 1; a whole vector unless this is the last */
    const sl_v v2 = sl_maxpool_rows(p + 2 * SL_V_WIDTH, kh, x_stride, rest < SL_V_WIDTH ? rest : SL_V_WIDTH);
    const sl_v third = sl_v_unzip_even(sl_v_ext(v0, v1, 2), sl_v_ext(v1, v2, 2));
    sl_v_store(y + i, sl_maxpool_step(sl_maxpool_step(sl_v_unzip_even(v0, v1), sl_v_unzip_odd(v0, v1)), third));
    v0 = v2;
  }
  return i;
}
#endif

SL_V_INLINE void sl_maxpool_any(size_t out_rows, size_t n, size_t kh, size_t kw, size_t stride, const float* x,
                                size_t x_stride, size_t x_step, float* y, size_t y_stride) {
  for (size_t o = 0; o < out_rows; o++, x += x_step, y += y_stride) {
    size_t i = 0;
#if SL_V_WIDTH >= 4
    if (stride == 2 && kw == 3) i = sl_maxpool_s2k3(n, kh, x, x_stride, y);
#endif
    for (; i + SL_V_WIDTH <= n; i += SL_V_WIDTH)
      sl_v_store(y + i, sl_maxpool_vector(x + i * stride, SL_V_WIDTH, kh, kw, stride, x_stride));
    if (i < n)
      sl_v_store_tail(y + i, sl_maxpool_vector(x + i * stride, n - i, kh, kw, stride, x_stride), sl_v_tail_of(n - i));
  }
}

/* The common windows get copies with constant sizes, their loops unrolled. */
SL_V_INLINE void sl_maxpool(size_t out_rows, size_t n, size_t kh, size_t kw, size_t stride, const float* x,
                            size_t x_stride, size_t x_step, float* y, size_t y_stride) {
  if (kh == 2 && kw == 2 && stride == 2) sl_maxpool_any(out_rows, n, 2, 2, 2, x, x_stride, x_step, y, y_stride);
  else if (kh == 3 && kw == 3 && stride == 2) sl_maxpool_any(out_rows, n, 3, 3, 2, x, x_stride, x_step, y, y_stride);
  else if (kh == 3 && kw == 3 && stride == 1) sl_maxpool_any(out_rows, n, 3, 3, 1, x, x_stride, x_step, y, y_stride);
  else sl_maxpool_any(out_rows, n, kh, kw, stride, x, x_stride, x_step, y, y_stride);
}

#define SL_DEFINE_vunary(name, PIXELS, ROWS) \
  SL_V_TARGET void name(const sl_activation_t* act, const float* x, float* y, size_t n) { sl_vunary(act, x, y, n); }
#define SL_DEFINE_vbinary(name, PIXELS, ROWS)                                                                   \
  SL_V_TARGET void name(sl_binary_op_t op, const float* a, size_t a_step, const float* b, size_t b_step, float* y, \
                        size_t n, const sl_minmax_t* mm, const float* slope) {                                  \
    sl_vbinary(op, a, a_step, b, b_step, y, n, mm, slope);                                                      \
  }
#define SL_DEFINE_softmax(name, PIXELS, ROWS)                                                  \
  SL_V_TARGET void name(const float* x, const float* mask, float scale, float* y, size_t n) { \
    sl_softmax(x, mask, scale, y, n);                                                          \
  }
#define SL_DEFINE_layernorm(name, PIXELS, ROWS)                                                           \
  SL_V_TARGET void name(const float* x, size_t n, float epsilon, const float* gamma, const float* beta, \
                        float* y) {                                                                     \
    sl_layernorm(x, n, epsilon, gamma, beta, y);                                                        \
  }
#define SL_DEFINE_unzip(name, PIXELS, ROWS)                                                              \
  SL_V_TARGET void name(size_t rows, size_t n, const float* x, size_t x_stride, float* even, float* odd, \
                        size_t y_stride) {                                                               \
    sl_unzip(rows, n, x, x_stride, even, odd, y_stride);                                                 \
  }
/* Bilinear resampling along a row (sl_f32_bilinear_row_ukernel_fn). With SL_V_LOOKUP (16-lane
 * headers: sl_v_lookup(t, idx), lane i = t[idx[i]] for idx in 0..15) a block whose columns lie
 * within 16 floats loads them once and picks both neighbours by lane; the sums are the
 * reference's, term by term (no FMA), so every path gives the same floats. */
SL_V_INLINE void sl_bilinear_row(size_t n, const float* src, size_t src_n, const sl_bilinear_cols_t* cols,
                                 float* out) {
  for (size_t i = 0, b = 0; i < n; i += SL_BILINEAR_BLOCK, b++) {
    const size_t m = n - i < SL_BILINEAR_BLOCK ? n - i : SL_BILINEAR_BLOCK;
    const int32_t base = cols->base[b];
#if defined(SL_V_LOOKUP) && SL_V_WIDTH == SL_BILINEAR_BLOCK
    if (base >= 0) {
      const size_t avail = src_n - (size_t)base;
      const sl_v row = avail >= SL_V_WIDTH ? sl_v_load(src + base) : sl_v_load_tail(src + base, sl_v_tail_of(avail));
      const sl_v f = sl_v_load(cols->frac + i);
      const sl_v o = sl_v_add(sl_v_mul(sl_v_lookup(row, cols->lo + i), sl_v_sub(sl_v_dup(1.0f), f)),
                              sl_v_mul(sl_v_lookup(row, cols->hi + i), f));
      if (m == SL_V_WIDTH) sl_v_store(out + i, o);
      else sl_v_store_tail(out + i, o, sl_v_tail_of(m));
      continue;
    }
#else
    (void)src_n;
#endif
    const float* s = base >= 0 ? src + base : src;
    for (size_t k = i; k < i + m; k++) out[k] = s[cols->lo[k]] * (1.0f - cols->frac[k]) + s[cols->hi[k]] * cols->frac[k];
  }
}

#define SL_DEFINE_bilinear_row(name, PIXELS, ROWS)                                                       \
  SL_V_TARGET void name(size_t n, const float* src, size_t src_n, const sl_bilinear_cols_t* cols, float* out) { \
    sl_bilinear_row(n, src, src_n, cols, out);                                                           \
  }

#define SL_DEFINE_maxpool(name, PIXELS, ROWS)                                                                  \
  SL_V_TARGET void name(size_t out_rows, size_t n, size_t kh, size_t kw, size_t stride, const float* x,       \
                        size_t x_stride, size_t x_step, float* y, size_t y_stride) {                           \
    sl_maxpool(out_rows, n, kh, kw, stride, x, x_stride, x_step, y, y_stride);                                 \
  }

#endif
