/* Symmetric per-row int8 quantization of float32 activations (a weight-quantized Linear's x,
 * every call): sx[i] = max_k |x[i][k]| / 127, q[i][k] = clip(rint(x[i][k] / sx[i]), -127, 127)
 * (sx = 0: the divisor is 1), the arithmetic of ukernels/quantize.py's documentation in f32,
 * element for element as numpy computes it (uk_quantize_impl.inl). Rows split over the pool
 * when there are enough of them; no allocation, no globals. */
#include <stdatomic.h>
#include <string.h>

#include "uk_runtime.h"

#define UK_QUANTIZE_ROWS uk_quantize_rows_s8_range_generic
#include "uk_quantize_impl.inl"
#undef UK_QUANTIZE_ROWS

#if defined(__x86_64__) || defined(_M_X64)
int uk_quantize_rows_s8_range_avx2(const float* x, int64_t r0, int64_t r1, int64_t K, int64_t x_stride0, int8_t* q,
                                   int64_t q_stride0, float* scales);
#endif

typedef int (*uk_quantize_range_fn_t)(const float*, int64_t, int64_t, int64_t, int64_t, int8_t*, int64_t, float*);

typedef struct {
  uk_quantize_range_fn_t fn;
  const float* x;
  int64_t M, K, x_stride0, q_stride0, rows_per_task;
  int8_t* q;
  float* scales;
  _Atomic int bad;
} uk_quantize_ctx_t;

static void uk_quantize_task(void* ctx_, int64_t task, int32_t thread_index) {
  (void)thread_index;
  uk_quantize_ctx_t* c = (uk_quantize_ctx_t*)ctx_;
  const int64_t r0 = task * c->rows_per_task, r1 = r0 + c->rows_per_task < c->M ? r0 + c->rows_per_task : c->M;
  if (c->fn(c->x, r0, r1, c->K, c->x_stride0, c->q, c->q_stride0, c->scales))
    atomic_store_explicit(&c->bad, 1, memory_order_relaxed);
}

#define UK_QUANTIZE_MIN_TASK_ELEMS (64 * 1024) /* below this, one thread (a pool wake-up costs more) */

int uk_quantize_rows_s8(const float* x, int64_t M, int64_t K, int64_t x_stride0, int8_t* q, int64_t q_stride0,
                        float* scales, const uint64_t* cpu_data, uk_pool_t* pool, int32_t max_threads) {
  if (M < 0 || K < 0 || (M > 0 && K > 0 && (!x || !q)) || (M > 0 && !scales)) return UK_STATUS_BAD_ARGUMENT;
  uk_quantize_ctx_t c;
  c.fn = uk_quantize_rows_s8_range_generic;
#if defined(__x86_64__) || defined(_M_X64)
  if (cpu_data && (cpu_data[0] & UK_CPU_X86_AVX2_FMA)) c.fn = uk_quantize_rows_s8_range_avx2;
#else
  (void)cpu_data;
#endif
  c.x = x;
  c.M = M;
  c.K = K;
  c.x_stride0 = x_stride0;
  c.q = q;
  c.q_stride0 = q_stride0;
  c.scales = scales;
  atomic_init(&c.bad, 0);
  const int64_t elems = M * (K > 0 ? K : 1);
  int64_t tasks = elems / UK_QUANTIZE_MIN_TASK_ELEMS;
  if (tasks > 4 * (int64_t)max_threads) tasks = 4 * (int64_t)max_threads;
  if (tasks > M) tasks = M;
  if (!pool || max_threads <= 1 || tasks <= 1) {
    c.rows_per_task = M > 0 ? M : 1;
    if (M > 0) uk_quantize_task(&c, 0, 0);
  } else {
    c.rows_per_task = (M + tasks - 1) / tasks;
    uk_pool_run(pool, uk_quantize_task, &c, (M + c.rows_per_task - 1) / c.rows_per_task, max_threads);
  }
  return atomic_load_explicit(&c.bad, memory_order_relaxed) ? UK_STATUS_BAD_ARGUMENT : UK_STATUS_OK;
}
