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

/* ---- activation quantization (csrc/uk_quantize.c) ------------------------ */
/* Symmetric per-row int8 of float32 rows: scales[i] = max|x[i]| / 127 and q[i][k] =
 * clip(rint(x[i][k] / scales[i]), -127, 127) (scale 0: divisor 1), never -128 (the promise of
 * UK_FLAG_LHS_S8_SYMMETRIC). Strides in elements; the AVX2 build where cpu_data has it; rows
 * split over pool (may be NULL) on up to max_threads. UK_STATUS_BAD_ARGUMENT on a NaN or Inf
 * value (q and scales then partly written). */
int uk_quantize_rows_s8(const float* x, int64_t M, int64_t K, int64_t x_stride0, int8_t* q, int64_t q_stride0,
                        float* scales, const uint64_t* cpu_data, uk_pool_t* pool, int32_t max_threads);

/* ---- weight-quantized Linear, few rows (csrc/uk_qlinear.c) ------------------ */
/* One call for a product of a weight-quantized Linear (decode: a few rows; prompts: many): x (M rows
 * of f32) quantized per row to int8 (exactly as uk_quantize_rows_s8), the integer products over a
 * weight layout made for streaming, dequantized, the f32 ops applied (bias, activation: the
 * dispatch's epilogue) and stored; the column tiles split over the pool only when the weight
 * has at least parallel_min_bytes. Results equal the general dispatch's (uk_matmul_run with the
 * same quantized operands, scales and ops) bit for bit at every ISA level.
 *
 * Weight layout (one sequential stream per thread): panels of 64 columns (N4 = ceil(N / 64);
 * columns past N are zero), each panel a run of G chunks (G = K / group_size, or 1 per channel
 * with the group = all of Kp: K padded with zeros to a multiple of 4 for int8, 8 for int4); a
 * chunk is the group's weights, then its scales, then (int8) its weight sums:
 *   weights: gk / step blocks of 256 bytes, [4 tiles][64 bytes] (step 4 for int8, 8 for int4):
 *     bits 8: byte 4n + k of tile u holds w[16u + n][4s + k] (int8);
 *     bits 4: byte 4n + k of tile u holds w[16u + n][8s + k] + 8 in its low nibble and
 *             w[16u + n][8s + 4 + k] + 8 in its high nibble (offset nibbles, 0..15);
 *   scales: [4][16] f32 (the group's scale of each column);
 *   sums (bits 8 only): [4][16] int32, 128 * the sum of the group's weights of each column (the
 *     correction of the x + 128 form).
 * uk_qlinear_weight_bytes gives the size. */
#define UK_QLINEAR_MAX_M 16 /* decode-sized calls: M up to this (any M is accepted) */
typedef struct uk_qlinear_desc_t {
  int64_t N, K;
  int32_t bits;                /* 8 or 4 */
  int32_t group_size;          /* 0: per output channel; else a multiple of 8 dividing K */
  const void* weight;          /* the layout above, 64-byte aligned */
  const uk_epilogue_op_t* ops; /* f32 ops after dequantization (UK_EPI_BIAS_COLUMN, activations, ...) */
  int32_t num_ops;
  int32_t max_threads;         /* <= the pool's size */
  int64_t parallel_min_bytes;  /* weight bytes from which the pool is used */
  const uint64_t* cpu_data;
  /* 1: a gated unit (SwiGLU): the weight holds 2 * ceil(N / 64) panels, gate and up in turn
   * (panel 2q: the gate's columns 64q..64q+63, panel 2q + 1: the up projection's same columns),
   * and out[m][j] = silu(gate[m][j]) * up[m][j] (the epilogue's silu, then one f32 product),
   * N columns, before ops. 0: a plain layer. */
  int32_t gated;
} uk_qlinear_desc_t;
/* Bytes of the weight layout of desc (its N, K, bits and group_size). */
int64_t uk_qlinear_weight_bytes(const uk_qlinear_desc_t* d);
/* Bytes of the work area uk_qlinear_run needs for M rows (64-byte aligned pieces). */
int64_t uk_qlinear_work_bytes(const uk_qlinear_desc_t* d, int64_t M);
/* out[M][N] (row stride out_stride0, f32) for x[M][K] (row stride x_stride0). work: at least
 * uk_qlinear_work_bytes(d, M) bytes, 64-byte aligned, used by this call only. Statuses:
 * UK_STATUS_BAD_ARGUMENT for a bad descriptor, M < 0 or a NaN/Inf in x. */
