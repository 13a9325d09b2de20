/* uk_qlinear_run: a weight-quantized Linear's call in one C call (decode rows and prompts).
 *
 *   1. x quantized per row to int8 by uk_quantize_rows_s8 (the same values and scales as the
 *      general path), into the work area, in the form the chosen kernel reads (UK_QX_*), with
 *      the per-group sums of x that the int4 offset form needs;
 *   2. the 64-column panels computed by a decode kernel (csrc/uk_qlinear_internal.h), on the
 *      calling thread or, when the weight bytes times the 8-row blocks reach parallel_min_bytes
 *      (this is the only place that rule lives), split over the pool in contiguous panel
 *      ranges (each thread streams its own share of the weight once, in order) or, with fewer
 *      panels than threads, row ranges;
 *   3. each range's rows taken through the f32 op list (uk_epilogue_apply) while in cache.
 * No allocation (the caller's work area), no globals. */
#include <string.h>

#include "uk_qlinear_internal.h"

static int64_t uk_align64(int64_t n) { return (n + 63) / 64 * 64; }

static int64_t uk_qlinear_kp(const uk_qlinear_desc_t* d) {
  const int64_t step = d->bits == 8 ? 4 : 8;
  return (d->K + step - 1) / step * step;
}

static int64_t uk_qlinear_groups(const uk_qlinear_desc_t* d) {
  return d->group_size > 0 ? d->K / d->group_size : 1;
}

static int64_t uk_qlinear_chunk_bytes(const uk_qlinear_desc_t* d) {
  const int64_t gk = d->group_size > 0 ? d->group_size : uk_qlinear_kp(d);
  return gk / (d->bits == 8 ? 4 : 8) * 256 + 256 + (d->bits == 8 ? 256 : 0);
}

/* Panels of the weight: gated units hold a gate and an up panel per 64 output columns. */
static int64_t uk_qlinear_panels(const uk_qlinear_desc_t* d) {
  return (d->N + UK_QLINEAR_PANEL - 1) / UK_QLINEAR_PANEL * (d->gated ? 2 : 1);
}

int64_t uk_qlinear_weight_bytes(const uk_qlinear_desc_t* d) {
  if (!d || d->N < 0 || d->K < 0 || (d->bits != 8 && d->bits != 4)) return 0;
  const int64_t panels = uk_qlinear_panels(d);
  return panels * uk_qlinear_groups(d) * uk_qlinear_chunk_bytes(d);
}

/* The work area: sx [M] f32 | xsum [M][G] int32 | xq [M][Kp] bytes, each 64-byte aligned. */
int64_t uk_qlinear_work_bytes(const uk_qlinear_desc_t* d, int64_t M) {
  if (!d || M < 0) return 0;
  return uk_align64(M * 4) + uk_align64(M * uk_qlinear_groups(d) * 4) + uk_align64(M * uk_qlinear_kp(d));
}

typedef struct {
  uk_qgemv_fn_t fn;
  int32_t x_form;
  const char* name;
} uk_qgemv_choice_t;

static uk_qgemv_choice_t uk_qgemv_select(const uk_qlinear_desc_t* d) {
  const uint64_t cpu = d->cpu_data ? d->cpu_data[0] : 0;
  (void)cpu;
#if defined(__x86_64__) || defined(_M_X64)
  const uint64_t vnni = UK_CPU_X86_AVX512_BASE | UK_CPU_X86_AVX512_VNNI;
  if ((cpu & vnni) == vnni)
    return (uk_qgemv_choice_t){uk_qgemv_x86_64_avx512_vnni, d->bits == 8 ? UK_QX_U8_OFFSET : UK_QX_S8,
                               d->bits == 8 ? "uk_qgemv_s8_x86_64_avx512_vnni (u8(x+128) . s8 vpdpbusd)"
                                            : "uk_qgemv_s4_x86_64_avx512_vnni (u8(w+8) . s8 vpdpbusd)"};
  if (cpu & UK_CPU_X86_AVX2_FMA)
    return (uk_qgemv_choice_t){uk_qgemv_x86_64_avx2_fma, UK_QX_S8,
                               d->bits == 8 ? "uk_qgemv_s8_x86_64_avx2_fma (|w| . sign(x, w) vpmaddubsw)"
                                            : "uk_qgemv_s4_x86_64_avx2_fma (u8(w+8) . s8 vpmaddubsw)"};
#elif defined(__aarch64__)
  if (cpu & UK_CPU_ARM_DOTPROD)
    return (uk_qgemv_choice_t){uk_qgemv_arm_64_dotprod, UK_QX_S8,
                               d->bits == 8 ? "uk_qgemv_s8_arm_64_dotprod (s8 . s8 sdot)"
                                            : "uk_qgemv_s4_arm_64_dotprod (s8(w+8) . s8 sdot)"};
#endif
  return (uk_qgemv_choice_t){uk_qgemv_generic, UK_QX_S8, d->bits == 8 ? "uk_qgemv_s8_generic" : "uk_qgemv_s4_generic"};
}

