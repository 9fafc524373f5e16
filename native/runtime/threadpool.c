#define _POSIX_C_SOURCE 200809L
#include "threadpool.h"

#include <stdlib.h>

/* WebAssembly builds without atomics (sparselite.wasm, -relaxed.wasm) are single-threaded: pages need
 * no SharedArrayBuffer for them. sparselite-threads.wasm (-matomics) has the wasi-threads pool below. */
#if defined(SL_NO_THREADS) || (defined(__wasm__) && !defined(__wasm_atomics__))

sl_threadpool_t* sl_threadpool_create(int threads) {
  (void)threads;
  return NULL;
}
void sl_threadpool_destroy(sl_threadpool_t* pool) { (void)pool; }
void sl_threadpool_run(sl_threadpool_t* pool, size_t count, sl_task_fn fn, void* ctx) {
  (void)pool;
  for (size_t i = 0; i < count; i++) fn(ctx, i, 0);
}

#else

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Thread t first runs tasks [t * count / T, (t + 1) * count / T) from the front, then takes other
 * threads' last tasks (pthreadpool's order). Ops split their tasks the same way (pixels, rows), so a
 * thread mostly reads what it wrote in the op before: data another core wrote arrives several times
 * slower (the 2-vCPU Xeon: 13-25 GB/s against 72-123 GB/s from its own L2). With one shared counter,
 * which thread ran a task was chance, and dense MobileNetV2 ran 1.26x faster on 2 threads.
 * One slot per thread, a cache line apart: its next task in the high half, its end in the low. */
enum { SLOT_STRIDE = 8 }; /* uint64_t's per slot: 64 bytes */

typedef struct {
  _Atomic uint64_t* slots;
  size_t threads;
  sl_task_fn fn;
  void* ctx;
} tasks_t;

static bool tasks_init(tasks_t* t, size_t threads) {
  t->slots = calloc(threads * SLOT_STRIDE, sizeof(*t->slots));
  t->threads = threads;
  return t->slots != NULL;
}

/* Before the job is published: every thread's range. count < 2^32 (the caller checks). */
static void tasks_post(tasks_t* t, size_t count, sl_task_fn fn, void* ctx) {
  t->fn = fn;
  t->ctx = ctx;
  for (size_t i = 0; i < t->threads; i++) {
    uint64_t first = (uint64_t)i * count / t->threads, end = (uint64_t)(i + 1) * count / t->threads;
    atomic_store_explicit(&t->slots[i * SLOT_STRIDE], first << 32 | end, memory_order_relaxed);
  }
}

/* One task from slot i's range, its front (owner) or its back (thief); false once it is empty. */
static bool tasks_take(tasks_t* t, size_t i, bool front, size_t* task) {
  _Atomic uint64_t* slot = &t->slots[i * SLOT_STRIDE];
  uint64_t range = atomic_load_explicit(slot, memory_order_relaxed);
  for (;;) {
    uint64_t next = range >> 32, end = range & UINT32_MAX;
    if (next >= end) return false;
    uint64_t left = front ? (next + 1) << 32 | end : next << 32 | (end - 1);
    if (atomic_compare_exchange_weak_explicit(slot, &range, left, memory_order_relaxed, memory_order_relaxed)) {
      *task = (size_t)(front ? next : end - 1);
      return true;
    }
  }
}

static void work(tasks_t* t, size_t thread) {
  size_t task;
  while (tasks_take(t, thread, true, &task)) t->fn(t->ctx, task, thread);
  for (size_t k = 1; k < t->threads; k++) {
    size_t victim = (thread + k) % t->threads;
    while (tasks_take(t, victim, false, &task)) t->fn(t->ctx, task, thread);
  }
}

#if defined(__wasm__)

/* wasi-threads without a threads libc (sparselite-threads.wasm): the host answers thread-spawn with a
 * worker that instantiates this module on the same shared memory and calls wasi_thread_start
 * (wasm_thread_start.s), which points __stack_pointer at the worker_t's stack and enters
 * sl_wasm_thread_main. The module links Debian's single-threaded wasi-libc (--no-check-features),
 * which is safe because only the calling thread ever enters libc: workers run op tasks, and every
 * task function given to sl_parallel_for only runs kernels on memory allocated at prepare, with
 * memcpy/memset at most: no malloc, stdio, errno or WASI call (the JS workers' WASI imports throw,
 * so a task that made one fails the tests). The runtime has no thread-local data, so workers need
 * no TLS block, only a stack, allocated here on the calling thread. */
