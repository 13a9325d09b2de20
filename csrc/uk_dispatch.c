/* The matmul dispatch: the five loops around the ukernel, BLIS-style.
 *
 *   phase 1 (parallel): pack a [M][K] -> lhs [M1][K1][M0][K0] and
 *                       b [K][N] -> rhs [N1][K1][N0][K0] (unless prepacked, or
 *                       packed per workgroup when there is one workgroup row)
 *   phase 2 (parallel over workgroup tiles MC x NC of the output):
 *     for each K block of KC:  ONE ukernel call over the tile's panels into a
 *                              per-thread accumulator (ACCUMULATE after the first)
 *     for each row of the tile: gather the row out of the tiled accumulator,
 *                              apply the epilogue while it is in L1, store it
 *                              into the row-major output (unpack fused here).
 *
 * Both phases run as ONE pool job (see uk_pack_then_tile_task): one wake-up
 * and one join per call.  Register blocking is M0xN0xK0 (the ukernel's tile);
 * cache blocking is MC/NC/KC (chosen by the Python planner, see
 * ukernels/runtime/plan.py). */
#include <stdatomic.h>
#include <string.h>

#include "uk_runtime.h"

static int64_t uk_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

typedef struct {
  const uk_matmul_desc_t* d;
  int64_t M1, N1, K1;
  int64_t lhs_tasks, rhs_tasks; /* per item */
  int64_t nmb, nnb;  /* workgroup tiles along M and N */
  int64_t items, rhs_items;     /* batch items; items whose rhs is packed (1 when shared) */
  int64_t lhs_item_bytes, rhs_item_bytes; /* packed panels per item */
  _Atomic int status;
  _Atomic int64_t packs_done; /* pack tasks finished (the fused single-job dispatch) */
} uk_dispatch_ctx_t;

/* The accumulator's triple as the epilogue sees it: group-scaled integer products are f32. */
static uint32_t uk_epilogue_type(const uk_matmul_desc_t* d) {
  return d->rhs_group_scales ? (uint32_t)UK_TYPE_F32F32F32 : d->type;
}

/* The type the ukernel computes (desc->kernel_type, or the input triple). */
static uint32_t uk_kernel_type(const uk_matmul_desc_t* d) { return d->kernel_type ? d->kernel_type : d->type; }

/* Bits of one packed element of an operand (side 0: lhs, 1: rhs) in the kernel type. */
static int32_t uk_operand_bits(const uk_matmul_desc_t* d, int side) {
  uk_type_info_t k;
  uk_type_info(uk_kernel_type(d), &k);
  return side ? k.rhs_bits : k.lhs_bits;
}

/* Pack flags for one operand (side 0: lhs, 1: rhs): the element size of the
 * packed layout, plus the widening conversion when the kernel type is wider. */
static uint32_t uk_pack_flags(const uk_matmul_desc_t* d, int side) {
  const int32_t bits = uk_operand_bits(d, side);
  uint32_t flags = bits == 32 ? UK_PACK_TYPE_F32 : bits == 16 ? UK_PACK_TYPE_X16 : bits == 8 ? UK_PACK_TYPE_I8
                                                                                    : UK_PACK_TYPE_S4;
  if (d->kernel_type && d->kernel_type != d->type)
    flags |= d->type == UK_TYPE_F32F32F32 ? UK_PACK_NARROW_BF16
             : d->type == UK_TYPE_F16F16F32 ? UK_PACK_WIDEN_F16 : UK_PACK_WIDEN_BF16;
  return flags;
}

/* Packs tiles [t, t + tt) of one operand (side 0: lhs row tiles of a; 1: rhs column tiles of
 * b) over K tiles [k1, k1 + tk) into dst at element offset out_offset, laid out
 * [tt][tk][T0][K0]: the pack phase's ranges (all of K, into lhs_packed / rhs_packed) and the
 * in-tile blocks (rhs_pack_in_tile, lhs_pack_in_tile, into scratch). */
