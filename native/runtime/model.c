/* The public C API: model lifetime, loading, I/O access and execution. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t sl_format_version(void) { return SL_FORMAT_VERSION; }
/* Every build passes the package version (sdk/sparselite/__init__.py) as SL_VERSION. */
const char* sl_version_string(void) { return SL_VERSION; }

sl_model_t* sl_model_new(void) {
  sl_model_t* m = calloc(1, sizeof(sl_model_t));
  if (m != NULL) {
    m->num_threads = 1;
    m->isa_mask = UINT32_MAX;
    m->memory_limit = SL_DEFAULT_MEMORY_LIMIT;
    m->fuse = -1;
    m->winograd = -1;
  }
  return m;
}

static void release(sl_model_t* m) {
  while (m->allocs != NULL) {
    sl_alloc_t* next = m->allocs->next;
    free(m->allocs->raw);
    m->allocs = next;
  }
  sl_threadpool_destroy(m->pool);
  int threads = m->num_threads;
  uint32_t isa_mask = m->isa_mask;
  bool tune = m->tune;
  int32_t fuse = m->fuse, winograd = m->winograd, precision = m->precision;
  size_t memory_limit = m->memory_limit;
  memset(m, 0, sizeof(*m));
  m->num_threads = threads;
  m->isa_mask = isa_mask;
  m->tune = tune;
  m->fuse = fuse;
  m->winograd = winograd;
  m->precision = precision;
  m->memory_limit = memory_limit;
}

void sl_model_free(sl_model_t* m) {
  if (m == NULL) return;
  release(m);
  free(m);
}

const char* sl_model_last_error(const sl_model_t* m) { return m != NULL ? m->error : "no model"; }

/* Loading failed: drop what was allocated, keep the message. */
static sl_status_t abandon(sl_model_t* m, sl_status_t st) {
  char msg[sizeof(m->error)];
  memcpy(msg, m->error, sizeof(msg));
  release(m);
  memcpy(m->error, msg, sizeof(msg));
  return st;
}

/* WASI has no signals, so no EINTR; and where atomics are on (sparselite-threads.wasm) wasi-libc's headers
 * declare errno thread-local, which the single-threaded libc.a it links does not define. */
static bool interrupted(void) {
#ifdef __wasi__
  return false;
#else
  return errno == EINTR;
#endif
}

static sl_status_t finish_load(sl_model_t* m) {
  m->isa = sl_cpu_isa() & m->isa_mask;
  /* Before the graph: tuning at prepare times kernels on these threads. */
  m->pool = sl_threadpool_create(m->num_threads);
  sl_status_t st = sl_load_graph(m);
  if (st == SL_OK) st = sl_plan_arena(m);
  if (st != SL_OK) return abandon(m, st);
  m->loaded = true;
  m->error[0] = 0;
  return SL_OK;
}

sl_status_t sl_model_load_buffer(sl_model_t* m, const void* data, size_t size, int copy) {
  if (m == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (m->loaded) return sl_fail(m, SL_ERROR_STATE, "a model is already loaded into this handle");
  if (data == NULL && size > 0) return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "data is NULL");
  /* Weights are used in place, so the bytes must be aligned like the file's buffers. */
  if (copy || ((uintptr_t)data % SL_ALIGN) != 0) {
    void* owned = sl_model_alloc(m, size);
    if (owned == NULL) return abandon(m, SL_ERROR_OUT_OF_MEMORY);
    if (size > 0) memcpy(owned, data, size);
    data = owned;
  }
  m->file = data;
  m->file_size = size;
  return finish_load(m);
}

