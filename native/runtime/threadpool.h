/* A persistent pthread pool for data-parallel loops inside one op. The calling
 * thread works too; workers spin briefly between ops and then sleep, so a run
 * allocates nothing and wakes no one when num_threads is 1. */
#ifndef SL_THREADPOOL_H
#define SL_THREADPOOL_H

#include <stddef.h>

typedef struct sl_threadpool sl_threadpool_t;

/* task in [0, count), thread in [0, threads): the index of a per-thread scratch slot. */
typedef void (*sl_task_fn)(void* ctx, size_t task, size_t thread);

/* NULL when threads < 2, when out of resources, or in builds without threads;
 * callers then run every task on the calling thread. */
sl_threadpool_t* sl_threadpool_create(int threads);
void sl_threadpool_destroy(sl_threadpool_t* pool);
/* Runs fn for every task and returns when all are done. pool may be NULL. */
void sl_threadpool_run(sl_threadpool_t* pool, size_t count, sl_task_fn fn, void* ctx);

#endif
