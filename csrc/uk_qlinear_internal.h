/* Internal: the decode kernels behind uk_qlinear_run (csrc/uk_qlinear.c).
 *
 * A decode kernel computes column tiles [t0, t1) of out[M][N] = dequantize(x_q . W_q) for a
 * few rows (M <= UK_QLINEAR_MAX_M) over the streaming weight layout (uk_runtime.h:
 * uk_qlinear_desc_t), the exact integer dot products of each group in int32 registers, and
 * writes f32 results. Float arithmetic per element, in this order (so results equal the
 * general dispatch's bit for bit, csrc/uk_mmt4d.c and the dispatch's epilogue):
 *   per channel: f = (float)dot * scale[n];  f = f * sx[m]
 *   per group:   f = 0; for each group g: f = fma((float)dot_g, scale[g][n], f)   (SIMD levels)
 *                                         f = f + (float)dot_g * scale[g][n]     (portable C)
 *                f = f * sx[m]
 * No allocation, no globals; called from many threads at once on disjoint tiles. */
#ifndef UK_QLINEAR_INTERNAL_H
#define UK_QLINEAR_INTERNAL_H

#include "uk_runtime.h"

/* How x reaches a kernel (the driver prepares it in the work area, one row per Kp bytes):
 * UK_QX_S8: the symmetric int8 values (never -128), zero past K;
 * UK_QX_U8_OFFSET: x + 128 as uint8 (for vpdpbusd's unsigned operand against s8 weights; the
 *   kernel subtracts the packed 128 * sum(w) of each group), 128 (= x of 0) past K. */
enum { UK_QX_S8 = 0, UK_QX_U8_OFFSET = 1 };

typedef struct uk_qgemv_args_t {
  int64_t M, N, Kp;       /* rows, columns, K padded to the layout's K step (4: int8, 8: int4) */
  int64_t gk, G;          /* K elements per group (Kp per channel) and groups per column */
  int32_t bits, grouped;  /* 8 or 4; 1: per-group scales, 0: per channel */
  const uint8_t* w;       /* the layout of uk_qlinear_desc_t.weight */
  const float* scales;    /* [N1][G][16] (G = 1 per channel) */
  const int32_t* wsums;   /* bits 8: [N1][G][16], 128 * sum of each group's weights */
  const uint8_t* xq;      /* M rows of Kp bytes (UK_QX_*) */
  const int32_t* xsum;    /* bits 4: [M][G], the sum of each group's x (int4 kernels: w + 8 form) */
  const float* sx;        /* [M] the rows' scales */
  float* out;
  int64_t out_stride0;
} uk_qgemv_args_t;

/* Computes column tiles [t0, t1) (16 columns each; the last may be partial) for every row. */
typedef void (*uk_qgemv_fn_t)(const uk_qgemv_args_t* a, int64_t t0, int64_t t1);

#define UK_QLINEAR_N0 16

void uk_qgemv_generic(const uk_qgemv_args_t* a, int64_t t0, int64_t t1);
#if defined(__x86_64__) || defined(_M_X64)
void uk_qgemv_x86_64_avx2_fma(const uk_qgemv_args_t* a, int64_t t0, int64_t t1);
void uk_qgemv_x86_64_avx512_vnni(const uk_qgemv_args_t* a, int64_t t0, int64_t t1);
#endif

/* Bytes of one column tile's weights per K element... per layout K step: int8 16x4 = 64 bytes per
 * 4 K; int4 16x8 nibbles = 64 bytes per 8 K. */
static inline int64_t uk_qlinear_tile_bytes(int32_t bits, int64_t Kp) { return bits == 8 ? Kp * 16 : Kp * 8; }

#endif
