/* What the test drivers (tests/sl_run_test.c, tools/fuzz_load.c) do with a loaded model: fill its
 * inputs, and shrink every dynamic axis to half its maximum, then to 1, running each time, so
 * resizing must re-prepare the ops without touching memory outside what load planned. */
#ifndef SL_TESTS_DRIVE_H
#define SL_TESTS_DRIVE_H

#include <string.h>

#include "sparselite.h"

static void sl_test_fill_inputs(sl_model_t* m, int byte) {
  for (int32_t i = 0; i < sl_model_num_inputs(m); i++) {
    sl_tensor_info_t info;
    void* in;
    sl_model_input_info(m, i, &info);
    sl_model_input_data(m, i, &in);
    memset(in, byte, info.num_bytes);
  }
}

static sl_status_t sl_test_run_resized(sl_model_t* m, int byte) {
  for (int step = 0; step < 2; step++) {
    for (int32_t i = 0; i < sl_model_num_inputs(m); i++) {
      sl_tensor_info_t info;
      sl_model_input_info(m, i, &info);
      if (info.dynamic_axes == 0) continue;
      int32_t shape[SL_MAX_RANK];
      for (int32_t d = 0; d < info.rank; d++)
        shape[d] = (info.dynamic_axes >> d & 1) ? (step == 0 ? (info.max_shape[d] + 1) / 2 : 1) : info.max_shape[d];
      sl_status_t st = sl_model_resize_input(m, i, info.rank, shape);
      if (st != SL_OK) return st;
    }
    sl_test_fill_inputs(m, byte);
    sl_status_t st = sl_model_run(m);
    if (st != SL_OK) return st;
  }
  return SL_OK;
}

#endif
