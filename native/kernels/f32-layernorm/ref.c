/* Layer norm of one row by its definition, in double. */
#include <math.h>

#include "../kernels.h"

void sl_f32_layernorm_ref(const float* x, size_t n, float epsilon, const float* gamma, const float* beta,
                          float* y) {
  double mean = 0.0, var = 0.0;
  for (size_t i = 0; i < n; i++) mean += x[i];
  mean /= (double)n;
  for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
  double rstd = 1.0 / sqrt(var / (double)n + epsilon);
  for (size_t i = 0; i < n; i++) {
    double v = (x[i] - mean) * rstd;
    if (gamma != NULL) v *= gamma[i];
    if (beta != NULL) v += beta[i];
    y[i] = (float)v;
  }
}
