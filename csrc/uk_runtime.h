/* C side of the runtime: a persistent thread pool, the per-tile epilogue and
 * the matmul dispatch (pack -> tiles -> one ukernel call -> epilogue ->
 * write-back).  Unlike the ukernels these own threads; they still allocate
 * nothing per call: all workspace comes from the caller. */
#ifndef UK_RUNTIME_H
#define UK_RUNTIME_H

#include "uk_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- thread pool -------------------------------------------------------- */
typedef struct uk_pool_t uk_pool_t;
typedef void (*uk_task_fn_t)(void* ctx, int64_t task, int32_t thread_index);

/* num_threads counts the calling thread: num_threads - 1 workers are started.
 * Idle threads spin for spin_ns (0: never) before sleeping. */
uk_pool_t* uk_pool_create(int32_t num_threads, int64_t spin_ns);
void uk_pool_destroy(uk_pool_t* pool);
int32_t uk_pool_size(const uk_pool_t* pool);
/* Runs fn(ctx, t, thread_index) for t in [0, num_tasks) on at most max_threads
 * threads (the caller is thread 0) and returns when all are done.  If another
 * caller is using the pool, runs everything on the calling thread instead
 * (thread_index 0), so concurrent callers never wait on each other.
 * pool may be NULL (single-threaded). */
void uk_pool_run(uk_pool_t* pool, uk_task_fn_t fn, void* ctx, int64_t num_tasks,
                 int32_t max_threads);

/* ---- epilogue ----------------------------------------------------------- */
enum {
  UK_EPI_BIAS_COLUMN = 1, /* x[i][j] += data[j]          (data: f32 or s32 as the acc) */
  UK_EPI_RELU = 2,        /* x = max(x, 0), NaN propagates                           */
  UK_EPI_GELU_ERF = 3,    /* x = x/2 * (1 + erf(x/sqrt 2)), f32 only                  */
};

typedef struct uk_epilogue_op_t {
  int32_t kind;
  int32_t reserved;
  const void* data;    /* operand (NULL for unary ops) */
  int64_t data_stride; /* elements between consecutive operand entries */
} uk_epilogue_op_t;

/* Applies ops in order to x[0..len), a row segment at (row, col0) of the
 * output.  acc_type: UK_TYPE_F32F32F32 (float) or UK_TYPE_S8S8S32 (int32). */
int uk_epilogue_apply(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops,
                      void* x, int64_t len, int64_t row, int64_t col0,
                      const uint64_t* cpu_data);
/* Checks that every op is valid for acc_type (UK_STATUS_*). */
int uk_epilogue_check(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops);

/* ---- matmul dispatch ---------------------------------------------------- */
typedef struct uk_matmul_desc_t {
  uint32_t type;                 /* UK_TYPE_F32F32F32 or UK_TYPE_S8S8S32 */
  int64_t M, N, K;               /* elements */
  const void* a;                 /* [M][K], element strides (any sign) */
  int64_t a_stride0, a_stride1;
  const void* b;                 /* [K][N]; ignored when rhs_prepacked */
  int64_t b_stride0, b_stride1;
  void* out;                     /* [M][N] row-major, unit column stride */
  int64_t out_stride0;
  int32_t M0, N0, K0;            /* ukernel (register) tile */
  int64_t MC, NC, KC;            /* workgroup tile (multiples of M0/N0) and K block (of K0) */
  void* lhs_packed;              /* workspace: ceil(M/M0)*ceil(K/K0)*M0*K0 elements */
  void* rhs_packed;              /* ceil(N/N0)*ceil(K/K0)*N0*K0 elements, or prepacked */
  int32_t rhs_prepacked;         /* 1: rhs_packed already holds packed b */
  int32_t rhs_pack_in_tile;      /* 1: each workgroup packs its KC x NC rhs blocks into its
                                    scratch right before using them (BLIS order; for M <= MC,
                                    where every rhs block is used by one workgroup only) */
  void* scratch;                 /* per thread: MC*NC + NC accumulator elements (4 bytes each),
                                    then KC*NC rhs elements when rhs_pack_in_tile */
  int64_t scratch_stride;        /* bytes between threads' scratch areas */
  uk_mmt4d_fn_t mmt4d;           /* the ukernel: uk_mmt4d or a generated function */
  uint32_t mmt4d_flags;          /* extra flags, e.g. UK_FLAG_ALLOW_GENERIC_FALLBACK */
  const uint64_t* cpu_data;
  const uk_epilogue_op_t* ops;
  int32_t num_ops;
  int32_t max_threads;           /* <= pool size */
  int64_t pack_tasks_hint;       /* tasks per operand in the pack phase (>= 1) */
} uk_matmul_desc_t;

int uk_matmul_run(const uk_matmul_desc_t* desc, uk_pool_t* pool);

/* Packs b [K][N] into rhs_packed as uk_matmul_run would (for prepacking). */
int uk_matmul_pack_rhs(const uk_matmul_desc_t* desc, uk_pool_t* pool);

#ifdef __cplusplus
}
#endif
#endif