#define SPIN_ROUNDS 20000
/* Each worker's stack; the main one is wasm-ld's default 64 KiB, which every kernel fits. */
#define STACK_BYTES (256u * 1024u)

__attribute__((import_module("wasi"), import_name("thread-spawn"))) int32_t sl_wasi_thread_spawn(void* start);

typedef struct {
  uint32_t stack_top; /* first: wasi_thread_start loads __stack_pointer from offset 0 */
  sl_threadpool_t* pool;
  size_t index;
  void* stack;
} worker_t;

struct sl_threadpool {
  int workers;
  worker_t* worker;
  atomic_flag run_lock; /* one job at a time: a second caller runs its tasks alone */
  atomic_int generation; /* bumped once per job; workers sleep on it with memory.atomic.wait32 */
  atomic_bool stop;
  atomic_int busy;  /* workers still inside the current job */
  atomic_int alive; /* workers not yet returned to the host */
  tasks_t tasks;
};

void sl_wasm_thread_main(int32_t tid, worker_t* w);
void sl_wasm_thread_main(int32_t tid, worker_t* w) {
  (void)tid;
  sl_threadpool_t* p = w->pool;
  int seen = 0; /* not a load: a job may be posted before this worker first runs */
  for (;;) {
    int now = seen;
    for (int i = 0; i < SPIN_ROUNDS && now == seen; i++) now = atomic_load_explicit(&p->generation, memory_order_acquire);
    while (now == seen) {
      __builtin_wasm_memory_atomic_wait32((int*)&p->generation, seen, -1);
      now = atomic_load_explicit(&p->generation, memory_order_acquire);
    }
    if (atomic_load(&p->stop)) break;
    seen = now;
    work(&p->tasks, w->index);
    atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
  }
  /* The last touch of the pool and of this stack's data: destroy frees both once alive is 0. */
  atomic_fetch_sub_explicit(&p->alive, 1, memory_order_release);
}

static void wake_workers(sl_threadpool_t* p) {
  atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
  __builtin_wasm_memory_atomic_notify((int*)&p->generation, (unsigned)p->workers);
}

sl_threadpool_t* sl_threadpool_create(int threads) {
  if (threads < 2) return NULL;
  sl_threadpool_t* p = calloc(1, sizeof(*p));
  if (p == NULL) return NULL;
  p->worker = calloc((size_t)threads - 1, sizeof(worker_t));
  if (p->worker == NULL || !tasks_init(&p->tasks, (size_t)threads)) {
    free(p->worker);
    free(p);
    return NULL;
  }
  atomic_flag_clear(&p->run_lock);
  atomic_init(&p->generation, 0);
  atomic_init(&p->stop, false);
  atomic_init(&p->busy, 0);
  atomic_init(&p->alive, 0);
  for (int i = 0; i < threads - 1; i++) {
    worker_t* w = &p->worker[i];
    w->stack = malloc(STACK_BYTES);
    if (w->stack == NULL) break;
    w->stack_top = (uint32_t)((uintptr_t)w->stack + STACK_BYTES) & ~15u;
    w->pool = p;
    w->index = (size_t)i + 1;
    atomic_fetch_add(&p->alive, 1);
    /* Fails (< 0) where the host has no idle worker left: the pool keeps the ones it has. */
    if (sl_wasi_thread_spawn(w) < 0) {
      atomic_fetch_sub(&p->alive, 1);
      free(w->stack);
      break;
    }
    p->workers++;
  }
  if (p->workers == 0) {
    sl_threadpool_destroy(p);
    return NULL;
  }
  p->tasks.threads = (size_t)p->workers + 1; /* the ones that started */
  return p;
}

void sl_threadpool_destroy(sl_threadpool_t* p) {
  if (p == NULL) return;
  atomic_store(&p->stop, true);
  wake_workers(p);
  /* A spin, not a wait: browsers forbid memory.atomic.wait on the page's thread. */
  while (atomic_load_explicit(&p->alive, memory_order_acquire) != 0) {
  }
  for (int i = 0; i < p->workers; i++) free(p->worker[i].stack);
  free(p->worker);
  free(p->tasks.slots);
  free(p);
}

