/* sparselite-bench: load a .slite, run it with warm-up and threads, print per-op and total
 * timings (like LiteRT's benchmark_model). Static on aarch64-linux for Raspberry Pi OS and
 * Android (adb push + adb shell).
 *
 *   sparselite-bench MODEL.slite [--runs N] [--warmup N] [--threads N] [--input x.npy]
 *                    [--output y.npy] [--json run.json]
 *
 * Inputs and outputs are .npy (float32, C order) so results compare with the desktop; without
 * --input the first input is filled from a seeded generator. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sparselite.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double percentile(double* sorted, int n, double p) {
  int i = (int)(p / 100.0 * (n - 1) + 0.5);
  return sorted[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

static void die(const char* what, const char* detail) {
  fprintf(stderr, "sparselite-bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

/* Reads a float32 .npy whose element count must be `count`. */
static void read_npy(const char* path, float* dst, size_t count) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) die("cannot open input", path);
  unsigned char head[10];
  if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0) die("not a .npy file", path);
  size_t hlen = head[6] == 1 ? (size_t)head[8] | (size_t)head[9] << 8 : 0;
  if (head[6] != 1) die("only .npy version 1.0 is read", path);
  char* header = calloc(1, hlen + 1);
  if (header == NULL || fread(header, 1, hlen, f) != hlen) die("truncated .npy header", path);
  if (strstr(header, "'<f4'") == NULL || strstr(header, "'fortran_order': False") == NULL)
    die("input must be float32 ('<f4') in C order", path);
  if (fread(dst, sizeof(float), count, f) != count) die("the input holds fewer values than the model's input", path);
  free(header);
  fclose(f);
}

static void write_npy(const char* path, const float* src, const int32_t* shape, int32_t rank) {
  char dims[160] = "";
  size_t len = 0, count = 1;
  for (int32_t d = 0; d < rank; d++) {
    len += (size_t)snprintf(dims + len, sizeof(dims) - len, "%d,%s", shape[d], rank == 1 ? "" : " ");
    count *= (size_t)shape[d];
  }
  char header[256];
  int n = snprintf(header, sizeof(header), "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  FILE* f = fopen(path, "wb");
  if (f == NULL) die("cannot write output", path);
  unsigned short hlen = (unsigned short)(n + pad + 1);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(hlen & 0xff, f);
  fputc(hlen >> 8, f);
  fwrite(header, 1, (size_t)n, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(src, sizeof(float), count, f);
  fclose(f);
}

/* A JSON string: names come from model files, so quote what JSON needs quoted. */
static void json_string(FILE* f, const char* s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* The CPU's maximum MHz from cpufreq, or 0 when not exposed (VMs, some phones). */
static long cpu_mhz(void) {
  FILE* f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
  long khz = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld", &khz) != 1) khz = 0;
    fclose(f);
  }
  return khz / 1000;
}

/* The CPU's name as /proc/cpuinfo gives it (x86 "model name", ARM "Hardware"/"Model"). */
static void cpu_name(char* out, size_t size) {
  snprintf(out, size, "unknown");
  FILE* f = fopen("/proc/cpuinfo", "r");
  if (f == NULL) return;
  char line[256];
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "model name", 10) != 0 && strncmp(line, "Hardware", 8) != 0 && strncmp(line, "Model", 5) != 0)
      continue;
    char* v = strchr(line, ':');
    if (v == NULL) continue;
    for (v++; *v == ' ' || *v == '\t'; v++) {
    }
    v[strcspn(v, "\n")] = 0;
    snprintf(out, size, "%s", v);
    break;
  }
  fclose(f);
}

static const char* arg_value(int argc, char** argv, int* i) {
  if (*i + 1 >= argc) die("missing value after", argv[*i]);
  return argv[++*i];
}

