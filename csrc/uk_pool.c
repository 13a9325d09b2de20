/* A persistent thread pool.
 *
 * Workers are created once.  Between jobs they spin for a bounded time
 * (spin_ns) watching the job generation, then sleep on a condition variable:
 * on VMs waking a halted vCPU from a futex sleep costs more than a small
 * matmul.  A job's tasks are claimed with an atomic counter, so uneven tasks
 * balance themselves.
 *
 * Completion is counted in tasks, not workers: the caller runs tasks too and
 * returns as soon as every task is done, so a worker that the OS has not
 * scheduled yet (another library's threads may be spinning on the cores)
 * never delays the caller.  Late workers are fenced off: a worker increments
 * `entered` before it reads `job`; the caller clears `job` and then waits for
 * `entered` to drain (sequentially consistent atomics make this airtight), so
 * no worker touches the caller's job after uk_pool_run returns.
 *
 * Waking sleeping workers steers them off the caller's CPU (uk_steer_sleepers):
 * measured on a 2-vCPU KVM guest, a worker woken from its futex sleep was often
 * placed on the caller's own vCPU, where it waited behind the caller (which runs
 * tasks too) until load balancing moved one of them, milliseconds later: the
 * first calls after an idle pause ran at half the one-thread speed (a 2-thread
 * job of 8 x 210 us tasks: 2.7-3.9 ms instead of 0.9 ms; 256^3 matmul 400 vs
 * 230 us), for up to a few dozen calls. Before waking, the caller restricts
 * each sleeping worker to the CPUs it may itself use minus the one it is on;
 * spinning workers are left alone (they are running already). */
#if defined(__linux__)
#define _GNU_SOURCE
#else
#define _POSIX_C_SOURCE 200809L
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "uk_runtime.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define UK_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define UK_CPU_RELAX() __asm__ volatile("yield")
#else
#define UK_CPU_RELAX() ((void)0)
#endif

typedef struct uk_job_t {
  uk_task_fn_t fn;
  void* ctx;
  int64_t num_tasks;
  int32_t participants; /* thread indices [0, participants) take part */
  _Atomic int64_t next;
  _Atomic int64_t done;
} uk_job_t;

struct uk_pool_t {
  int32_t size; /* threads including the caller */
  pthread_t* threads;
  int64_t spin_ns;
  pthread_mutex_t submit; /* held by the caller that owns the current job */
  pthread_mutex_t mutex;
  pthread_cond_t work_cv, done_cv;
  _Atomic uint64_t generation;
  _Atomic int stop;
  _Atomic(uk_job_t*) job;
  _Atomic int32_t entered; /* workers currently looking at `job` */
  _Atomic int32_t sleepers; /* workers waiting on work_cv (not spinning) */
};

typedef struct {
  uk_pool_t* pool;
  int32_t index;
} uk_worker_arg_t;

static int64_t uk_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void uk_run_tasks(uk_pool_t* pool, uk_job_t* job, int32_t index) {
  for (;;) {
    const int64_t t = atomic_fetch_add(&job->next, 1);
    if (t >= job->num_tasks) return;
    job->fn(job->ctx, t, index);
    if (atomic_fetch_add(&job->done, 1) + 1 == job->num_tasks && index != 0) {
      pthread_mutex_lock(&pool->mutex); /* the caller may be asleep on done_cv */
      pthread_cond_broadcast(&pool->done_cv);
      pthread_mutex_unlock(&pool->mutex);
    }
  }
}