const char* uk_qlinear_kernel_name(const uk_qlinear_desc_t* d) { return d ? uk_qgemv_select(d).name : "none"; }

static int uk_qlinear_check(const uk_qlinear_desc_t* d) {
  if (!d || d->N < 0 || d->K < 0 || (d->bits != 8 && d->bits != 4) || d->group_size < 0 || d->num_ops < 0 ||
      (d->num_ops > 0 && !d->ops) || (d->N > 0 && (!d->weight || ((uintptr_t)d->weight & 63))))
    return UK_STATUS_BAD_ARGUMENT;
  if (d->group_size > 0 && (d->group_size % 8 || d->K % d->group_size)) return UK_STATUS_BAD_ARGUMENT;
  if (d->gated != 0 && d->gated != 1) return UK_STATUS_BAD_ARGUMENT;
  return uk_epilogue_check(UK_TYPE_F32F32F32, d->ops, d->num_ops, UK_OUT_F32);
}

typedef struct {
  const uk_qlinear_desc_t* d;
  uk_qgemv_fn_t fn;
  uk_qgemv_args_t args;
  int64_t panels, panel_tasks, row_tasks;
} uk_qlinear_ctx_t;

/* A gated unit's panels [p0, p1) (output panels: each a gate and an up panel of the weight) for
 * a's rows: each pair computed into a stack tile of up to 16 rows x 128 columns, then
 * silu(gate) * up written once into out. m0: the first row's index in the call (for the ops). */
#define UK_QLINEAR_GATED_ROWS 16
static void uk_qlinear_gated(const uk_qlinear_ctx_t* c, const uk_qgemv_args_t* a, int64_t p0, int64_t p1,
                             int64_t m0) {
  const uk_qlinear_desc_t* d = c->d;
  float pair[UK_QLINEAR_GATED_ROWS * 2 * UK_QLINEAR_PANEL];
  uk_epilogue_op_t silu;
  memset(&silu, 0, sizeof silu);
  silu.kind = UK_EPI_SILU;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t col0 = p * UK_QLINEAR_PANEL, cols = d->N - col0 < UK_QLINEAR_PANEL ? d->N - col0 : UK_QLINEAR_PANEL;
    for (int64_t r0 = 0; r0 < a->M; r0 += UK_QLINEAR_GATED_ROWS) {
      uk_qgemv_args_t b = *a;
      b.M = a->M - r0 < UK_QLINEAR_GATED_ROWS ? a->M - r0 : UK_QLINEAR_GATED_ROWS;
      b.xq += r0 * b.Kp;
      b.xsum += r0 * b.G;
      b.sx += r0;
      b.N = (2 * p + 2) * UK_QLINEAR_PANEL; /* every column of the pair is the unit's (padding: zero weights) */
      b.out = pair;
      b.out_stride0 = 2 * UK_QLINEAR_PANEL;
      b.col0 = 2 * p * UK_QLINEAR_PANEL;
      c->fn(&b, 2 * p, 2 * p + 2);
      for (int64_t i = 0; i < b.M; ++i) {
        float* g = pair + i * 2 * UK_QLINEAR_PANEL;
        const float* u = g + UK_QLINEAR_PANEL;
        uk_epilogue_apply(UK_TYPE_F32F32F32, &silu, 1, g, cols, m0 + r0 + i, col0, d->cpu_data);
        float* o = a->out + (r0 + i) * a->out_stride0 + col0;
        for (int64_t j = 0; j < cols; ++j) o[j] = g[j] * u[j];
      }
    }
  }
}

/* Task t: panels [p0, p1) of rows [m0, m1) (row chunks in multiples of 8: whole kernel blocks). */
static void uk_qlinear_task(void* ctx_, int64_t task, int32_t thread_index) {
  (void)thread_index;
  const uk_qlinear_ctx_t* c = (const uk_qlinear_ctx_t*)ctx_;
  const int64_t pt = task % c->panel_tasks, rt = task / c->panel_tasks;
  const int64_t p0 = c->panels * pt / c->panel_tasks, p1 = c->panels * (pt + 1) / c->panel_tasks;
  const int64_t blocks = (c->args.M + 7) / 8;
  const int64_t m0 = 8 * (blocks * rt / c->row_tasks);
  const int64_t m1 = 8 * (blocks * (rt + 1) / c->row_tasks) < c->args.M ? 8 * (blocks * (rt + 1) / c->row_tasks)
                                                                          : c->args.M;
  if (p1 <= p0 || m1 <= m0) return;
  uk_qgemv_args_t a = c->args;
  a.M = m1 - m0;
  a.xq += m0 * a.Kp;
  a.xsum += m0 * a.G;
  a.sx += m0;
  a.out += m0 * a.out_stride0;
  const uk_qlinear_desc_t* d = c->d;
  if (d->gated)
    uk_qlinear_gated(c, &a, p0, p1, m0);
  else
    c->fn(&a, p0, p1);
  if (d->num_ops <= 0) return;
  const int64_t col0 = p0 * UK_QLINEAR_PANEL, col1 = p1 * UK_QLINEAR_PANEL < d->N ? p1 * UK_QLINEAR_PANEL : d->N;
  for (int64_t m = 0; m < a.M; ++m)
    uk_epilogue_apply(UK_TYPE_F32F32F32, d->ops, d->num_ops, a.out + m * a.out_stride0 + col0, col1 - col0, m0 + m,
                      col0, d->cpu_data);
}

