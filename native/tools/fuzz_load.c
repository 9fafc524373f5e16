/* libFuzzer target: any byte string must verify-and-run or fail cleanly. */
#include <stdint.h>
#include <string.h>

#include "sparselite.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sl_model_t* m = sl_model_new();
  if (m == NULL) return 0;
  /* Running is part of the target, but skip models whose arena alone is huge. */
  if (sl_model_load_buffer(m, data, size, 1) == SL_OK && sl_model_arena_bytes(m) < (16u << 20)) {
    for (int32_t i = 0; i < sl_model_num_inputs(m); i++) {
      sl_tensor_info_t info;
      void* in;
      sl_model_input_info(m, i, &info);
      sl_model_input_data(m, i, &in);
      memset(in, 0, info.num_bytes);
    }
    sl_model_run(m);
  }
  sl_model_free(m);
  return 0;
}
