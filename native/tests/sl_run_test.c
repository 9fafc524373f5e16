/* Loads each .slite given, runs it, then loads many truncated and byte-flipped
 * copies: each must load-and-run or fail with a message, never crash. Built
 * with ASan/UBSan in CI so any out-of-bounds access fails the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drive.h"

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

/* Loads bytes; if they verify, fills inputs with a pattern and runs, also resized. Returns the status. */
static sl_status_t load_and_run(const unsigned char* data, size_t size, int threads, int tune, int fuse) {
  sl_model_t* m = sl_model_new();
  sl_model_set_num_threads(m, threads);
  sl_model_set_tuning(m, tune);
  sl_model_set_fusion(m, fuse);
  sl_status_t st = sl_model_load_buffer(m, data, size, 1);
  if (st == SL_OK) {
    sl_test_fill_inputs(m, 0x3c);
    st = sl_model_run(m);
    if (st == SL_OK) st = sl_model_set_profiling(m, 1);
    if (st == SL_OK) st = sl_model_run(m);
    if (st == SL_OK) st = sl_test_run_resized(m, 0x3c);
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
    check(load_and_run(data, size, 1, 0, -1) == SL_OK, "valid model loads and runs", argv[a]);
    check(load_and_run(data, size, 3, 1, -1) == SL_OK, "runs tuned on a thread pool", argv[a]);
    check(load_and_run(data, size, 2, 0, 2) == SL_OK, "runs every fusable chain fused", argv[a]);
    sl_model_t* m = sl_model_new();
    check(sl_model_load_file(m, argv[a]) == SL_OK, "loads from its path", argv[a]);
    sl_model_free(m);

    unsigned char* copy = malloc(size > 0 ? size : 1);
    for (size_t cut = 0; cut < size; cut += 1 + size / 97) {
      sl_status_t st = load_and_run(data, cut, 1, 0, -1);
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
      sl_status_t st = load_and_run(copy, size, 1 + trial % 2, 0, trial % 3 == 0 ? 1 : -1);
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
