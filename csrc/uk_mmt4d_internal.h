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
/* Elements between consecutive K tiles of the rhs panel (params->rhs_stride1). */
static inline int64_t uk_rhs_k_stride(const uk_mmt4d_params_t* p) {
  return p->rhs_stride1 ? p->rhs_stride1 : (int64_t)p->N0 * p->K0;
}

typedef void (*uk_mmt4d_tile_fn_t)(void* out_tile, const void* lhs_panel,
                                   const void* rhs_panel,
                                   const uk_mmt4d_params_t* params);

/* A tile function may come with a group variant computing UK_TILE_GROUP consecutive
 * N tiles in one pass over K (out tiles M0*N0 apart, rhs panels rhs_stride0 apart): one-row
 * tiles are bound by reading the rhs, and reading several panels side by side keeps
 * more sequential streams in flight than one panel after another (measured on
 * prepacked 1x16 f32 panels: 23 GB/s one at a time, 31-33 GB/s two or four at once). */
#define UK_TILE_GROUP 4

typedef struct uk_mmt4d_tile_entry_t {
  uint8_t type;           /* UK_TYPE_* */
  int32_t M0, N0, K0;
  uint64_t required_cpu;  /* all of these bits must be present */
  uk_mmt4d_tile_fn_t fn;
  const char* name;
  uk_mmt4d_tile_fn_t group_fn; /* UK_TILE_GROUP tiles at once, or NULL */
  uk_mmt4d_tile_fn_t scaled_group_fn; /* the same with UK_FLAG_GROUP_SCALES (integer types), or NULL */
} uk_mmt4d_tile_entry_t;

/* Portable fallback: any M0/N0/K0. */
void uk_mmt4d_tile_f32f32f32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f16f16f32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_generic(void*, const void*, const void*, const uk_mmt4d_params_t*);

/* Scalar conversions of the 16-bit float formats (exact widening; RNE narrowing
 * with IEEE NaN/Inf behaviour), shared by the generic tiles and the write-back. */
static inline float uk_bf16_to_f32(uint16_t h) {
  union { uint32_t u; float f; } v = {(uint32_t)h << 16};
  return v.f;
}
static inline uint16_t uk_f32_to_bf16(float f) {
  union { float f; uint32_t u; } v = {f};
  if ((v.u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((v.u >> 16) | 0x40u); /* quiet NaN */
  return (uint16_t)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float uk_f16_to_f32(uint16_t h) {
  /* Giesen's half_to_float: rebias the exponent, then fix Inf/NaN and renormalise
   * subnormals with one float subtract (selects rather than loops: vectorises in packs) */
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  union { uint32_t u; float f; } o = {(uint32_t)(h & 0x7FFFu) << 13}, magic = {113u << 23};
  const uint32_t exp = o.u & 0x0F800000u;
  o.u += (127u - 15u) << 23;
  if (exp == 0x0F800000u) o.u += (128u - 16u) << 23; /* Inf / NaN (payload kept) */
  if (exp == 0) { o.u += 1u << 23; o.f -= magic.f; }  /* zero / subnormal */
  o.u |= sign;
  return o.f;
}
static inline uint16_t uk_f32_to_f16(float f) {
  union { float f; uint32_t u; } v = {f};
  const uint32_t sign = (v.u >> 16) & 0x8000u, a = v.u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu)); /* NaN stays NaN */
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds past 65504 -> Inf */
  if (a < 0x38800000u) { /* result subnormal or zero: add 0.5 (as a float) and take the low bits */
    union { uint32_t u; float f; } x = {a}, half = {0x3F000000u};
    x.f += half.f; /* the FPU rounds to nearest even at the 2^-24 position */
    return (uint16_t)(sign | (x.u - half.u));
  }
  const uint32_t r = a + 0xC8000FFFu + ((a >> 13) & 1u); /* rebias exponent and round to nearest even */
  return (uint16_t)(sign | (r >> 13));
}

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
/* Group variants (UK_TILE_GROUP panels side by side) of the one-row 16-wide float tiles. */
void uk_mmt4d_tile_f32f32f32_1x16x1_x4_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f16f16f32_1x16x1_x4_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_1x16x1_x4_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_1x8x2_x4_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_1x8x2_x4_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_1x8x2_x4_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_1x8x2_x4_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
/* ... and with per-group scales (UK_FLAG_GROUP_SCALES; f32 out), the group loop in registers. */
void uk_mmt4d_tile_s8s8s32_1x8x2_x4_scaled_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_1x8x2_x4_scaled_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_1x8x2_x4_scaled_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_1x8x2_x4_scaled_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_1x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_2x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_4x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_8x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
/* AVX2+FMA+F16C: f16/bf16 6x16x1 (f32 accumulators); s16 and u8s8 8x8x2 (vpmaddwd). */
void uk_mmt4d_tile_f16f16f32_1x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_1x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f16f16f32_2x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_2x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f16f16f32_4x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_4x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_f16f16f32_6x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_6x16x1_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_1x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_1x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_2x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_2x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_4x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_4x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_8x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_8x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_1x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_2x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_4x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_8x8x2_x86_64_avx2_fma(void*, const void*, const void*, const uk_mmt4d_params_t*);
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
/* AVX-512 VNNI: s16 16x16x2 (vpdpwssd), u8s8 16x16x4 (vpdpbusd); AVX-512 BF16: bf16 16x16x2 (vdpbf16ps). */
void uk_mmt4d_tile_s16s16s32_1x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_1x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_1x16x2_x86_64_avx512_bf16(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_2x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_2x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_2x16x2_x86_64_avx512_bf16(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_4x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_4x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_4x16x2_x86_64_avx512_bf16(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_8x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_8x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_8x16x2_x86_64_avx512_bf16(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s16s16s32_16x16x2_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_u8s8s32_16x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_1x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_2x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_4x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_8x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s8s32_16x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_1x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_2x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_4x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_8x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_s8s4s32_16x16x4_x86_64_avx512_vnni(void*, const void*, const void*, const uk_mmt4d_params_t*);
void uk_mmt4d_tile_bf16bf16f32_16x16x2_x86_64_avx512_bf16(void*, const void*, const void*, const uk_mmt4d_params_t*);
#endif

#endif