static int uk_pack_block(const uk_matmul_desc_t* d, int side, void* dst, int64_t out_offset, int64_t t,
                         int64_t tt, int64_t k1, int64_t tk) {
  const int64_t T0 = side ? d->N0 : d->M0;
  uk_pack_params_t p;
  memset(&p, 0, sizeof p);
  p.cpu_data = d->cpu_data;
  if (!side) {
    p.in_buffer = d->a;
    p.in_offset = t * d->M0 * d->a_stride0 + k1 * d->K0 * d->a_stride1;
    p.in_stride0 = d->a_stride0;
    p.in_stride1 = d->a_stride1;
    p.in_size0 = d->M - t * d->M0;
    p.in_size1 = d->K - k1 * d->K0;
    p.flags = uk_pack_flags(d, 0);
  } else { /* b is [K][N]: its columns run along the tiles */
    p.in_buffer = d->b;
    p.in_offset = k1 * d->K0 * d->b_stride0 + t * d->N0 * d->b_stride1;
    p.in_stride0 = d->b_stride0;
    p.in_stride1 = d->b_stride1;
    p.in_size0 = d->K - k1 * d->K0;
    p.in_size1 = d->N - t * d->N0;
    p.flags = uk_pack_flags(d, 1) | UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER;
  }
  p.out_buffer = dst;
  p.out_offset = out_offset;
  p.out_stride0 = tk * T0 * d->K0;
  p.out_size0 = tt;
  p.out_size1 = tk;
  p.tile_size0 = (int32_t)T0;
  p.tile_size1 = d->K0;
  return uk_pack(&p);
}

/* Packs lhs row-tiles [t0, t1) (pack_rhs = 0) or rhs column-tiles [t0, t1) of item d, all of K. */
static int uk_pack_range(const uk_dispatch_ctx_t* c, const uk_matmul_desc_t* d, int pack_rhs, int64_t t0,
                         int64_t t1) {
  const int64_t T0 = pack_rhs ? d->N0 : d->M0;
  return uk_pack_block(d, pack_rhs, pack_rhs ? d->rhs_packed : d->lhs_packed, t0 * c->K1 * T0 * d->K0, t0,
                       t1 - t0, 0, c->K1);
}

/* A batch item seen as a single call: the descriptor with its operand, output, workspace and
 * op operand pointers moved to item i (item 0 is the descriptor itself). */
#define UK_BATCH_MAX_OPS 64
typedef struct {
  uk_matmul_desc_t d;
  uk_epilogue_op_t ops[UK_BATCH_MAX_OPS];
} uk_item_desc_t;

static const uk_matmul_desc_t* uk_item(const uk_dispatch_ctx_t* c, int64_t i, uk_item_desc_t* buf) {
  const uk_matmul_desc_t* d = c->d;
  if (i == 0) return d;
  uk_type_info_t in;
  uk_type_info(d->type, &in);
  buf->d = *d;
  buf->d.a = (const char*)d->a + i * d->a_batch_stride * in.lhs_bits / 8;
  if (!d->rhs_prepacked) buf->d.b = (const char*)d->b + i * d->b_batch_stride * in.rhs_bits / 8;
  buf->d.out = (char*)d->out + i * d->out_batch_stride * uk_out_bytes(d->out_type);
  buf->d.lhs_packed = (char*)d->lhs_packed + i * c->lhs_item_bytes;
  if (c->rhs_items > 1) buf->d.rhs_packed = (char*)d->rhs_packed + i * c->rhs_item_bytes;
  for (int32_t o = 0; o < d->num_ops; ++o) {
    buf->ops[o] = d->ops[o];
    if (d->ops[o].data) buf->ops[o].data = (const char*)d->ops[o].data + i * d->ops[o].data_batch_stride * 4;
  }
  buf->d.ops = buf->ops;
  return &buf->d;
}

