/* Internal: the decode kernels behind uk_qlinear_run (csrc/uk_qlinear.c).
 *
 * A decode kernel computes panels [p0, p1) (64 columns each, the layout of uk_runtime.h:
 * uk_qlinear_desc_t) of out[M][N] = dequantize(x_q . W_q) for any number of rows (blocked inside),
 * the exact integer dot products of each group in int32 registers, and writes f32 results.
 * Float arithmetic per element, in this order (so results equal the general dispatch's bit for
 * bit: csrc/uk_mmt4d.c's group-scaled tiles and the dispatch's epilogue):
 *   per channel: f = (float)dot * scale[n];  f = f * sx[m]
 *   per group:   f = 0; for each group g: f = fma((float)dot_g, scale[g][n], f)   (SIMD levels)
 *                                         f = f + (float)dot_g * scale[g][n]     (portable C)
 *                f = f * sx[m]
 * No allocation, no globals; called from many threads at once on disjoint panels. */
#ifndef UK_QLINEAR_INTERNAL_H
#define UK_QLINEAR_INTERNAL_H

#include "uk_runtime.h"

/* How x reaches a kernel (the driver prepares it in the work area, one row per Kp bytes):
 * UK_QX_S8: the symmetric int8 values (never -128), zero past K;
 * UK_QX_U8_OFFSET: x + 128 as uint8 (for vpdpbusd's unsigned operand against s8 weights; the
 *   kernel subtracts the chunk's 128 * sum(w)), 128 (= x of 0) past K. */
enum { UK_QX_S8 = 0, UK_QX_U8_OFFSET = 1 };

#define UK_QLINEAR_TILES 4    /* column tiles per panel */
#define UK_QLINEAR_N0 16      /* columns per tile */
#define UK_QLINEAR_PANEL 64   /* columns per panel */

typedef struct uk_qgemv_args_t {
  int64_t M, N, Kp;        /* rows, columns, K padded to the layout's K step (4: int8, 8: int4) */
  int64_t gk, G;           /* K elements per group (Kp per channel) and groups per column */
  int64_t steps;           /* 256-byte weight blocks per chunk (gk / step) */
  int64_t chunk_bytes;     /* one group's chunk: steps * 256 + 256 (scales) [+ 256 (int8 sums)] */
  int32_t bits, grouped;   /* 8 or 4; 1: per-group scales, 0: per channel */
  const uint8_t* w;        /* the layout: panel p's chunk g at w + (p * G + g) * chunk_bytes */
  const uint8_t* xq;       /* M rows of Kp bytes (UK_QX_*) */
  const int32_t* xsum;     /* bits 4: [M][G], the sum of each group's x (the w + 8 form) */
  const float* sx;         /* [M] the rows' scales */
  float* out;              /* column n of row m at out[m * out_stride0 + n - col0] */
  int64_t out_stride0, col0;
} uk_qgemv_args_t;

/* Computes panels [p0, p1) for every row. */
typedef void (*uk_qgemv_fn_t)(const uk_qgemv_args_t* a, int64_t p0, int64_t p1);

void uk_qgemv_generic(const uk_qgemv_args_t* a, int64_t p0, int64_t p1);
#if defined(__x86_64__) || defined(_M_X64)
void uk_qgemv_x86_64_avx2_fma(const uk_qgemv_args_t* a, int64_t p0, int64_t p1);
void uk_qgemv_x86_64_avx512_vnni(const uk_qgemv_args_t* a, int64_t p0, int64_t p1);
#elif defined(__aarch64__)
void uk_qgemv_arm_64_dotprod(const uk_qgemv_args_t* a, int64_t p0, int64_t p1);
#endif

/* Where chunk (p, g)'s scales and (int8) weight sums start. */
static inline const float* uk_qchunk_scales(const uk_qgemv_args_t* a, const uint8_t* chunk) {
  return (const float*)(chunk + a->steps * 256);
}
static inline const int32_t* uk_qchunk_sums(const uk_qgemv_args_t* a, const uint8_t* chunk) {
  return (const int32_t*)(chunk + a->steps * 256 + 256);
}

#endif
