/* Softmax of one row by its definition, in double with libm: max-subtracted exponentials over
 * their sum. A NaN anywhere in the row makes the whole row NaN. */
#include <math.h>

#include "../kernels.h"

void sl_f32_softmax_ref(const float* x, const float* mask, float scale, float* y, size_t n) {
  double mx = -INFINITY, sum = 0.0;
  bool nan = false;
  for (size_t i = 0; i < n; i++) {
    double z = (double)x[i] * scale + (mask != NULL ? mask[i] : 0.0f);
    nan |= isnan(z);
    mx = z > mx ? z : mx;
  }
  for (size_t i = 0; i < n; i++) sum += exp((double)x[i] * scale + (mask != NULL ? mask[i] : 0.0f) - mx);
  for (size_t i = 0; i < n; i++) {
    double z = (double)x[i] * scale + (mask != NULL ? mask[i] : 0.0f);
    y[i] = nan ? NAN : (float)(exp(z - mx) / sum);
  }
}
