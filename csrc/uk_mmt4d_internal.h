/* Internal: tile functions and the ordered tile table behind uk_mmt4d. */
#ifndef UK_MMT4D_INTERNAL_H
#define UK_MMT4D_INTERNAL_H

#include "uk_api.h"

/* One M0xN0 output tile over the full K of the call: out_tile (+)= lhs_panel * rhs_panel^T.
 * The tile function reads K, M0 (for narrow variants) and flags from params.
 * Float tiles always sum K from zero in registers; with UK_FLAG_ACCUMULATE the
 * finished sum is added to out_tile at the end (out + sum), never used as the
 * start of the chain. The memory traffic is the same either way, and a dispatch
 * that chains K blocks then adds block sums, so the rounding error grows like
 * BLAS's (about KC + K/KC) instead of along one chain over all of K. */
typedef void (*uk_mmt4d_tile_fn_t)(void* out_tile, const void* lhs_panel,
                                   const void* rhs_panel,
                                   const uk_mmt4d_params_t* params);

typedef struct uk_mmt4d_tile_entry_t {
  uint8_t type;           /* UK_TYPE_* */
  int32_t M0, N0, K0;
  uint64_t required_cpu;  /* all of these bits must be present */
  uk_mmt4d_tile_fn_t fn;
  const char* name;
} uk_mmt4d_tile_entry_t;

/* Portable fallback: any M0/N0/K0. */
void uk_mmt4d_tile_f32f32f32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);

#if defined(__x86_64__) || defined(_M_X64)
#define UK_ARCH_X86_64 1
/* AVX2+FMA: f32 8x8x1 with M0 in {1,2,4,8}; s8 8x8x2. */
void uk_mmt4d_tile_f32f32f32_1x8x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_2x8x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_4x8x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_8x8x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
/* AVX2+FMA: f32 6x16x1 (12 accumulators) with M0 in {1,2,4,6}. */
void uk_mmt4d_tile_f32f32f32_1x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_2x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_4x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_6x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_1x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_2x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_4x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_8x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
/* AVX-512 base: f32 16x16x1 with M0 in {1,2,4,8,16}; s8 16x16x2. */
void uk_mmt4d_tile_f32f32f32_1x16x1_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_2x16x1_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_4x16x1_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_8x16x1_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f32f32f32_16x16x1_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_1x16x2_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_2x16x2_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_4x16x2_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_8x16x2_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_16x16x2_x86_64_avx512_base(void*, const void*, const void*, const uk_mmt4d_params_t*);
/* AVX-512 VNNI: s8 16x16x2 through vpdpwssd. */
void uk_mmt4d_tile_s8s8s32_1x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_2x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_4x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_8x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_16x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
#endif

#endif