static void uk_set_error(uk_dispatch_ctx_t* c, int status) {
  int expected = UK_STATUS_OK;
  if (status != UK_STATUS_OK)
    atomic_compare_exchange_strong(&c->status, &expected, status);
}

static int uk_cancelled(uk_dispatch_ctx_t* c) {
  if (c->d->cancel && *c->d->cancel) {
    uk_set_error(c, UK_STATUS_CANCELLED);
    return 1;
  }
  return atomic_load_explicit(&c->status, memory_order_relaxed) == UK_STATUS_CANCELLED;
}

/* rhs read in place uses short K blocks (a few rows); float accumulators then sum groups
 * of UK_DIRECT_GROUP blocks in a second accumulator and add each group's sum to the first,
 * so the rounding error grows like KC * UK_DIRECT_GROUP + K / (KC * UK_DIRECT_GROUP), as a
 * BLAS K block's does, rather than with the number of blocks. */
#define UK_DIRECT_GROUP 32

/* K blocks per group: at least UK_DIRECT_GROUP, and about the square root of the number of
 * blocks, so the two chains of additions (blocks within a group, groups into the result) stay
 * balanced at any K: at K = 10^6 and KC = 8, 354 blocks per group instead of 32 (3906 group
 * sums in one chain), which halves the error (tests/test_accuracy.py). */
static int64_t uk_direct_group_blocks(int64_t K1, int64_t kc1) {
  const int64_t blocks = (K1 + kc1 - 1) / kc1;
  int64_t g = UK_DIRECT_GROUP;
  while (g * g < blocks) ++g;
  return g;
}

/* One thread's scratch: the MC x NC accumulator, one output row, then (when used) the in-tile
 * rhs block, the group accumulator of rhs_direct and the in-tile lhs block; byte offsets, the
 * total rounded to cache lines. The one definition: Python sizes scratch by
 * uk_matmul_scratch_bytes. */
typedef struct {
  int64_t rhs_block, group_acc, lhs_block, total;
} uk_scratch_layout_t;

static uk_scratch_layout_t uk_scratch_layout(const uk_matmul_desc_t* d) {
  uk_scratch_layout_t l;
  l.rhs_block = d->MC * d->NC * 4 + d->NC * 4;
  l.group_acc = l.rhs_block + (d->rhs_pack_in_tile ? (d->KC * d->NC * uk_operand_bits(d, 1) + 63) / 64 * 8 : 0);
  l.lhs_block = (l.group_acc + (d->rhs_direct ? d->MC * d->NC * 4 : 0) + 63) / 64 * 64;
  l.total = (l.lhs_block + (d->lhs_pack_in_tile ? d->MC * d->KC * uk_operand_bits(d, 0) / 8 : 0) + 63) / 64 * 64;
  return l;
}

int64_t uk_matmul_scratch_bytes(const uk_matmul_desc_t* d) { return uk_scratch_layout(d).total; }

static void uk_pack_task(void* ctx_, int64_t task, int32_t thread_index) {
  (void)thread_index;
  uk_dispatch_ctx_t* c = (uk_dispatch_ctx_t*)ctx_;
  if (uk_cancelled(c)) return;
  /* tasks: items x lhs_tasks lhs packs, then rhs_items x rhs_tasks rhs packs */
  const int pack_rhs = task >= c->items * c->lhs_tasks;
  if (pack_rhs) task -= c->items * c->lhs_tasks;
  const int64_t n = pack_rhs ? c->rhs_tasks : c->lhs_tasks;
  const int64_t item = task / n, i = task % n;
  const int64_t tiles = pack_rhs ? c->N1 : c->M1;
  const int64_t t0 = tiles * i / n, t1 = tiles * (i + 1) / n;
  uk_item_desc_t buf;
  if (t1 > t0) uk_set_error(c, uk_pack_range(c, uk_item(c, item, &buf), pack_rhs, t0, t1));
}

