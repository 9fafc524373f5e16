/* The activations by their definitions, with libm: the reference vunary kernels are held to,
 * and what NaN does (it stays NaN through every activation, clamps included). */
#include <math.h>

#include "../kernels.h"

static float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

float sl_activation_scalar(const sl_activation_t* act, float v) {
  switch (act->type) {
    case SL_ACT_NONE: return v;
    case SL_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case SL_ACT_RELU6: return clampf(v, 0.0f, 6.0f);
    case SL_ACT_CLAMP: return clampf(v, act->min, act->max);
    case SL_ACT_HARDSWISH: return v * (clampf(v + 3.0f, 0.0f, 6.0f) / 6.0f);
    case SL_ACT_HARDSIGMOID: return clampf(v + 3.0f, 0.0f, 6.0f) / 6.0f;
    case SL_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case SL_ACT_SILU: return v / (1.0f + expf(-v));
    case SL_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678f));
    case SL_ACT_GELU_TANH: return 0.5f * v * (1.0f + tanhf(0.79788456f * (v + 0.044715f * v * v * v)));
    case SL_ACT_TANH: return tanhf(v);
    case SL_ACT_NEG: return -v;
    case SL_ACT_ABS: return fabsf(v);
    case SL_ACT_SQRT: return sqrtf(v);
    case SL_ACT_RSQRT: return 1.0f / sqrtf(v);
    case SL_ACT_EXP: return expf(v);
    case SL_ACT_LOG: return logf(v);
    case SL_ACT_ERF: return erff(v);
    case SL_ACT_POW: return powf(v, act->exponent);
    case SL_ACT_COUNT: break;
  }
  return v;
}

void sl_f32_vunary_ref(const sl_activation_t* act, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = sl_activation_scalar(act, x[i]);
}