static void* uk_worker_main(void* arg_) {
  uk_worker_arg_t* arg = (uk_worker_arg_t*)arg_;
  uk_pool_t* pool = arg->pool;
  const int32_t index = arg->index;
  free(arg);
  uint64_t seen = 0;
  for (;;) {
    if (pool->spin_ns > 0) { /* bounded spin for the next job */
      const int64_t deadline = uk_now_ns() + pool->spin_ns;
      for (int i = 0; atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop); ++i) {
        UK_CPU_RELAX();
        if ((i & 63) == 63 && uk_now_ns() > deadline) break;
      }
    }
    pthread_mutex_lock(&pool->mutex);
    if (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop)) {
      atomic_fetch_add(&pool->sleepers, 1);
      while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
        pthread_cond_wait(&pool->work_cv, &pool->mutex);
      atomic_fetch_sub(&pool->sleepers, 1);
    }
    pthread_mutex_unlock(&pool->mutex);
    if (atomic_load(&pool->stop)) break;
    seen = atomic_load(&pool->generation);
    atomic_fetch_add(&pool->entered, 1);
    uk_job_t* job = atomic_load(&pool->job);
    if (job && index < job->participants) uk_run_tasks(pool, job, index);
    atomic_fetch_sub(&pool->entered, 1);
  }
  return NULL;
}

uk_pool_t* uk_pool_create(int32_t num_threads, int64_t spin_ns) {
  if (num_threads < 1) num_threads = 1;
  uk_pool_t* pool = (uk_pool_t*)calloc(1, sizeof(uk_pool_t));
  if (!pool) return NULL;
  pool->size = num_threads;
  pool->spin_ns = spin_ns > 0 ? spin_ns : 0;
  pthread_mutex_init(&pool->submit, NULL);
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->work_cv, NULL);
  pthread_cond_init(&pool->done_cv, NULL);
  atomic_init(&pool->generation, 0);
  atomic_init(&pool->stop, 0);
  atomic_init(&pool->job, NULL);
  atomic_init(&pool->entered, 0);
  atomic_init(&pool->sleepers, 0);
  pool->threads = (pthread_t*)calloc((size_t)num_threads, sizeof(pthread_t));
  if (!pool->threads) {
    free(pool);
    return NULL;
  }
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
  atomic_store(&pool->stop, 1);
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

/* Called with pool->mutex held, before waking sleeping workers: restrict every worker to the
 * CPUs the caller may use minus the caller's current one (see the file comment). A caller
 * limited to one CPU, or a failing call, leaves the masks as they are. */
static void uk_steer_sleepers(uk_pool_t* pool) {
#if defined(__linux__)
  const int cpu = sched_getcpu();
  cpu_set_t mask;
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof mask, &mask) != 0) return;
  if (!CPU_ISSET(cpu, &mask) || CPU_COUNT(&mask) < 2) return;
  CPU_CLR(cpu, &mask);
  for (int32_t i = 1; i < pool->size; ++i) pthread_setaffinity_np(pool->threads[i], sizeof mask, &mask);
#else
  (void)pool;
#endif
}

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
  uk_job_t job;
  job.fn = fn;
  job.ctx = ctx;
  job.num_tasks = num_tasks;
  job.participants = n;
  atomic_init(&job.next, 0);
  atomic_init(&job.done, 0);
  atomic_store(&pool->job, &job);
  pthread_mutex_lock(&pool->mutex);
  if (atomic_load(&pool->sleepers) > 0) uk_steer_sleepers(pool);
  atomic_fetch_add(&pool->generation, 1);
  pthread_cond_broadcast(&pool->work_cv);
  pthread_mutex_unlock(&pool->mutex);

  uk_run_tasks(pool, &job, 0);

  /* Wait for tasks other threads claimed: spin, then sleep. */
  if (atomic_load(&job.done) < num_tasks && pool->spin_ns > 0) {
    const int64_t deadline = uk_now_ns() + pool->spin_ns;
    for (int i = 0; atomic_load(&job.done) < num_tasks; ++i) {
      UK_CPU_RELAX();
      if ((i & 63) == 63 && uk_now_ns() > deadline) break;
    }
  }
  if (atomic_load(&job.done) < num_tasks) {
    pthread_mutex_lock(&pool->mutex);
    while (atomic_load(&job.done) < num_tasks) pthread_cond_wait(&pool->done_cv, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
  }
  /* Fence off late workers before `job` (on this stack) goes away. */
  atomic_store(&pool->job, NULL);
  for (int i = 0; atomic_load(&pool->entered) > 0; ++i) {
    if (i < 4096) UK_CPU_RELAX(); else sched_yield();
  }
  pthread_mutex_unlock(&pool->submit);
}