/* One workgroup: tm x tn tiles from tile (m1, n1), its scratch laid out by uk_scratch_layout. */
typedef struct {
  int64_t m1, n1, tm, tn;
  char* scratch;
  uk_scratch_layout_t layout;
} uk_workgroup_t;

/* One K block of a workgroup whose b is read in place (rhs_direct): its rows k1.. are the K
 * steps of the column tiles' panels (a partial last column tile packed, as rhs_pack_in_tile
 * does). The first group of K blocks sums into acc, each later group into group_acc, added to
 * acc when the group ends (see UK_DIRECT_GROUP). */
static int uk_direct_block(const uk_dispatch_ctx_t* c, const uk_matmul_desc_t* d, const uk_workgroup_t* w,
                           uk_mmt4d_params_t p, int64_t k1, int64_t kc1, int64_t group) {
  void* acc = w->scratch;
  float* group_acc = (float*)(w->scratch + w->layout.group_acc);
  char* rhs_block = w->scratch + w->layout.rhs_block;
  const int64_t tile_elems = (int64_t)d->M0 * d->N0, tn = w->tn;
  const int64_t full_tiles = d->N / d->N0 - w->n1, direct = full_tiles < tn ? (full_tiles > 0 ? full_tiles : 0) : tn;
  p.flags = uk_kernel_type(d) | d->mmt4d_flags | (k1 % group ? UK_FLAG_ACCUMULATE : 0);
  p.out_buffer = k1 < group ? acc : (void*)group_acc;
  if (direct > 0) {
    p.rhs_buffer = d->b;
    p.rhs_offset = k1 * d->b_stride0 + w->n1 * d->N0;
    p.rhs_stride0 = d->N0;
    p.rhs_stride1 = d->b_stride0;
    p.N = direct;
    p.out_offset = 0;
    const int status = d->mmt4d(&p);
    if (status != UK_STATUS_OK) return status;
  }
  if (direct < tn) {
    int status = uk_pack_block(d, 1, rhs_block, 0, w->n1 + direct, tn - direct, k1, p.K);
    if (status != UK_STATUS_OK) return status;
    p.rhs_buffer = rhs_block;
    p.rhs_offset = 0;
    p.rhs_stride0 = p.K * d->N0 * d->K0;
    p.rhs_stride1 = 0;
    p.N = tn - direct;
    p.out_offset = direct * tile_elems;
    status = d->mmt4d(&p);
    if (status != UK_STATUS_OK) return status;
  }
  if (k1 >= group && ((k1 + kc1) % group == 0 || k1 + kc1 >= c->K1)) {
    float* a = (float*)acc;
    for (int64_t e = 0; e < w->tm * tn * tile_elems; ++e) a[e] += group_acc[e];
  }
  return UK_STATUS_OK;
}

/* The last K block's call of a workgroup whose kernel applies the epilogue in registers
 * (desc->epilogue_fused): the op list, the final output and where the workgroup's tiles are in
 * it (uk_api.h: UK_FLAG_EPILOGUE_FUSED). */
static void uk_fuse_epilogue(const uk_matmul_desc_t* d, const uk_workgroup_t* w, uk_mmt4d_params_t* p) {
  p->flags |= UK_FLAG_EPILOGUE_FUSED;
  p->epilogue_ops = d->ops;
  p->epilogue_num_ops = d->num_ops;
  p->final_type = d->out_type;
  p->final_out = d->out;
  p->final_stride0 = d->out_stride0;
  p->row0 = w->m1 * d->M0;
  p->col0 = w->n1 * d->N0;
  p->rows = d->M - p->row0;
  p->cols = d->N - p->col0;
}

/* The workgroup's products over all of K into its accumulator (scratch), one ukernel call per
 * K block (ACCUMULATE after the first); with desc->epilogue_fused the last one also applies the
 * epilogue and writes out. Returns a status; UK_STATUS_CANCELLED when cancelled. */
