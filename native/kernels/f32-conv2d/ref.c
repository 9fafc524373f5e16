#include "../kernels.h"

void sl_f32_conv2d_ref(const sl_conv2d_shape_t* s, const float* w, const float* bias,
                       const float* x, float* y, const sl_activation_t* act) {
  uint32_t icg = s->in_c / s->groups, ocg = s->out_c / s->groups;
  for (uint32_t oc = 0; oc < s->out_c; oc++) {
    uint32_t g = oc / ocg;
    const float* wo = w + (size_t)oc * icg * s->kernel_h * s->kernel_w;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
      for (uint32_t ox = 0; ox < s->out_w; ox++) {
        float acc = bias != NULL ? bias[oc] : 0.0f;
        for (uint32_t ic = 0; ic < icg; ic++) {
          const float* xi = x + (size_t)(g * icg + ic) * s->in_h * s->in_w;
          const float* wi = wo + (size_t)ic * s->kernel_h * s->kernel_w;
          for (uint32_t ky = 0; ky < s->kernel_h; ky++) {
            int64_t iy = (int64_t)oy * s->stride_h + (int64_t)ky * s->dilation_h - s->pad_top;
            if (iy < 0 || iy >= s->in_h) continue;
            for (uint32_t kx = 0; kx < s->kernel_w; kx++) {
              int64_t ix = (int64_t)ox * s->stride_w + (int64_t)kx * s->dilation_w - s->pad_left;
              if (ix < 0 || ix >= s->in_w) continue;
              acc += wi[ky * s->kernel_w + kx] * xi[iy * s->in_w + ix];
            }
          }
        }
        y[((size_t)oc * s->out_h + oy) * s->out_w + ox] = sl_activation_scalar(act, acc);
      }
    }
  }
}