sl_status_t sl_model_load_file(sl_model_t* m, const char* path) {
  if (m == NULL || path == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (m->loaded) return sl_fail(m, SL_ERROR_STATE, "a model is already loaded into this handle");
  int fd = open(path, O_RDONLY);
  if (fd < 0) return sl_fail(m, SL_ERROR_IO, "cannot open %s", path);
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return sl_fail(m, SL_ERROR_IO, "%s is not a regular file", path);
  }
  if (sb.st_size == 0) {
    close(fd);
    return sl_fail(m, SL_ERROR_INVALID_MODEL, "invalid model: %s is empty", path);
  }
  /* Read, not mapped: a mapping would fault (SIGBUS) or change under the model when the file
   * is truncated or rewritten after loading. */
  size_t size = (uintmax_t)sb.st_size < SIZE_MAX ? (size_t)sb.st_size : SIZE_MAX;
  uint8_t* data = sl_model_alloc(m, size);
  size_t got = 0;
  while (data != NULL && got < size) {
    ssize_t n = read(fd, data + got, size - got);
    if (n < 0 && interrupted()) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (data == NULL) return abandon(m, SL_ERROR_OUT_OF_MEMORY);
  if (got != size) {
    sl_fail(m, SL_ERROR_IO, "cannot read %s (%zu of %zu bytes; did it change while loading?)", path, got, size);
    return abandon(m, SL_ERROR_IO);
  }
  m->file = data;
  m->file_size = size;
  return finish_load(m);
}

static sl_status_t before_load(sl_model_t* m, const char* what) {
  if (m == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (m->loaded) return sl_fail(m, SL_ERROR_STATE, "%s must be set before loading a model", what);
  return SL_OK;
}

sl_status_t sl_model_set_num_threads(sl_model_t* m, int num_threads) {
  sl_status_t st = before_load(m, "num_threads");
  if (st != SL_OK) return st;
  if (num_threads < 1 || num_threads > 256)
    return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "num_threads must be 1..256, got %d", num_threads);
  m->num_threads = num_threads;
  return SL_OK;
}

sl_status_t sl_model_set_isa_mask(sl_model_t* m, uint32_t isa_mask) {
  sl_status_t st = before_load(m, "the ISA mask");
  if (st == SL_OK) m->isa_mask = isa_mask;
  return st;
}

sl_status_t sl_model_set_tuning(sl_model_t* m, int tune) {
  sl_status_t st = before_load(m, "tuning");
  if (st == SL_OK) m->tune = tune != 0;
  return st;
}

sl_status_t sl_model_set_precision(sl_model_t* m, int precision) {
  sl_status_t st = before_load(m, "precision");
  if (st != SL_OK) return st;
  if (precision != SL_PRECISION_FP32 && precision != SL_PRECISION_FP16)
    return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "precision must be 0 (fp32) or 1 (fp16), got %d", precision);
  m->precision = precision;
  return SL_OK;
}

sl_status_t sl_model_set_fusion(sl_model_t* m, int band_rows) {
  sl_status_t st = before_load(m, "fusion");
  if (st != SL_OK) return st;
  if (band_rows < -1 || band_rows > 65536)
    return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "fusion must be -1 (automatic), 0 (off) or 1..65536 band rows, got %d",
                   band_rows);
  m->fuse = band_rows;
  return SL_OK;
}

sl_status_t sl_model_set_winograd(sl_model_t* m, int tile) {
  sl_status_t st = before_load(m, "the Winograd choice");
  if (st != SL_OK) return st;
  if (tile != -1 && tile != 0 && tile != 2 && tile != 4)
    return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "winograd must be -1 (by layer), 0 (off), 2 or 4, got %d", tile);
  m->winograd = tile;
  return SL_OK;
}

sl_status_t sl_model_set_memory_limit(sl_model_t* m, size_t bytes) {
  sl_status_t st = before_load(m, "the memory limit");
  if (st != SL_OK) return st;
  if (bytes == 0) return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "the memory limit must be at least 1 byte");
  m->memory_limit = bytes;
  return SL_OK;
}

int32_t sl_model_num_inputs(const sl_model_t* m) { return m != NULL && m->loaded ? m->num_inputs : 0; }
int32_t sl_model_num_outputs(const sl_model_t* m) { return m != NULL && m->loaded ? m->num_outputs : 0; }