void sl_threadpool_run(sl_threadpool_t* p, size_t count, sl_task_fn fn, void* ctx) {
  if (p == NULL || count < 2 || count > UINT32_MAX || atomic_flag_test_and_set(&p->run_lock)) {
    for (size_t i = 0; i < count; i++) fn(ctx, i, 0);
    return;
  }
  tasks_post(&p->tasks, count, fn, ctx);
  atomic_store_explicit(&p->busy, p->workers, memory_order_relaxed);
  wake_workers(p);
  work(&p->tasks, 0);
  while (atomic_load_explicit(&p->busy, memory_order_acquire) != 0) {
  }
  atomic_flag_clear(&p->run_lock);
}

#else

#include <pthread.h>

/* Spins before sleeping: ops follow each other within microseconds, and a
 * condition-variable wake-up per op would cost more than small ops take. */
#define SPIN_ROUNDS 20000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

typedef struct {
  sl_threadpool_t* pool;
  size_t index;
  pthread_t thread;
} worker_t;

struct sl_threadpool {
  int workers;
  worker_t* worker;
  pthread_mutex_t run_lock; /* one job at a time: a second caller runs its tasks alone */
  pthread_mutex_t lock;
  pthread_cond_t wake;
  atomic_uint generation; /* bumped once per job */
  atomic_bool stop;
  atomic_int busy; /* workers still inside the current job */
  tasks_t tasks;
};

static void* worker_main(void* arg) {
  worker_t* w = arg;
  sl_threadpool_t* p = w->pool;
  /* Not a load: a job may already be posted before this thread first runs. */
  unsigned seen = 0;
  for (;;) {
    unsigned now = seen;
    for (int i = 0; i < SPIN_ROUNDS && now == seen; i++) {
      cpu_relax();
      now = atomic_load_explicit(&p->generation, memory_order_acquire);
    }
    if (now == seen) {
      pthread_mutex_lock(&p->lock);
      while ((now = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
             !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->lock);
      pthread_mutex_unlock(&p->lock);
    }
    if (atomic_load(&p->stop)) return NULL;
    seen = now;
    work(&p->tasks, w->index);
    atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
  }
}

sl_threadpool_t* sl_threadpool_create(int threads) {
  if (threads < 2) return NULL;
  sl_threadpool_t* p = calloc(1, sizeof(*p));
  if (p == NULL) return NULL;
  p->worker = calloc((size_t)threads - 1, sizeof(worker_t));
  if (p->worker == NULL || !tasks_init(&p->tasks, (size_t)threads) || pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p->tasks.slots);
    free(p->worker);
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->run_lock, NULL);
  pthread_cond_init(&p->wake, NULL);
  atomic_init(&p->generation, 0);
  atomic_init(&p->stop, false);
  atomic_init(&p->busy, 0);
  for (int i = 0; i < threads - 1; i++) {
    p->worker[i].pool = p;
    p->worker[i].index = (size_t)i + 1;
    if (pthread_create(&p->worker[i].thread, NULL, worker_main, &p->worker[i]) != 0) break;
    p->workers++;
  }
  if (p->workers == 0) {
    sl_threadpool_destroy(p);
    return NULL;
  }
  p->tasks.threads = (size_t)p->workers + 1; /* the ones that started */
  return p;
}

void sl_threadpool_destroy(sl_threadpool_t* p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->lock);
  atomic_store(&p->stop, true);
  atomic_fetch_add(&p->generation, 1);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->workers; i++) pthread_join(p->worker[i].thread, NULL);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->lock);
  pthread_mutex_destroy(&p->run_lock);
  free(p->worker);
  free(p->tasks.slots);
  free(p);
}

void sl_threadpool_run(sl_threadpool_t* p, size_t count, sl_task_fn fn, void* ctx) {
  /* The job's fields and the busy count belong to one caller: another one (a model run from two
   * threads, which sl_model_run refuses anyway) works alone instead of corrupting them. */
  if (p == NULL || count < 2 || count > UINT32_MAX || pthread_mutex_trylock(&p->run_lock) != 0) {
    for (size_t i = 0; i < count; i++) fn(ctx, i, 0);
    return;
  }
  tasks_post(&p->tasks, count, fn, ctx);
  atomic_store_explicit(&p->busy, p->workers, memory_order_relaxed);
  pthread_mutex_lock(&p->lock);
  atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  work(&p->tasks, 0);
  while (atomic_load_explicit(&p->busy, memory_order_acquire) != 0) cpu_relax();
  pthread_mutex_unlock(&p->run_lock);
}

#endif
#endif