int main(int argc, char** argv) {
  const char *model_path = NULL, *input = NULL, *output = NULL, *json = NULL;
  int runs = 50, warmup = 5, threads = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--runs") == 0) runs = atoi(arg_value(argc, argv, &i));
    else if (strcmp(argv[i], "--warmup") == 0) warmup = atoi(arg_value(argc, argv, &i));
    else if (strcmp(argv[i], "--threads") == 0) threads = atoi(arg_value(argc, argv, &i));
    else if (strcmp(argv[i], "--input") == 0) input = arg_value(argc, argv, &i);
    else if (strcmp(argv[i], "--output") == 0) output = arg_value(argc, argv, &i);
    else if (strcmp(argv[i], "--json") == 0) json = arg_value(argc, argv, &i);
    else if (argv[i][0] == '-') die("unknown option", argv[i]);
    else model_path = argv[i];
  }
  if (model_path == NULL)
    die("usage: sparselite-bench MODEL.slite [--runs N] [--warmup N] [--threads N] [--input x.npy] "
        "[--output y.npy] [--json run.json]", NULL);
  if (runs < 1 || warmup < 0 || threads < 1) die("--runs and --threads must be >= 1, --warmup >= 0", NULL);

  sl_model_t* m = sl_model_new();
  if (m == NULL) die("out of memory", NULL);
  if (sl_model_set_num_threads(m, threads) != SL_OK || sl_model_load_file(m, model_path) != SL_OK)
    die(sl_model_last_error(m), NULL);
  sl_tensor_info_t in_info, out_info;
  void* in_data;
  const void* out_data;
  sl_model_input_info(m, 0, &in_info);
  sl_model_input_data(m, 0, &in_data);
  if (in_info.dtype != SL_DTYPE_FLOAT32) die("the bench feeds float32 inputs only", in_info.name);
  size_t in_count = in_info.num_bytes / sizeof(float);
  if (input != NULL) {
    read_npy(input, in_data, in_count);
  } else {
    uint32_t s = 12345u;
    for (size_t i = 0; i < in_count; i++) {
      s = s * 1664525u + 1013904223u;
      ((float*)in_data)[i] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
  }
  for (int i = 0; i < warmup; i++) sl_model_run(m);

  int ops = sl_model_num_ops(m);
  double* total = malloc(sizeof(double) * (size_t)runs);
  double* per_op = malloc(sizeof(double) * (size_t)runs * (size_t)(ops > 0 ? ops : 1));
  if (total == NULL || per_op == NULL) die("out of memory", NULL);
  sl_op_profile_t p;
  for (int r = 0; r < runs; r++) {
    sl_model_set_profiling(m, 1); /* resets the per-op counters: one run each */
    double t0 = now_ms();
    if (sl_model_run(m) != SL_OK) die(sl_model_last_error(m), NULL);
    total[r] = now_ms() - t0;
    for (int o = 0; o < ops; o++) {
      sl_model_op_profile(m, o, &p);
      per_op[(size_t)o * (size_t)runs + (size_t)r] = (double)p.time_ns * 1e-6;
    }
  }
  sl_model_set_profiling(m, 0);
  qsort(total, (size_t)runs, sizeof(double), cmp_double);

  printf("%-40s %-16s %-36s %9s %6s %9s\n", "op", "type", "kernel", "ms (p50)", "%", "GFLOP/s");
  double p50 = percentile(total, runs, 50);
  FILE* js = json != NULL ? fopen(json, "w") : NULL;
  if (json != NULL && js == NULL) die("cannot write", json);
  if (js != NULL) {
    char cpu[200];
    cpu_name(cpu, sizeof(cpu));
    static const char* const isa_names[] = {"sse2", "avx2", "neon", "wasm_simd128"};
    fputs("{\"schema\": \"sparselite-profile/1\", \"source\": \"sparselite-bench\", \"model\": ", js);
    json_string(js, model_path);
    fprintf(js, ", \"threads\": %d, \"runs\": %d, \"warmup\": %d,\n \"machine\": {\"cpu\": ", threads, runs, warmup);
    json_string(js, cpu);
    long mhz = cpu_mhz();
    if (mhz > 0)
      fprintf(js, ", \"mhz\": %ld", mhz);
    else
      fputs(", \"mhz\": null", js);
#if defined(__aarch64__)
    fputs(", \"arch\": \"aarch64\", \"isa\": [", js);
#else
    fputs(", \"arch\": \"x86_64\", \"isa\": [", js);
#endif
    for (int b = 0, n = 0; b < 4; b++)
      if (sl_cpu_isa() & (1u << b)) fprintf(js, "%s\"%s\"", n++ ? ", " : "", isa_names[b]);
    fputs("]},\n \"ops\": [", js);
  }
  for (int o = 0; o < ops; o++) {
    double* t = per_op + (size_t)o * (size_t)runs;
    qsort(t, (size_t)runs, sizeof(double), cmp_double);
    double ms = percentile(t, runs, 50);
    sl_model_op_profile(m, o, &p);
    double gflops = ms > 0 ? p.flops / ms / 1e6 : 0.0;
    printf("%-40.40s %-16s %-36.36s %9.3f %6.1f %9.2f\n", p.name, p.type, p.kernel, ms, 100.0 * ms / p50, gflops);
    if (js != NULL) {
      fputs(o ? ",\n  {\"name\": " : "\n  {\"name\": ", js);
      json_string(js, p.name);
      fprintf(js, ", \"type\": \"%s\", \"kernel\": \"%s\", \"ms\": %.6f, \"flops\": %.0f, \"dense_flops\": %.0f, "
                  "\"group_size\": %u, \"weight_bytes\": %llu, \"activation_bytes\": %llu}",
              p.type, p.kernel, ms, p.flops, p.dense_flops, p.group_size, (unsigned long long)p.weight_bytes,
              (unsigned long long)p.activation_bytes);
    }
  }
  printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  min %.3f  (%d runs, %d warm-up, %d threads)\n", p50,
         percentile(total, runs, 90), percentile(total, runs, 99), total[0], runs, warmup, threads);
  printf("arena %zu bytes, scratch %zu bytes, ISA bits 0x%x\n", sl_model_arena_bytes(m), sl_model_scratch_bytes(m),
         sl_cpu_isa());
  if (js != NULL) {
    fprintf(js, "],\n \"latency_ms\": {\"p50\": %.6f, \"p90\": %.6f, \"p99\": %.6f, \"min\": %.6f},\n"
                " \"arena_bytes\": %zu, \"scratch_bytes\": %zu}\n",
            p50, percentile(total, runs, 90), percentile(total, runs, 99), total[0], sl_model_arena_bytes(m),
            sl_model_scratch_bytes(m));
    fclose(js);
  }
  if (output != NULL) {
    sl_model_output_info(m, 0, &out_info);
    sl_model_output_data(m, 0, &out_data);
    if (out_info.dtype != SL_DTYPE_FLOAT32) die("the bench writes float32 outputs only", out_info.name);
    write_npy(output, out_data, out_info.shape, out_info.rank);
  }
  free(total);
  free(per_op);
  sl_model_free(m);
  return 0;
}
