/* sparselite-bench: load a .slite, run it with warm-up and threads, print per-op and total
 * timings (like LiteRT's benchmark_model). Static on aarch64-linux for Raspberry Pi OS and
 * Android (adb push + adb shell).
 *
 *   sparselite-bench MODEL.slite [--runs N] [--warmup N] [--threads N] [--input [NAME=]x.npy]...
 *                    [--shape NAME=2x128]... [--fuse auto|off|ROWS] [--precision fp32|fp16]
 *                    [--output y.npy] [--json run.json]
 *
 * Inputs and outputs are .npy (C order; inputs float32, int32 or int64) so results compare with
 * the desktop. --input without NAME= feeds the inputs in order. An input's shape may be smaller
 * than the model's along dynamic axes (a sequence length), from its .npy or from --shape. Inputs
 * not given are filled from a seeded generator (floats in [-1, 1), integers 1: a valid token id
 * and an all-ones attention mask). */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "isa_names.h"
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

enum { MAX_INPUTS = 16 };

typedef struct {
  const char* name; /* NULL: the next input in order */
  const char* npy;
  const char* shape; /* "2x128", with --shape */
} feed_t;

/* Opens a .npy (version 1.0, C order) and reads its dtype and shape; leaves f at the data. */
static FILE* open_npy(const char* path, sl_dtype_t* dtype, int32_t* shape, int32_t* rank) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) die("cannot open input", path);
  unsigned char head[10];
  if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0) die("not a .npy file", path);
  if (head[6] != 1) die("only .npy version 1.0 is read", path);
  size_t hlen = (size_t)head[8] | (size_t)head[9] << 8;
  char* header = calloc(1, hlen + 1);
  if (header == NULL || fread(header, 1, hlen, f) != hlen) die("truncated .npy header", path);
  if (strstr(header, "'fortran_order': False") == NULL) die("input must be in C order", path);
  if (strstr(header, "'<f4'") != NULL) *dtype = SL_DTYPE_FLOAT32;
  else if (strstr(header, "'<i4'") != NULL) *dtype = SL_DTYPE_INT32;
  else if (strstr(header, "'<i8'") != NULL) *dtype = SL_DTYPE_INT64;
  else die("input must be float32 ('<f4'), int32 ('<i4') or int64 ('<i8')", path);
  const char* p = strstr(header, "'shape': (");
  if (p == NULL) die("no shape in the .npy header", path);
  p += strlen("'shape': (");
  for (*rank = 0; *p != ')' && *rank < SL_MAX_RANK;) {
    char* end;
    long v = strtol(p, &end, 10);
    if (end == p) break;
    shape[(*rank)++] = (int32_t)v;
    p = end + strspn(end, ", ");
  }
  free(header);
  return f;
}

static int32_t parse_shape(const char* text, int32_t* shape) {
  int32_t rank = 0;
  for (const char* p = text; *p && rank < SL_MAX_RANK; rank++) {
    char* end;
    shape[rank] = (int32_t)strtol(p, &end, 10);
    if (end == p) die("shapes look like 2x128, got", text);
    p = *end == 'x' ? end + 1 : end;
  }
  return rank;
}

static size_t dtype_size(sl_dtype_t t) { return t == SL_DTYPE_INT64 ? 8 : 4; }

/* The shape an --input / --shape asks for (the model's current one without either); the
 * .npy is left open at its data in *f. */
static int32_t feed_shape(sl_model_t* m, int32_t index, const feed_t* feed, int32_t* shape, FILE** f) {
  sl_tensor_info_t info;
  sl_model_input_info(m, index, &info);
  memcpy(shape, info.shape, sizeof(info.shape));
  *f = NULL;
  if (feed != NULL && feed->npy != NULL) {
    sl_dtype_t dtype;
    int32_t rank;
    *f = open_npy(feed->npy, &dtype, shape, &rank);
    if (dtype != info.dtype) die("the .npy's dtype differs from the model input's", feed->npy);
    return rank;
  }
  if (feed != NULL && feed->shape != NULL) return parse_shape(feed->shape, shape);
  return info.rank;
}