static int uk_workgroup_products(uk_dispatch_ctx_t* c, const uk_matmul_desc_t* d, const uk_workgroup_t* w) {
  const int64_t kc1 = d->KC / d->K0;
  const int64_t tile_elems = (int64_t)d->M0 * d->N0;
  void* acc = w->scratch;
  char* rhs_block = w->scratch + w->layout.rhs_block; /* used when rhs_pack_in_tile */
  char* lhs_block = w->scratch + w->layout.lhs_block; /* used when lhs_pack_in_tile */
  uk_type_info_t kti;
  uk_type_info(uk_kernel_type(d), &kti);
  const int64_t group = (kti.acc_is_float ? uk_direct_group_blocks(c->K1, kc1) : c->K1) * kc1; /* K tiles per group */

  uk_mmt4d_params_t p;
  memset(&p, 0, sizeof p);
  p.lhs_buffer = d->lhs_packed;
  p.lhs_stride0 = c->K1 * d->M0 * d->K0;
  p.rhs_buffer = d->rhs_packed;
  p.rhs_stride0 = c->K1 * d->N0 * d->K0;
  p.out_buffer = acc;
  p.out_offset = 0;
  p.out_stride0 = w->tn * tile_elems;
  p.M = w->tm;
  p.N = w->tn;
  p.M0 = d->M0;
  p.N0 = d->N0;
  p.K0 = d->K0;
  p.cpu_data = d->cpu_data;
  if (c->K1 == 0) memset(acc, 0, (size_t)(w->tm * w->tn * tile_elems * 4));
  for (int64_t k1 = 0; k1 < c->K1; k1 += kc1) {
    p.K = (k1 + kc1 <= c->K1) ? kc1 : c->K1 - k1;
    p.lhs_offset = w->m1 * p.lhs_stride0 + k1 * d->M0 * d->K0;
    if (k1 > 0 && uk_cancelled(c)) return UK_STATUS_CANCELLED;
    if (d->rhs_direct) {
      const int status = uk_direct_block(c, d, w, p, k1, kc1, group);
      if (status != UK_STATUS_OK) return status;
      continue;
    }
    if (d->lhs_pack_in_tile) { /* one workgroup column: this lhs block is used here only */
      const int status = uk_pack_block(d, 0, lhs_block, 0, w->m1, w->tm, k1, p.K);
      if (status != UK_STATUS_OK) return status;
      p.lhs_buffer = lhs_block;
      p.lhs_stride0 = p.K * d->M0 * d->K0;
      p.lhs_offset = 0;
    }
    if (d->rhs_pack_in_tile) {
      const int status = uk_pack_block(d, 1, rhs_block, 0, w->n1, w->tn, k1, p.K);
      if (status != UK_STATUS_OK) return status;
      p.rhs_buffer = rhs_block;
      p.rhs_stride0 = p.K * d->N0 * d->K0;
      p.rhs_offset = 0;
    } else {
      p.rhs_offset = w->n1 * p.rhs_stride0 + k1 * d->N0 * d->K0;
    }
    /* ACCUMULATE after the first K block: float tiles add each block's sum from zero to
     * the accumulator (uk_mmt4d_internal.h), so the error grows like BLAS's */
    p.flags = uk_kernel_type(d) | d->mmt4d_flags | (k1 > 0 ? UK_FLAG_ACCUMULATE : 0);
    if (d->rhs_group_scales) { /* K blocks start on group boundaries (KC % group_size == 0) */
      const int64_t groups = (d->K + d->group_size - 1) / d->group_size;
      p.flags |= UK_FLAG_GROUP_SCALES;
      p.group_scales = d->rhs_group_scales;
      p.group_scales_stride0 = groups * d->N0;
      p.group_scales_offset = w->n1 * p.group_scales_stride0 + (k1 * d->K0 / d->group_size) * d->N0;
      p.group_k = d->group_size / d->K0;
    }
    if (d->epilogue_fused && k1 + kc1 >= c->K1) uk_fuse_epilogue(d, w, &p);
    const int status = d->mmt4d(&p);
    if (status != UK_STATUS_OK) return status;
  }
  return UK_STATUS_OK;
}