/* The quantized rows in the kernel's form: zeros past K, the group sums (int4), x + 128 (UK_QX_U8_OFFSET). */
typedef struct {
  uint8_t* xq;
  int32_t* xsum;
  int64_t M, K, Kp, G, gk, rows_per_task;
  int32_t bits, x_form;
} uk_qprep_ctx_t;

static void uk_qprep_task(void* ctx_, int64_t task, int32_t thread_index) {
  (void)thread_index;
  const uk_qprep_ctx_t* c = (const uk_qprep_ctx_t*)ctx_;
  const int64_t r0 = task * c->rows_per_task, r1 = r0 + c->rows_per_task < c->M ? r0 + c->rows_per_task : c->M;
  for (int64_t m = r0; m < r1; ++m) {
    uint8_t* row = c->xq + m * c->Kp;
    if (c->Kp > c->K) memset(row + c->K, 0, (size_t)(c->Kp - c->K));
    if (c->bits == 4) {
      for (int64_t g = 0; g < c->G; ++g) {
        int32_t s = 0;
        const int8_t* xr = (const int8_t*)row + g * c->gk;
        for (int64_t k = 0; k < c->gk; ++k) s += xr[k];
        c->xsum[m * c->G + g] = s;
      }
    }
    if (c->x_form == UK_QX_U8_OFFSET)
      for (int64_t k = 0; k < c->Kp; ++k) row[k] ^= 0x80; /* s8 -> s8 + 128 as u8 */
  }
}

#define UK_QLINEAR_PREP_TASK_BYTES (256 * 1024) /* rows of x per preparation task, at least */

int uk_qlinear_run(const uk_qlinear_desc_t* d, const float* x, int64_t M, int64_t x_stride0, float* out,
                   int64_t out_stride0, void* work, uk_pool_t* pool) {
  int status = uk_qlinear_check(d);
  if (status != UK_STATUS_OK) return status;
  if (M < 0 || (M > 0 && d->N > 0 && (!out || !work || out_stride0 < d->N)) ||
      (M > 0 && d->K > 0 && (!x || x_stride0 < d->K)) || ((uintptr_t)work & 63))
    return UK_STATUS_BAD_ARGUMENT;
  if (M == 0 || d->N == 0) return UK_STATUS_OK;
  const int64_t Kp = uk_qlinear_kp(d), G = uk_qlinear_groups(d);
  const int64_t gk = d->group_size > 0 ? d->group_size : Kp;
  char* w = (char*)work;
  float* sx = (float*)w;
  int32_t* xsum = (int32_t*)(w + uk_align64(M * 4));
  uint8_t* xq = (uint8_t*)(w + uk_align64(M * 4) + uk_align64(M * G * 4));
  const uk_qgemv_choice_t choice = uk_qgemv_select(d);

  /* 1. x -> int8 rows (x of 0 past K), the group sums, the kernel's form */
  const int pooled = pool && d->max_threads > 1;
  if (d->K > 0) {
    status = uk_quantize_rows_s8(x, M, d->K, x_stride0, (int8_t*)xq, Kp, sx, d->cpu_data, pooled ? pool : NULL,
                                 pooled ? d->max_threads : 1);
    if (status != UK_STATUS_OK) return status;
  } else {
    for (int64_t m = 0; m < M; ++m) sx[m] = 0.0f;
  }
  uk_qprep_ctx_t prep = {xq, xsum, M, d->K, Kp, G, gk, M, d->bits, choice.x_form};
  const int64_t prep_tasks = pooled ? M * Kp / UK_QLINEAR_PREP_TASK_BYTES : 1;
  if (prep_tasks > 1) {
    const int64_t n = prep_tasks < 4 * (int64_t)d->max_threads ? prep_tasks : 4 * (int64_t)d->max_threads;
    prep.rows_per_task = (M + n - 1) / n;
    uk_pool_run(pool, uk_qprep_task, &prep, (M + prep.rows_per_task - 1) / prep.rows_per_task, d->max_threads);
  } else {
    uk_qprep_task(&prep, 0, 0);
  }

  /* 2 and 3. the panels, on this thread or split over the pool */
  uk_qlinear_ctx_t c;
  c.d = d;
  c.fn = choice.fn;
  c.args.M = M;
  c.args.N = d->N;
  c.args.Kp = Kp;
  c.args.gk = gk;
  c.args.G = G;
  c.args.steps = gk / (d->bits == 8 ? 4 : 8);
  c.args.chunk_bytes = uk_qlinear_chunk_bytes(d);
  c.args.bits = d->bits;
  c.args.grouped = d->group_size > 0;
  c.args.w = (const uint8_t*)d->weight;
  c.args.xq = xq;
  c.args.xsum = xsum;
  c.args.sx = sx;
  c.args.out = out;
  c.args.out_stride0 = out_stride0;
  c.args.col0 = 0;
  c.panels = (d->N + UK_QLINEAR_PANEL - 1) / UK_QLINEAR_PANEL; /* output panels (gated: pairs of the weight's) */
  /* the weight bytes streamed by all row blocks: splitting pays from parallel_min_bytes */
  c.panel_tasks = c.row_tasks = 1;
  if (pooled && uk_qlinear_weight_bytes(d) * ((M + 7) / 8) >= d->parallel_min_bytes) {
    const int64_t T = d->max_threads;
    if (c.panels >= T || M <= 8) { /* panels apart: each thread streams its own share of the weight */
      c.panel_tasks = c.panels < T ? c.panels : T;
    } else {                       /* few panels, many rows: rows apart (each thread reads it all) */
      const int64_t blocks = (M + 7) / 8;
      c.row_tasks = blocks < T ? blocks : T;
    }
  }
  const int64_t tasks = c.panel_tasks * c.row_tasks;
  if (tasks <= 1)
    uk_qlinear_task(&c, 0, 0);
  else
    uk_pool_run(pool, uk_qlinear_task, &c, tasks, d->max_threads);
  return UK_STATUS_OK;
}