static sl_status_t io_tensor(const sl_model_t* m, int32_t index, bool input, sl_tensor_t** out) {
  if (m == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (!m->loaded) return sl_fail((sl_model_t*)m, SL_ERROR_STATE, "no model is loaded");
  int32_t count = input ? m->num_inputs : m->num_outputs;
  if (index < 0 || index >= count)
    return sl_fail((sl_model_t*)m, SL_ERROR_INVALID_ARGUMENT, "%s index %d is out of range (0..%d)",
                   input ? "input" : "output", index, count - 1);
  *out = &m->tensors[input ? m->inputs[index] : m->outputs[index]];
  return SL_OK;
}

static void fill_info(const sl_tensor_t* t, sl_tensor_info_t* info) {
  info->name = t->name;
  info->dtype = t->dtype;
  info->rank = t->rank;
  info->dynamic_axes = 0;
  for (int i = 0; i < SL_MAX_RANK; i++) {
    info->shape[i] = i < t->rank ? t->shape[i] : 0;
    info->max_shape[i] = i < t->rank ? t->max_shape[i] : 0;
    if (i < t->rank && t->dynamic[i]) info->dynamic_axes |= 1u << i;
  }
  info->num_bytes = t->num_bytes;
}

sl_status_t sl_model_input_info(const sl_model_t* m, int32_t index, sl_tensor_info_t* info) {
  sl_tensor_t* t = NULL;
  sl_status_t st = io_tensor(m, index, true, &t);
  if (st == SL_OK) fill_info(t, info);
  return st;
}

sl_status_t sl_model_output_info(const sl_model_t* m, int32_t index, sl_tensor_info_t* info) {
  sl_tensor_t* t = NULL;
  sl_status_t st = io_tensor(m, index, false, &t);
  if (st == SL_OK) fill_info(t, info);
  return st;
}

sl_status_t sl_model_input_data(sl_model_t* m, int32_t index, void** data) {
  sl_tensor_t* t = NULL;
  sl_status_t st = io_tensor(m, index, true, &t);
  if (st == SL_OK) *data = t->data;
  return st;
}

sl_status_t sl_model_output_data(sl_model_t* m, int32_t index, const void** data) {
  sl_tensor_t* t = NULL;
  sl_status_t st = io_tensor(m, index, false, &t);
  if (st == SL_OK) *data = t->data;
  return st;
}

/* Runs and resizes share the arena, the scratch and the thread pool: a second thread entering
 * while one is inside gets SL_ERROR_BUSY instead of corrupting them (hosts that share a model
 * between threads serialise, as the Python API does). No message is written: the thread inside
 * owns the model, its error buffer included. */
static bool enter(sl_model_t* m) { return !atomic_exchange(&m->busy, true); }
static void leave(sl_model_t* m) { atomic_store(&m->busy, false); }

sl_status_t sl_model_run(sl_model_t* m) {
  if (m == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (!m->loaded) return sl_fail(m, SL_ERROR_STATE, "no model is loaded");
  if (!enter(m)) return SL_ERROR_BUSY;
  for (int32_t i = 0; i < m->num_nodes; i++) {
    sl_node_t* n = &m->nodes[i];
    if (n->fused_into >= 0) continue; /* its block ran already */
    if (!m->profile) {
      sl_op_table[n->type]->run(m, n);
      continue;
    }
    uint64_t t0 = now_ns();
    sl_op_table[n->type]->run(m, n);
    n->time_ns += now_ns() - t0;
    n->runs++;
  }
  leave(m);
  return SL_OK;
}

/* Applies m->dim_value to every tensor's shape and resizes the ops. */
static sl_status_t apply_dims(sl_model_t* m) {
  for (int32_t i = 0; i < m->num_tensors; i++) {
    sl_tensor_t* t = &m->tensors[i];
    if (!t->has_dynamic) continue;
    size_t elems = 1;
    for (int32_t d = 0; d < t->rank; d++) {
      t->shape[d] = t->dynamic[d] ? m->dim_value[t->dynamic[d] - 1] : t->max_shape[d];
      elems *= (size_t)t->shape[d];
    }
    t->num_bytes = t->num_bytes / t->num_elems * elems;
    t->num_elems = elems;
  }
  size_t scratch = m->scratch_size;
  for (int32_t i = 0; i < m->num_nodes; i++) {
    sl_node_t* n = &m->nodes[i];
    if (sl_node_dynamic_tensor(m, n) == NULL) continue;
    sl_status_t st = sl_op_table[n->type]->resize(m, n, &m->fb);
    if (st != SL_OK) return st;
    if (m->scratch_size != scratch)
      return sl_node_fail(m, n, "needs more scratch at a smaller size than at the maximum");
  }
  return SL_OK;
}

static sl_status_t resize_input(sl_model_t* m, int32_t index, int32_t rank, const int32_t* shape) {
  sl_tensor_t* t = NULL;
  sl_status_t st = io_tensor(m, index, true, &t);
  if (st != SL_OK) return st;
  if (shape == NULL && rank > 0) return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "shape is NULL");
  if (rank != t->rank)
    return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "input %d (%s) has rank %d, got a shape of rank %d", index, t->name,
                   t->rank, rank);
  int32_t value[SL_MAX_DYNAMIC_DIMS];
  memcpy(value, m->dim_value, (size_t)m->num_dims * sizeof(int32_t));
  for (int32_t d = 0; d < rank; d++) {
    int32_t k = t->dynamic[d];
    if (k == 0 && shape[d] != t->max_shape[d])
      return sl_fail(m, SL_ERROR_INVALID_ARGUMENT, "input %d (%s): axis %d is fixed at %d, got %d", index, t->name, d,
                     t->max_shape[d], shape[d]);
    if (k == 0) continue;
    if (shape[d] < 1 || shape[d] > m->dim_max[k - 1])
      return sl_fail(m, SL_ERROR_INVALID_ARGUMENT,
                     "input %d (%s): axis %d (%s) must be 1..%d (the size the model was converted with), got %d",
                     index, t->name, d, m->dim_names[k - 1], m->dim_max[k - 1], shape[d]);
    value[k - 1] = shape[d];
  }
  for (int32_t i = 0; i < m->num_dims; i++) {
    int32_t k = m->dim_source[i];
    if (k == 0) continue;
    int64_t v = sl_dim_formula(value[k - 1], m->dim_offset[i], m->dim_divisor[i]);
    if (v < 1)
      return sl_fail(m, SL_ERROR_INVALID_ARGUMENT,
                     "input %d (%s) is too short: dimension %s = floor((%s %c %d) / %d) would be %lld at %s = %d",
                     index, t->name, m->dim_names[i], m->dim_names[k - 1], m->dim_offset[i] < 0 ? '-' : '+',
                     abs(m->dim_offset[i]), m->dim_divisor[i], (long long)v, m->dim_names[k - 1], value[k - 1]);
    value[i] = (int32_t)v;
  }
  if (memcmp(value, m->dim_value, (size_t)m->num_dims * sizeof(int32_t)) == 0) return SL_OK;
  int32_t old[SL_MAX_DYNAMIC_DIMS];
  memcpy(old, m->dim_value, (size_t)m->num_dims * sizeof(int32_t));
  memcpy(m->dim_value, value, (size_t)m->num_dims * sizeof(int32_t));
  st = apply_dims(m);
  if (st != SL_OK) { /* keep the model usable at the sizes it had */
    char msg[sizeof(m->error)];
    memcpy(msg, m->error, sizeof(msg));
    memcpy(m->dim_value, old, (size_t)m->num_dims * sizeof(int32_t));
    apply_dims(m);
    memcpy(m->error, msg, sizeof(msg));
  }
  return st;
}