/* Write-back of a finished workgroup: row by row, gathered from the tiled accumulator, the
 * epilogue applied, stored into out. */
static void uk_workgroup_write_back(const uk_matmul_desc_t* d, const uk_workgroup_t* w) {
  const int64_t tile_elems = (int64_t)d->M0 * d->N0, tn = w->tn;
  const char* acc = w->scratch;
  char* row_buf = w->scratch + d->MC * d->NC * 4;
  const int64_t row0 = w->m1 * d->M0, col0 = w->n1 * d->N0;
  int64_t rows = w->tm * d->M0, cols = tn * d->N0;
  if (row0 + rows > d->M) rows = d->M - row0;
  if (col0 + cols > d->N) cols = d->N - col0;
  const int64_t row_bytes = d->N0 * 4;
  const int64_t out_size = uk_out_bytes(d->out_type);
  if (d->num_ops == 0 && (d->out_type == UK_OUT_F32 || d->out_type == UK_OUT_S32)) {
    /* nothing to apply and the accumulator's own type: tile rows straight into out (one copy
     * instead of gather + store; small products spend a tenth of their time here) */
    for (int64_t i = 0; i < rows; ++i) {
      const char* src = acc + ((i / d->M0) * tn * tile_elems + (i % d->M0) * d->N0) * 4;
      char* dst = (char*)d->out + ((row0 + i) * d->out_stride0 + col0) * 4;
      for (int64_t j = 0; j < tn; ++j) {
        const int64_t n = cols - j * d->N0 < d->N0 ? cols - j * d->N0 : d->N0;
        if (n == 16) /* the common row of a 16-wide tile: an inlined 64-byte copy, not a libc call */
          memcpy(dst + j * row_bytes, src + j * tile_elems * 4, 64);
        else
          memcpy(dst + j * row_bytes, src + j * tile_elems * 4, (size_t)(n * 4));
      }
    }
    return;
  }
  for (int64_t i = 0; i < rows; ++i) {
    const char* src = acc + ((i / d->M0) * tn * tile_elems + (i % d->M0) * d->N0) * 4;
    for (int64_t j = 0; j < tn; ++j) {
      if (row_bytes == 64)
        memcpy(row_buf + j * 64, src + j * tile_elems * 4, 64);
      else
        memcpy(row_buf + j * row_bytes, src + j * tile_elems * 4, (size_t)row_bytes);
    }
    uk_epilogue_apply(uk_epilogue_type(d), d->ops, d->num_ops, row_buf, cols, row0 + i, col0, d->cpu_data);
    uk_epilogue_store(d->out_type, row_buf, (char*)d->out + ((row0 + i) * d->out_stride0 + col0) * out_size,
                      cols);
  }
}

/* One workgroup task: its products over K, then its write-back. */
static void uk_tile_task(void* ctx_, int64_t task, int32_t thread_index) {
  uk_dispatch_ctx_t* c = (uk_dispatch_ctx_t*)ctx_;
  uk_item_desc_t buf;
  const uk_matmul_desc_t* d = uk_item(c, task / (c->nmb * c->nnb), &buf);
  task %= c->nmb * c->nnb;
  const int64_t mb = task % c->nmb, nb = task / c->nmb;
  const int64_t mc1 = d->MC / d->M0, nc1 = d->NC / d->N0;
  uk_workgroup_t w;
  w.m1 = mb * mc1;
  w.n1 = nb * nc1;
  w.tm = (w.m1 + mc1 <= c->M1) ? mc1 : c->M1 - w.m1; /* tiles in this workgroup */
  w.tn = (w.n1 + nc1 <= c->N1) ? nc1 : c->N1 - w.n1;
  w.scratch = (char*)d->scratch + (int64_t)thread_index * d->scratch_stride;
  w.layout = uk_scratch_layout(d);
  if (uk_cancelled(c)) return;
  const int status = uk_workgroup_products(c, d, &w);
  if (status == UK_STATUS_CANCELLED) return;
  if (status != UK_STATUS_OK) {
    uk_set_error(c, status);
    return;
  }
  if (!d->epilogue_fused || c->K1 == 0) uk_workgroup_write_back(d, &w); /* K = 0: no kernel call ran */
}