/* Resizes every input to what it is fed (inputs sharing a dynamic dimension must agree), then fills them. */
static void feed_inputs(sl_model_t* m, const feed_t* const* by_input, int32_t num_inputs) {
  int32_t shape[SL_MAX_RANK];
  FILE* f;
  for (int32_t i = 0; i < num_inputs; i++) {
    if (by_input[i] == NULL) continue;
    int32_t rank = feed_shape(m, i, by_input[i], shape, &f);
    if (f != NULL) fclose(f);
    if (sl_model_resize_input(m, i, rank, shape) != SL_OK) die(sl_model_last_error(m), NULL);
  }
  for (int32_t i = 0; i < num_inputs; i++) {
    sl_tensor_info_t info;
    void* data;
    int32_t rank = feed_shape(m, i, by_input[i], shape, &f);
    sl_model_input_info(m, i, &info);
    sl_model_input_data(m, i, &data);
    if (rank != info.rank || memcmp(shape, info.shape, (size_t)rank * sizeof(int32_t)) != 0)
      die("inputs that share a dynamic dimension disagree on its size", info.name);
    size_t count = info.num_bytes / dtype_size(info.dtype);
    if (f != NULL) {
      if (fread(data, dtype_size(info.dtype), count, f) != count)
        die("the .npy holds fewer values than its shape", info.name);
      fclose(f);
      continue;
    }
    uint32_t s = 12345u + (uint32_t)i;
    for (size_t k = 0; k < count; k++) {
      s = s * 1664525u + 1013904223u;
      if (info.dtype == SL_DTYPE_FLOAT32) ((float*)data)[k] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
      else if (info.dtype == SL_DTYPE_INT32) ((int32_t*)data)[k] = 1;
      else ((int64_t*)data)[k] = 1;
    }
  }
}