/* ---- the portable kernel ----------------------------------------------------------------- */

/* Weight (n, k) of tile u in a chunk's weights (k counted from the chunk's first K). */
static inline int32_t uk_qweight(const uint8_t* chunk, int32_t bits, int64_t u, int64_t n, int64_t k) {
  if (bits == 8) return (int8_t)chunk[(k / 4) * 256 + u * 64 + 4 * n + (k % 4)];
  const uint8_t b = chunk[(k / 8) * 256 + u * 64 + 4 * n + (k % 4)];
  return (int32_t)((k % 8) < 4 ? (b & 15) : (b >> 4)) - 8;
}

void uk_qgemv_generic(const uk_qgemv_args_t* a, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t u = 0; u < UK_QLINEAR_TILES; ++u) {
      const int64_t n0 = p * UK_QLINEAR_PANEL + u * UK_QLINEAR_N0;
      const int64_t nn = a->N - n0 < UK_QLINEAR_N0 ? a->N - n0 : UK_QLINEAR_N0;
      if (nn <= 0) break;
      for (int64_t m = 0; m < a->M; ++m) {
        const int8_t* xr = (const int8_t*)a->xq + m * a->Kp;
        float f[UK_QLINEAR_N0];
        int32_t dot[UK_QLINEAR_N0];
        for (int64_t j = 0; j < UK_QLINEAR_N0; ++j) f[j] = 0.0f;
        for (int64_t g = 0; g < a->G; ++g) {
          const uint8_t* chunk = a->w + (p * a->G + g) * a->chunk_bytes;
          for (int64_t j = 0; j < UK_QLINEAR_N0; ++j) dot[j] = 0;
          for (int64_t k = 0; k < a->gk; ++k) {
            const int32_t xv = xr[g * a->gk + k];
            for (int64_t j = 0; j < UK_QLINEAR_N0; ++j) /* wrapping int32, as the SIMD kernels */
              dot[j] = (int32_t)((uint32_t)dot[j] + (uint32_t)(uk_qweight(chunk, a->bits, u, j, k) * xv));
          }
          const float* s = uk_qchunk_scales(a, chunk) + u * UK_QLINEAR_N0;
          for (int64_t j = 0; j < UK_QLINEAR_N0; ++j)
            f[j] = a->grouped ? f[j] + (float)dot[j] * s[j] : (float)dot[j] * s[j];
        }
        float* o = a->out + m * a->out_stride0 + (n0 - a->col0);
        for (int64_t j = 0; j < nn; ++j) o[j] = f[j] * a->sx[m];
      }
    }
  }
}