static int uk_matmul_check(const uk_matmul_desc_t* d, int need_scratch) {
  uk_type_info_t ti;
  if (!uk_type_info(d->type, &ti)) return UK_STATUS_UNSUPPORTED_TYPE;
  /* a kernel type other than the inputs': 16-bit floats widened while packed (never with a
   * prepacked rhs: it is in the kernel's type already), or f32 narrowed to bf16 while packed
   * (precision="bf16"; with a prepacked rhs, a bf16 weight's: only the lhs is narrowed) */
  if (d->kernel_type && d->kernel_type != d->type &&
      !((d->kernel_type == UK_TYPE_F32F32F32 && (d->type == UK_TYPE_F16F16F32 || d->type == UK_TYPE_BF16BF16F32) &&
         !d->rhs_prepacked) ||
        (d->kernel_type == UK_TYPE_BF16BF16F32 && d->type == UK_TYPE_F32F32F32)))
    return UK_STATUS_BAD_ARGUMENT;
  if (d->M < 0 || d->N < 0 || d->K < 0 || d->M0 <= 0 || d->N0 <= 0 || d->K0 <= 0 ||
      d->MC < d->M0 || d->NC < d->N0 || d->KC < d->K0 || d->MC % d->M0 || d->NC % d->N0 ||
      d->KC % d->K0 || !d->mmt4d || (d->rhs_prepacked && d->rhs_pack_in_tile) ||
      (need_scratch && d->scratch_stride < uk_matmul_scratch_bytes(d)))
    return UK_STATUS_BAD_ARGUMENT;
  if (d->lhs_pack_in_tile && d->rhs_direct) return UK_STATUS_BAD_ARGUMENT;
  if (d->epilogue_fused && (d->rhs_direct || d->rhs_group_scales)) return UK_STATUS_BAD_ARGUMENT;
  if (d->rhs_direct && (!d->rhs_pack_in_tile || d->K0 != 1 || d->b_stride1 != 1 ||
                        (d->kernel_type && d->kernel_type != d->type)))
    return UK_STATUS_BAD_ARGUMENT;
  if (d->rhs_group_scales && (!d->rhs_prepacked || ti.acc_is_float || d->group_size <= 0 ||
                              d->group_size % d->K0 || d->KC % d->group_size))
    return UK_STATUS_BAD_ARGUMENT;
  if (d->batch < 0 || (d->batch > 1 && (d->num_ops > UK_BATCH_MAX_OPS || (d->rhs_prepacked && d->b_batch_stride))))
    return UK_STATUS_BAD_ARGUMENT;
  return uk_epilogue_check(uk_epilogue_type(d), d->ops, d->num_ops, d->out_type);
}

static void uk_ctx_init(uk_dispatch_ctx_t* c, const uk_matmul_desc_t* d, int64_t tasks_hint) {
  memset(c, 0, sizeof *c);
  c->d = d;
  c->M1 = uk_ceil_div(d->M, d->M0);
  c->N1 = uk_ceil_div(d->N, d->N0);
  c->K1 = uk_ceil_div(d->K, d->K0);
  c->lhs_tasks = c->M1 < tasks_hint ? c->M1 : tasks_hint;
  c->rhs_tasks = c->N1 < tasks_hint ? c->N1 : tasks_hint;
  c->nmb = uk_ceil_div(c->M1, d->MC / d->M0);
  c->nnb = uk_ceil_div(c->N1, d->NC / d->N0);
  c->items = d->batch > 1 ? d->batch : 1;
  c->rhs_items = d->b_batch_stride ? c->items : 1;
  uk_type_info_t k;
  uk_type_info(uk_kernel_type(d), &k);
  c->lhs_item_bytes = c->M1 * c->K1 * d->M0 * d->K0 * k.lhs_bits / 8;
  c->rhs_item_bytes = (c->N1 * c->K1 * d->N0 * d->K0 * k.rhs_bits + 7) / 8;
  atomic_init(&c->status, UK_STATUS_OK);
  atomic_init(&c->packs_done, 0);
}