sl_status_t sl_model_resize_input(sl_model_t* m, int32_t index, int32_t rank, const int32_t* shape) {
  if (m == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (!enter(m)) return SL_ERROR_BUSY;
  sl_status_t st = resize_input(m, index, rank, shape);
  leave(m);
  return st;
}

size_t sl_model_arena_bytes(const sl_model_t* m) { return m != NULL ? m->arena_size : 0; }
size_t sl_model_scratch_bytes(const sl_model_t* m) { return m != NULL ? m->scratch_size : 0; }

sl_status_t sl_model_set_profiling(sl_model_t* m, int enable) {
  if (m == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (!m->loaded) return sl_fail(m, SL_ERROR_STATE, "no model is loaded");
  if (!enter(m)) return SL_ERROR_BUSY;
  m->profile = enable != 0;
  for (int32_t i = 0; enable && i < m->num_nodes; i++) m->nodes[i].time_ns = m->nodes[i].runs = 0;
  leave(m);
  return SL_OK;
}

int32_t sl_model_num_ops(const sl_model_t* m) { return m != NULL && m->loaded ? m->num_nodes : 0; }

sl_status_t sl_model_op_profile(const sl_model_t* m, int32_t index, sl_op_profile_t* profile) {
  if (m == NULL || profile == NULL) return SL_ERROR_INVALID_ARGUMENT;
  if (!m->loaded) return sl_fail((sl_model_t*)m, SL_ERROR_STATE, "no model is loaded");
  if (index < 0 || index >= m->num_nodes)
    return sl_fail((sl_model_t*)m, SL_ERROR_INVALID_ARGUMENT, "op index %d is out of range (0..%d)", index,
                   m->num_nodes - 1);
  const sl_node_t* n = &m->nodes[index];
  profile->name = n->name;
  profile->type = sl_op_table[n->type]->name;
  profile->kernel = n->kernel != NULL ? n->kernel : "";
  profile->flops = n->flops;
  profile->dense_flops = n->dense_flops;
  profile->time_ns = n->time_ns;
  profile->runs = n->runs;
  profile->weight_bytes = n->weight_bytes;
  profile->activation_bytes = n->activation_bytes;
  profile->group_size = n->group_size;
  profile->fused_into = n->fused_into;
  return SL_OK;
}
