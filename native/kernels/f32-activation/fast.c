/* The activations and row reductions the runtime runs: plain C loops without calls or branches that compilers
 * turn into SIMD for every ISA. exp reduces to 2^n * e^r with |r| <= ln2/2 and a degree-6
 * polynomial; erf uses Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7). ref.c (libm) is the
 * reference the tests hold these to. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"

/* x86: one copy per ISA, picked at load by the dynamic linker (ifunc); AVX2 doubles the width. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define SL_VECTOR_CLONES __attribute__((target_clones("avx2,fma", "default")))
#else
#define SL_VECTOR_CLONES
#endif

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static inline float fast_exp(float x) {
  /* Clamped so 2^n stays a normal float; NaN takes the low branch here and is returned below,
   * never converted to an integer (undefined in C). */
  const float c = x > -87.0f ? (x < 88.0f ? x : 88.0f) : -87.0f;
  /* Adding 1.5 * 2^23 rounds to an integer in the low mantissa bits. */
  const float magic = 12582912.0f;
  float n = (c * 1.44269504f + magic) - magic;
  float r = c - n * 0.693145752f - n * 1.42860677e-06f;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.66666667e-01f + r * (4.16666667e-02f +
                                                                        r * (8.33333333e-03f + r * 1.38888889e-03f)))));
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof(scale));
  return x == x ? p * scale : x;
}

static inline float fast_erf(float x) {
  float a = x < 0.0f ? -x : x;
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  float e = 1.0f - poly * fast_exp(-a * a);
  return x < 0.0f ? -e : e;
}

static inline float fast_tanh(float x) {
  /* 1 - 2 / (e^2x + 1), which saturates cleanly at both ends. */
  return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f);
}

#define MAP(expr)                                   \
  do {                                              \
    for (size_t i = 0; i < n; i++) {                \
      const float v = x[i];                         \
      y[i] = (expr);                                \
    }                                               \
  } while (0)

SL_VECTOR_CLONES void sl_f32_activation(const sl_activation_t* act, const float* x, float* y, size_t n) {
  const float lo = act->min, hi = act->max;
  switch (act->type) {
    case SL_ACT_NONE: MAP(v); break;
    case SL_ACT_RELU: MAP(v > 0.0f ? v : 0.0f); break;
    case SL_ACT_RELU6: MAP(clampf(v, 0.0f, 6.0f)); break;
    case SL_ACT_CLAMP: MAP(clampf(v, lo, hi)); break;
    case SL_ACT_HARDSWISH: MAP(v * clampf(v + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f)); break;
    case SL_ACT_HARDSIGMOID: MAP(clampf(v + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f)); break;
    case SL_ACT_SIGMOID: MAP(1.0f / (1.0f + fast_exp(-v))); break;
    case SL_ACT_SILU: MAP(v / (1.0f + fast_exp(-v))); break;
    case SL_ACT_GELU: MAP(0.5f * v * (1.0f + fast_erf(v * 0.70710678f))); break;
    case SL_ACT_GELU_TANH: MAP(0.5f * v * (1.0f + fast_tanh(0.79788456f * (v + 0.044715f * v * v * v)))); break;
    case SL_ACT_TANH: MAP(fast_tanh(v)); break;
    case SL_ACT_COUNT: break;
  }
}

SL_VECTOR_CLONES float sl_f32_exp_sum(const float* x, float shift, float* y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = fast_exp(x[i] - shift);
  /* Eight partial sums: an in-order float sum would keep the loop scalar. */
  float part[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) part[k] += y[i + k];
  float sum = 0.0f;
  for (; i < n; i++) sum += y[i];
  for (int k = 0; k < 8; k++) sum += part[k];
  return sum;
}

SL_VECTOR_CLONES float sl_f32_max(const float* x, size_t n) {
  float part[8];
  for (int k = 0; k < 8; k++) part[k] = x[0];
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) part[k] = x[i + k] > part[k] ? x[i + k] : part[k];
  float mx = part[0];
  for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  for (int k = 1; k < 8; k++) mx = part[k] > mx ? part[k] : mx;
  return mx;
}

SL_VECTOR_CLONES void sl_f32_mean_rstd(const float* x, size_t n, float epsilon, float* mean, float* rstd) {
  float part[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) part[k] += x[i + k];
  float sum = 0.0f;
  for (; i < n; i++) sum += x[i];
  for (int k = 0; k < 8; k++) sum += part[k];
  const float mu = sum / (float)n;
  float sq[8] = {0};
  for (i = 0; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) sq[k] += (x[i + k] - mu) * (x[i + k] - mu);
  float var = 0.0f;
  for (; i < n; i++) var += (x[i] - mu) * (x[i] - mu);
  for (int k = 0; k < 8; k++) var += sq[k];
  *mean = mu;
  *rstd = 1.0f / sqrtf(var / (float)n + epsilon);
}

SL_VECTOR_CLONES void sl_f32_normalize_affine(const float* x, size_t n, float mean, float rstd, const float* gamma,
                                               const float* beta, float* y) {
  if (gamma != NULL && beta != NULL) {
    for (size_t c = 0; c < n; c++) y[c] = (x[c] - mean) * rstd * gamma[c] + beta[c];
  } else if (gamma != NULL) {
    for (size_t c = 0; c < n; c++) y[c] = (x[c] - mean) * rstd * gamma[c];
  } else {
    for (size_t c = 0; c < n; c++) y[c] = (x[c] - mean) * rstd;
  }
}
