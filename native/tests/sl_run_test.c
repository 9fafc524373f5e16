/* Loads each .slite given, runs it, then loads many truncated and byte-flipped
 * copies: each must load-and-run or fail with a message, never crash. Built
 * with ASan/UBSan in CI so any out-of-bounds access fails the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparselite.h"

static int failed, passed;

static void check(int ok, const char* what, const char* path) {
  if (ok) {
    passed++;
  } else {
    failed++;
    fprintf(stderr, "FAIL %s: %s\n", path, what);
  }
}

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* data = malloc((size_t)n + 1);
  if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return data;
}

static void fill_inputs(sl_model_t* m) {
  for (int32_t i = 0; i < sl_model_num_inputs(m); i++) {
    sl_tensor_info_t info;
    void* in;
    sl_model_input_info(m, i, &info);
    sl_model_input_data(m, i, &in);
    memset(in, 0x3c, info.num_bytes);
  }
}

/* Shrinks every dynamic axis to half its maximum, then to 1, and runs each time: resizing must
 * re-prepare the ops without touching memory outside what load planned. */
static sl_status_t run_resized(sl_model_t* m) {
  for (int step = 0; step < 2; step++) {
    for (int32_t i = 0; i < sl_model_num_inputs(m); i++) {
      sl_tensor_info_t info;
      sl_model_input_info(m, i, &info);
      if (info.dynamic_axes == 0) continue;
      int32_t shape[8];
      for (int32_t d = 0; d < info.rank; d++)
        shape[d] = (info.dynamic_axes >> d & 1) ? (step == 0 ? (info.max_shape[d] + 1) / 2 : 1) : info.max_shape[d];
      sl_status_t st = sl_model_resize_input(m, i, info.rank, shape);
      if (st != SL_OK) return st;
    }
    fill_inputs(m);
    sl_status_t st = sl_model_run(m);
    if (st != SL_OK) return st;
  }
  return SL_OK;
}

/* Loads bytes; if they verify, fills inputs with a pattern and runs, also resized. Returns the status. */
static sl_status_t load_and_run(const unsigned char* data, size_t size, int threads, int tune) {
  sl_model_t* m = sl_model_new();
  sl_model_set_num_threads(m, threads);
  sl_model_set_tuning(m, tune);
  sl_status_t st = sl_model_load_buffer(m, data, size, 1);
  if (st == SL_OK) {
    fill_inputs(m);
    st = sl_model_run(m);
    if (st == SL_OK) st = sl_model_set_profiling(m, 1);
    if (st == SL_OK) st = sl_model_run(m);
    if (st == SL_OK) st = run_resized(m);
  } else if (sl_model_last_error(m)[0] == 0) {
    st = SL_ERROR_STATE; /* an error without a message is itself a failure */
  }
  sl_model_free(m);
  return st;
}

int main(int argc, char** argv) {
  unsigned seed = 12345;
  for (int a = 1; a < argc; a++) {
    size_t size;
    unsigned char* data = read_file(argv[a], &size);
    check(data != NULL, "readable", argv[a]);
    if (data == NULL) continue;
    check(load_and_run(data, size, 1, 0) == SL_OK, "valid model loads and runs", argv[a]);
    check(load_and_run(data, size, 3, 1) == SL_OK, "runs tuned on a thread pool", argv[a]);
    sl_model_t* m = sl_model_new();
    check(sl_model_load_file(m, argv[a]) == SL_OK, "loads from its path", argv[a]);
    sl_model_free(m);

    unsigned char* copy = malloc(size > 0 ? size : 1);
    for (size_t cut = 0; cut < size; cut += 1 + size / 97) {
      sl_status_t st = load_and_run(data, cut, 1, 0);
      check(st == SL_ERROR_INVALID_MODEL || st == SL_ERROR_UNSUPPORTED, "truncated file is rejected", argv[a]);
    }
    for (int trial = 0; size > 0 && trial < 400; trial++) { /* an empty file has no byte to flip */
      memcpy(copy, data, size);
      for (int k = 0; k < 1 + trial % 4; k++) {
        seed = seed * 1103515245u + 12345u;
        /* Most flips land in the FlatBuffer header area, where the structure is. */
        size_t limit = size < 4096 ? size : 4096;
        copy[(seed >> 8) % (trial % 2 ? size : limit)] ^= (unsigned char)(1u << ((seed >> 4) % 8));
      }
      sl_status_t st = load_and_run(copy, size, 1 + trial % 2, 0);
      check(st == SL_OK || st == SL_ERROR_INVALID_MODEL || st == SL_ERROR_UNSUPPORTED ||
                st == SL_ERROR_OUT_OF_MEMORY,
            "flipped bytes load or fail cleanly", argv[a]);
    }
    free(copy);
    free(data);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0 || passed == 0;
}
