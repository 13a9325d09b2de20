/* A persistent thread pool: workers are created once and sleep on a
 * condition variable between jobs; a job's tasks are claimed with an atomic
 * counter, so uneven tasks balance themselves. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "uk_runtime.h"

struct uk_pool_t {
  int32_t size; /* threads including the caller */
  pthread_t* threads;
  pthread_mutex_t submit; /* held by the caller that owns the current job */
  pthread_mutex_t mutex;
  pthread_cond_t work_cv, done_cv;
  uint64_t generation;
  int stop;
  /* current job */
  uk_task_fn_t fn;
  void* ctx;
  int64_t num_tasks;
  int32_t participants;
  int32_t active; /* workers still running the job */
  _Atomic int64_t next;
};

typedef struct {
  uk_pool_t* pool;
  int32_t index;
} uk_worker_arg_t;

static void uk_pool_drain(uk_pool_t* pool, int32_t index) {
  for (;;) {
    const int64_t t = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
    if (t >= pool->num_tasks) break;
    pool->fn(pool->ctx, t, index);
  }
}

static void* uk_worker_main(void* arg_) {
  uk_worker_arg_t* arg = (uk_worker_arg_t*)arg_;
  uk_pool_t* pool = arg->pool;
  const int32_t index = arg->index;
  free(arg);
  uint64_t seen = 0;
  pthread_mutex_lock(&pool->mutex);
  for (;;) {
    while (pool->generation == seen && !pool->stop) pthread_cond_wait(&pool->work_cv, &pool->mutex);
    if (pool->stop) break;
    seen = pool->generation;
    if (index >= pool->participants) continue;
    pthread_mutex_unlock(&pool->mutex);
    uk_pool_drain(pool, index);
    pthread_mutex_lock(&pool->mutex);
    if (--pool->active == 0) pthread_cond_signal(&pool->done_cv);
  }
  pthread_mutex_unlock(&pool->mutex);
  return NULL;
}

uk_pool_t* uk_pool_create(int32_t num_threads) {
  if (num_threads < 1) num_threads = 1;
  uk_pool_t* pool = (uk_pool_t*)calloc(1, sizeof(uk_pool_t));
  if (!pool) return NULL;
  pool->size = num_threads;
  pthread_mutex_init(&pool->submit, NULL);
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->work_cv, NULL);
  pthread_cond_init(&pool->done_cv, NULL);
  atomic_init(&pool->next, 0);
  pool->threads = (pthread_t*)calloc((size_t)num_threads, sizeof(pthread_t));
  if (!pool->threads) { free(pool); return NULL; }
  for (int32_t i = 1; i < num_threads; ++i) {
    uk_worker_arg_t* arg = (uk_worker_arg_t*)malloc(sizeof *arg);
    if (!arg) { pool->size = i; break; }
    arg->pool = pool;
    arg->index = i;
    if (pthread_create(&pool->threads[i], NULL, uk_worker_main, arg) != 0) {
      free(arg);
      pool->size = i; /* run with the threads we got */
      break;
    }
  }
  return pool;
}

void uk_pool_destroy(uk_pool_t* pool) {
  if (!pool) return;
  pthread_mutex_lock(&pool->mutex);
  pool->stop = 1;
  pthread_cond_broadcast(&pool->work_cv);
  pthread_mutex_unlock(&pool->mutex);
  for (int32_t i = 1; i < pool->size; ++i) pthread_join(pool->threads[i], NULL);
  pthread_cond_destroy(&pool->work_cv);
  pthread_cond_destroy(&pool->done_cv);
  pthread_mutex_destroy(&pool->mutex);
  pthread_mutex_destroy(&pool->submit);
  free(pool->threads);
  free(pool);
}

int32_t uk_pool_size(const uk_pool_t* pool) { return pool ? pool->size : 1; }

void uk_pool_run(uk_pool_t* pool, uk_task_fn_t fn, void* ctx, int64_t num_tasks,
                 int32_t max_threads) {
  if (num_tasks <= 0) return;
  int32_t n = pool ? pool->size : 1;
  if (max_threads < n) n = max_threads;
  if ((int64_t)n > num_tasks) n = (int32_t)num_tasks;
  if (n <= 1 || pthread_mutex_trylock(&pool->submit) != 0) {
    for (int64_t t = 0; t < num_tasks; ++t) fn(ctx, t, 0);
    return;
  }
  pthread_mutex_lock(&pool->mutex);
  pool->fn = fn;
  pool->ctx = ctx;
  pool->num_tasks = num_tasks;
  pool->participants = n;
  pool->active = n - 1;
  atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
  pool->generation++;
  pthread_cond_broadcast(&pool->work_cv);
  pthread_mutex_unlock(&pool->mutex);
  uk_pool_drain(pool, 0);
  pthread_mutex_lock(&pool->mutex);
  while (pool->active > 0) pthread_cond_wait(&pool->done_cv, &pool->mutex);
  pthread_mutex_unlock(&pool->mutex);
  pthread_mutex_unlock(&pool->submit);
}