static int32_t input_index(sl_model_t* m, const char* name) {
  sl_tensor_info_t info;
  for (int32_t i = 0; i < sl_model_num_inputs(m); i++) {
    sl_model_input_info(m, i, &info);
    if (strcmp(info.name, name) == 0) return i;
  }
  die("the model has no input named", name);
  return -1;
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

/* The CPU's ISA names joined by `sep`, quoted for JSON when `quote`; "portable C" for none. */
static void print_isa(FILE* f, const char* sep, bool quote) {
  int n = 0;
  for (size_t b = 0; b < sizeof(sl_isa_names) / sizeof(sl_isa_names[0]); b++)
    if (sl_cpu_isa() & sl_isa_names[b].bit)
      fprintf(f, quote ? "%s\"%s\"" : "%s%s", n++ ? sep : "", sl_isa_names[b].name);
  if (n == 0 && !quote) fputs("portable C", f);
}

static long peak_rss_bytes(void) {
  struct rusage usage;
  return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss * 1024L : 0; /* KiB on Linux and Android */
}

static const char usage_text[] =
    "usage: sparselite-bench MODEL.slite [options]\n"
    "Runs a .slite model with warm-up and prints per-op median times, the kernel each op ran, time per op\n"
    "type, latency percentiles and memory (the summary `sparselite bench` prints).\n\n"
    "  --runs N               timed runs (default 50)\n"
    "  --warmup N             untimed runs first, to warm caches (default 5)\n"
    "  --threads N            threads per op, the caller's included (default 1; at most the CPU cores)\n"
    "  --input [NAME=]x.npy   a .npy (float32, int32 or int64, C order) for an input, by name or, without\n"
    "                         NAME=, the inputs in order; repeat for several inputs (default: seeded\n"
    "                         random floats in [-1, 1), 1s for integer inputs)\n"
    "  --shape NAME=1x128     run input NAME at this shape without a file (a dynamic length or batch)\n"
    "  --fuse auto|off|ROWS   fused inverted-residual blocks: where they pay (auto), never, or in bands\n"
    "                         of ROWS output rows\n"
    "  --precision fp32|fp16  fp16: 1x1, FC and depthwise layers in fp16 where the CPU has ARMv8.2-A\n"
    "                         fp16 arithmetic (neon_fp16), fp32 elsewhere (default fp32)\n"
    "  --output y.npy         write the first output (float32) after the runs\n"
    "  --json run.json        write the profile JSON (sparselite-profile/1; `sparselite profile --from`)\n"
    "  -h, --help             this text\n";

/* Sums of per-op median times by op type, the most time first. */
typedef struct {
  const char* type;
  double ms;
  int ops;
} type_total_t;

static int cmp_type_total(const void* a, const void* b) {
  const type_total_t *x = a, *y = b;
  if (x->ms != y->ms) return x->ms < y->ms ? 1 : -1;
  return strcmp(x->type, y->type);
}

static const char* arg_value(int argc, char** argv, int* i) {
  if (*i + 1 >= argc) die("missing value after", argv[*i]);
  return argv[++*i];
}

int main(int argc, char** argv) {
  const char *model_path = NULL, *output = NULL, *json = NULL;
  int runs = 50, warmup = 5, threads = 1, num_feeds = 0, fuse = -1, precision = SL_PRECISION_FP32;
  feed_t feeds[MAX_INPUTS];
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage_text, stdout);
      return 0;
    }
    if (strcmp(argv[i], "--runs") == 0) runs = atoi(arg_value(argc, argv, &i));
    else if (strcmp(argv[i], "--warmup") == 0) warmup = atoi(arg_value(argc, argv, &i));
    else if (strcmp(argv[i], "--threads") == 0) threads = atoi(arg_value(argc, argv, &i));
    else if (strcmp(argv[i], "--input") == 0 || strcmp(argv[i], "--shape") == 0) {
      bool is_shape = strcmp(argv[i], "--shape") == 0;
      const char* v = arg_value(argc, argv, &i);
      if (num_feeds == MAX_INPUTS) die("too many --input/--shape options", NULL);
      const char* eq = strchr(v, '=');
      if (is_shape && eq == NULL) die("--shape takes NAME=2x128, got", v);
      feed_t* fd = &feeds[num_feeds++];
      fd->name = NULL;
      if (eq != NULL) {
        char* name = strndup(v, (size_t)(eq - v));
        if (name == NULL) die("out of memory", NULL);
        fd->name = name;
        v = eq + 1;
      }
      fd->npy = is_shape ? NULL : v;
      fd->shape = is_shape ? v : NULL;
    }
    else if (strcmp(argv[i], "--output") == 0) output = arg_value(argc, argv, &i);
    else if (strcmp(argv[i], "--json") == 0) json = arg_value(argc, argv, &i);
    else if (strcmp(argv[i], "--fuse") == 0) {
      const char* v = arg_value(argc, argv, &i);
      fuse = strcmp(v, "auto") == 0 ? -1 : strcmp(v, "off") == 0 ? 0 : atoi(v);
      if (fuse == 0 && strcmp(v, "off") != 0) die("--fuse takes auto, off or a band height in rows", v);
    }
    else if (strcmp(argv[i], "--precision") == 0) {
      const char* v = arg_value(argc, argv, &i);
      if (strcmp(v, "fp32") != 0 && strcmp(v, "fp16") != 0) die("--precision takes fp32 or fp16", v);
      precision = strcmp(v, "fp16") == 0 ? SL_PRECISION_FP16 : SL_PRECISION_FP32;
    }
    else if (argv[i][0] == '-') die("unknown option (sparselite-bench --help lists them)", argv[i]);
    else model_path = argv[i];
  }
  if (model_path == NULL) {
    fputs(usage_text, stderr);
    return 1;
  }
  if (runs < 1 || warmup < 0 || threads < 1) die("--runs and --threads must be >= 1, --warmup >= 0", NULL);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores > 0 && threads > cores)
    fprintf(stderr,
            "sparselite-bench: warning: --threads %d is more than the %ld CPU cores here: threads would take turns "
            "on the cores and runs get slower, not faster; use --threads %ld or fewer\n",
            threads, cores, cores);

  sl_model_t* m = sl_model_new();
  if (m == NULL) die("out of memory", NULL);
  if (sl_model_set_num_threads(m, threads) != SL_OK || sl_model_set_fusion(m, fuse) != SL_OK ||
      sl_model_set_precision(m, precision) != SL_OK ||
      sl_model_load_file(m, model_path) != SL_OK)
    die(sl_model_last_error(m), NULL);
  if (precision == SL_PRECISION_FP16 && !(sl_cpu_isa() & SL_ISA_NEON_FP16))
    fputs("sparselite-bench: note: --precision fp16 needs ARMv8.2-A fp16 arithmetic (neon_fp16), which this CPU "
          "lacks: every layer runs fp32\n",
          stderr);
  sl_tensor_info_t out_info;
  const void* out_data;
  int32_t num_inputs = sl_model_num_inputs(m);
  const feed_t* by_input[MAX_INPUTS] = {NULL};
  if (num_inputs > MAX_INPUTS) die("the bench feeds at most 16 inputs", NULL);
  for (int32_t f = 0, next = 0; f < num_feeds; f++) {
    int32_t index = feeds[f].name != NULL ? input_index(m, feeds[f].name) : next++;
    if (index >= num_inputs) die("more --input files than model inputs", feeds[f].npy);
    by_input[index] = &feeds[f];
  }
  feed_inputs(m, by_input, num_inputs);
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
    print_isa(js, ", ", true);
    fputs("]},\n \"ops\": [", js);
  }
  for (int o = 0; o < ops; o++) {
    double* t = per_op + (size_t)o * (size_t)runs;
    qsort(t, (size_t)runs, sizeof(double), cmp_double);
    double ms = percentile(t, runs, 50);
    sl_model_op_profile(m, o, &p);
    double gflops = ms > 0 ? p.flops / ms / 1e6 : 0.0;
    if (p.fused_into >= 0) /* its time is on the block's first op */
      printf("  + %-36.36s %-16s %-36.36s %9s\n", p.name, p.type, p.kernel, "fused");
    else
      printf("%-40.40s %-16s %-36.36s %9.3f %6.1f %9.2f\n", p.name, p.type, p.kernel, ms, 100.0 * ms / p50, gflops);
    if (js != NULL) {
      fputs(o ? ",\n  {\"name\": " : "\n  {\"name\": ", js);
      json_string(js, p.name);
      fprintf(js, ", \"type\": \"%s\", \"kernel\": \"%s\", \"ms\": %.6f, \"flops\": %.0f, \"dense_flops\": %.0f, "
                  "\"group_size\": %u, \"weight_bytes\": %llu, \"activation_bytes\": %llu",
              p.type, p.kernel, ms, p.flops, p.dense_flops, p.group_size, (unsigned long long)p.weight_bytes,
              (unsigned long long)p.activation_bytes);
      if (p.fused_into >= 0) fprintf(js, ", \"fused_into\": %d}", p.fused_into);
      else fputs(", \"fused_into\": null}", js);
    }
  }
  type_total_t* types = calloc((size_t)(ops > 0 ? ops : 1), sizeof(type_total_t));
  if (types == NULL) die("out of memory", NULL);
  int num_types = 0;
  double ops_ms = 0;
  for (int o = 0; o < ops; o++) {
    double* t = per_op + (size_t)o * (size_t)runs; /* sorted above */
    double ms = percentile(t, runs, 50);
    sl_model_op_profile(m, o, &p);
    int k = 0;
    while (k < num_types && strcmp(types[k].type, p.type) != 0) k++;
    if (k == num_types) types[num_types++].type = p.type;
    types[k].ms += ms;
    types[k].ops++;
    ops_ms += ms;
  }
  qsort(types, (size_t)num_types, sizeof(type_total_t), cmp_type_total);
  /* The summary, line for line as sparselite.profiler.format_summary prints it. */
  printf("\n%-16s %4s %9s %6s\n", "op type", "ops", "ms", "%");
  for (int k = 0; k < num_types; k++)
    printf("%-16s %4d %9.3f %6.1f\n", types[k].type, types[k].ops, types[k].ms,
           ops_ms > 0 ? 100.0 * types[k].ms / ops_ms : 0.0);
  free(types);
  char cpu[200];
  cpu_name(cpu, sizeof(cpu));
  long mhz = cpu_mhz();
  printf("model: %s  (measured by sparselite-bench)\ncpu: %s", model_path, cpu);
  if (mhz > 0) printf(" @ %ld MHz", mhz);