int uk_matmul_pack_rhs(const uk_matmul_desc_t* d, uk_pool_t* pool) {
  int status = uk_matmul_check(d, 0);
  if (status) return status;
  uk_dispatch_ctx_t c;
  uk_ctx_init(&c, d, d->pack_tasks_hint > 0 ? d->pack_tasks_hint : 1);
  c.lhs_tasks = 0;
  if (c.K1 > 0) uk_pool_run(pool, uk_pack_task, &c, c.rhs_tasks, d->max_threads);
  return atomic_load(&c.status);
}

/* One pool job for both phases: tasks [0, P) pack, tasks [P, P + tiles) compute.
 * Tasks are claimed in increasing order, so every pack task is claimed (and is
 * running) before any tile task; a tile task waits for the pack count to reach
 * P. This saves a pool round trip (join + wake) per call, which dominates small
 * products on VMs. */
static void uk_pack_then_tile_task(void* ctx_, int64_t task, int32_t thread_index) {
  uk_dispatch_ctx_t* c = (uk_dispatch_ctx_t*)ctx_;
  const int64_t P = c->items * c->lhs_tasks + c->rhs_items * c->rhs_tasks;
  if (task < P) {
    uk_pack_task(ctx_, task, thread_index);
    atomic_fetch_add_explicit(&c->packs_done, 1, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&c->packs_done, memory_order_acquire) < P) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  if (atomic_load(&c->status) != UK_STATUS_OK) return;
  uk_tile_task(ctx_, task - P, thread_index);
}

int uk_matmul_run_replay(const uk_matmul_desc_t* t, const void* a, const void* b, void* out, void* work,
                         uk_pool_t* pool, const volatile int32_t* cancel) {
  if (!t || !work) return UK_STATUS_BAD_ARGUMENT;
  uk_matmul_desc_t d = *t;
  char* w = (char*)work;
  d.a = a;
  d.b = b;
  d.out = out;
  d.lhs_packed = t->lhs_pack_in_tile ? NULL : w + (intptr_t)t->lhs_packed;
  d.rhs_packed = t->rhs_prepacked ? t->rhs_packed : t->rhs_pack_in_tile ? NULL : w + (intptr_t)t->rhs_packed;
  d.scratch = w + (intptr_t)t->scratch;
  d.cancel = cancel;
  return uk_matmul_run(&d, pool);
}

int uk_matmul_run(const uk_matmul_desc_t* d, uk_pool_t* pool) {
  int status = uk_matmul_check(d, 1);
  if (status) return status;
  if (d->M == 0 || d->N == 0) return UK_STATUS_OK;
  uk_dispatch_ctx_t c;
  uk_ctx_init(&c, d, d->pack_tasks_hint > 0 ? d->pack_tasks_hint : 1);
  if (d->rhs_prepacked || d->rhs_pack_in_tile) c.rhs_tasks = 0;
  if (d->lhs_pack_in_tile) c.lhs_tasks = 0;
  if (c.K1 == 0) c.lhs_tasks = c.rhs_tasks = 0;
  uk_pool_run(pool, uk_pack_then_tile_task, &c,
              c.items * (c.lhs_tasks + c.nmb * c.nnb) + c.rhs_items * c.rhs_tasks, d->max_threads);
  return atomic_load(&c.status);
}