int uk_qlinear_run(const uk_qlinear_desc_t* d, const float* x, int64_t M, int64_t x_stride0, float* out,
                   int64_t out_stride0, void* work, uk_pool_t* pool);
/* The kernel uk_qlinear_run uses for these CPU bits (a static string). */
const char* uk_qlinear_kernel_name(const uk_qlinear_desc_t* d);

/* ---- epilogue ----------------------------------------------------------- */
/* The op list (UK_EPI_*, uk_epilogue_op_t) and the output types (UK_OUT_*) are in uk_api.h:
 * generated kernels that apply the epilogue in registers (UK_FLAG_EPILOGUE_FUSED) read them. */
/* Bytes per element of an output type (0 if unknown). */
int32_t uk_out_bytes(int32_t out_type);

/* Applies ops in order to x[0..len), a row segment at (row, col0) of the
 * output.  acc_type: any UK_TYPE_* triple; the segment starts as float for a
 * float accumulator and as int32 for an integer one (uk_type_info). */
int uk_epilogue_apply(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops,
                      void* x, int64_t len, int64_t row, int64_t col0,
                      const uint64_t* cpu_data);
/* Checks that the op sequence is consistent for acc_type and out_type (UK_STATUS_*). */
int uk_epilogue_check(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops, int32_t out_type);
/* Stores len segment values into dst as out_type (the segment's final domain
 * must match: float for UK_OUT_F32, int32 otherwise). */
void uk_epilogue_store(int32_t out_type, const void* x, void* dst, int64_t len);