#if defined(__aarch64__)
  printf(", aarch64, ISA ");
#else
  printf(", x86_64, ISA ");
#endif
  print_isa(stdout, " ", false);
  printf("; %d threads; %d runs after %d warm-up\n", threads, runs, warmup);
  printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  min %.3f\n", p50, percentile(total, runs, 90),
         percentile(total, runs, 99), total[0]);
  printf("memory: arena %.0f KiB, scratch %.0f KiB, process peak RSS %.1f MiB\n",
         (double)sl_model_arena_bytes(m) / 1024, (double)sl_model_scratch_bytes(m) / 1024,
         (double)peak_rss_bytes() / (1024.0 * 1024.0));
  if (js != NULL) {
    fprintf(js, "],\n \"latency_ms\": {\"p50\": %.6f, \"p90\": %.6f, \"p99\": %.6f, \"min\": %.6f},\n"
                " \"arena_bytes\": %zu, \"scratch_bytes\": %zu, \"peak_rss_bytes\": %ld}\n",
            p50, percentile(total, runs, 90), percentile(total, runs, 99), total[0], sl_model_arena_bytes(m),
            sl_model_scratch_bytes(m), peak_rss_bytes());
    fclose(js);
  }
  if (output != NULL) {
    sl_model_output_info(m, 0, &out_info);
    sl_model_output_data(m, 0, &out_data);
    if (out_info.dtype != SL_DTYPE_FLOAT32) die("the bench writes float32 outputs only", out_info.name);
    write_npy(output, out_data, out_info.shape, out_info.rank);
  }
  for (int f = 0; f < num_feeds; f++) free((char*)feeds[f].name);
  free(total);
  free(per_op);
  sl_model_free(m);
  return 0;
}