/* ---- matmul dispatch ---------------------------------------------------- */
typedef struct uk_matmul_desc_t {
  uint32_t type;                 /* UK_TYPE_*: a triple uk_type_info knows */
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
                                    then KC*NC rhs elements when rhs_pack_in_tile, MC*NC group
                                    sums with rhs_direct, MC*KC lhs elements (64-byte aligned)
                                    with lhs_pack_in_tile: uk_matmul_scratch_bytes */
  int64_t scratch_stride;        /* bytes between threads' scratch areas */
  uk_mmt4d_fn_t mmt4d;           /* the ukernel: uk_mmt4d or a generated function */
  uint32_t mmt4d_flags;          /* extra flags, e.g. UK_FLAG_ALLOW_GENERIC_FALLBACK */
  const uint64_t* cpu_data;
  const uk_epilogue_op_t* ops;
  int32_t num_ops;
  int32_t out_type;              /* UK_OUT_*; out rows are N elements of that type apart (out_stride0) */
  int32_t max_threads;           /* <= pool size */
  int64_t pack_tasks_hint;       /* tasks per operand in the pack phase (>= 1) */
  uint32_t kernel_type;          /* 0: the ukernel computes `type`.  UK_TYPE_F32F32F32 with 16-bit
                                    float inputs (f16f16f32, bf16bf16f32): both operands are widened
                                    to f32 while packed and the f32 ukernel runs (lhs_packed,
                                    rhs_packed and the in-tile rhs block then hold f32); not with
                                    rhs_prepacked */
  const volatile int32_t* cancel;/* optional: when *cancel != 0, remaining work is skipped and
                                    the call returns UK_STATUS_CANCELLED (checked between
                                    workgroups, K blocks and pack tasks); NULL: never */
  int32_t rhs_direct;            /* 1 (with rhs_pack_in_tile): the ukernel reads b in place, its
                                    rows as the K steps of rhs panels (uk_mmt4d_params_t.rhs_stride1);
                                    needs K0 == 1, b_stride1 == 1 and no widening kernel_type. Only
                                    a workgroup's partial last column tile is packed (into scratch) */
  const float* rhs_group_scales; /* integer triples with rhs_prepacked: per-group weight scales
                                    [N1][G][N0] (G = ceil(K / group_size), columns past N zero);
                                    the ukernel runs with UK_FLAG_GROUP_SCALES and the accumulator
                                    (and so the epilogue's first domain) is f32. NULL: none */
  int64_t group_size;            /* K elements per group (a multiple of K0; KC a multiple of it) */
  int64_t batch;                 /* > 1: that many independent M x N x K products in one call (np.matmul's
                                    stacks): items are a + i*a_batch_stride, b + i*b_batch_stride, out +
                                    i*out_batch_stride (elements; a stride 0 shares the operand: a shared b
                                    is packed once), op operands + i*data_batch_stride; workspaces hold
                                    batch lhs panels and batch (or 1, shared) rhs panels. 0 or 1: one */
  int64_t a_batch_stride, b_batch_stride, out_batch_stride;
  int32_t lhs_pack_in_tile;      /* 1: each workgroup packs its MC x KC lhs blocks into its scratch
                                    right before using them (for N <= NC, where every lhs block is
                                    used by one workgroup only); lhs_packed is then unused. Not
                                    with rhs_direct */
  int32_t epilogue_fused;        /* 1: mmt4d is a generated kernel that applies the epilogue in
                                    registers (UK_FLAG_EPILOGUE_FUSED): a workgroup's last K block
                                    call gets the op list and writes the final values into out
                                    itself, and the dispatch's own epilogue and write-back are
                                    skipped. Not with rhs_direct or rhs_group_scales */
} uk_matmul_desc_t;

/* Returned by uk_matmul_run when *desc->cancel was set: the output is incomplete. */
enum { UK_STATUS_CANCELLED = 16 };

/* Bytes of scratch one thread needs for this descriptor (scratch_stride must be
 * at least this; uk_matmul_run checks it). */
int64_t uk_matmul_scratch_bytes(const uk_matmul_desc_t* desc);

/* ---- SIGINT while a long call runs (uk_interrupt.c) ---------------------- */
/* Installs a SIGINT handler that sets the flag uk_interrupt_flag() points to and
 * then calls the handler it replaced (Python's), so the interpreter still sees
 * the signal.  Nested arms count; the last disarm restores the previous handler.
 * Returns 0 on success. Only for the thread that handles Python's signals. */
int uk_interrupt_arm(void);
void uk_interrupt_disarm(void);
const volatile int32_t* uk_interrupt_flag(void);

int uk_matmul_run(const uk_matmul_desc_t* desc, uk_pool_t* pool);

/* A recorded small call run again (on `pool`, or NULL: the calling thread): `desc` as uk_matmul_run takes it,
 * except that its lhs_packed, rhs_packed (unless rhs_pack_in_tile or rhs_prepacked: then as
 * uk_matmul_run reads them) and scratch fields hold byte offsets into `work` (64-byte aligned,
 * large enough) instead of addresses; a, b and out replace desc's, and cancel its cancel flag
 * (NULL: never). Saves the caller filling a descriptor per call. */
int uk_matmul_run_replay(const uk_matmul_desc_t* desc, const void* a, const void* b, void* out, void* work,
                         uk_pool_t* pool, const volatile int32_t* cancel);

/* Packs b [K][N] into rhs_packed as uk_matmul_run would (for prepacking). */
int uk_matmul_pack_rhs(const uk_matmul_desc_t* desc, uk_pool_t* pool);

#ifdef __cplusplus
}
#endif
#endif
