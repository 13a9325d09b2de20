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

/* The tile table: one X-macro list per ISA level (csrc/arch/<arch>/uk_mmt4d_<arch>_<isa>_tiles.inl),
 * a row per tile function, oldest ISA first; this header expands them into prototypes and
 * csrc/uk_mmt4d.c into the ordered table uk_mmt4d selects from (the last row that matches
 * wins) and that Python reads through uk_mmt4d_tile_desc (runtime/plan.py: the planner's
 * register tiles). Columns of UK_TILE(TYPE, M0, N0, K0, CPU, FLAGS, PLAN, FN, SCALED_FN, GROUP_FN,
 * SCALED_GROUP_FN):
 *   TYPE       the element-type triple (UK_TYPE_ without its prefix);
 *   CPU        UK_CPU_* bits that must all be present;
 *   FLAGS      uk_mmt4d flags the call must carry for this row to apply (UK_FLAG_LHS_S8_SYMMETRIC:
 *              tiles exact only on an lhs without -128), else 0;
 *   PLAN       1: the register tile the planner uses for TYPE where this row applies (it
 *              narrows M0 for small M to the rows of the same N0 x K0 family), else 0;
 *   SCALED_FN  FN with UK_FLAG_GROUP_SCALES in registers (integer triples: each group's int32
 *              sums converted and scaled into the f32 out tile), or UK_NO_FN (then uk_mmt4d calls
 *              FN once per group into an int32 tile and scales it in portable C);
 *   GROUP_FN   UK_TILE_GROUP one-row tiles at once (M0 = 1 only), or UK_NO_FN;
 *   SCALED_GROUP_FN  the same with UK_FLAG_GROUP_SCALES, or UK_NO_FN.
 * Adding a tile: its function in the ISA's .c file, its row in the ISA's .inl, its tests. */
typedef struct uk_mmt4d_tile_entry_t {
  uint8_t type;           /* UK_TYPE_* */
  int32_t M0, N0, K0;
  uint64_t required_cpu;  /* all of these bits must be present */
  uint32_t required_flags; /* all of these flags must be set in the call */
  int32_t plan;           /* the planner's register tile for this type (see above) */
  uk_mmt4d_tile_fn_t fn;
  const char* name;
  uk_mmt4d_tile_fn_t scaled_fn; /* fn with UK_FLAG_GROUP_SCALES in registers, or NULL */
  uk_mmt4d_tile_fn_t group_fn; /* UK_TILE_GROUP tiles at once, or NULL */
  uk_mmt4d_tile_fn_t scaled_group_fn; /* the same with UK_FLAG_GROUP_SCALES (integer types), or NULL */
} uk_mmt4d_tile_entry_t;

/* Prototypes of every tile function in the tables (a row without a group variant names
 * UK_NO_FN: declared here, never defined, and NULL in the table). */
#define UK_NO_FN uk_mmt4d_tile_absent
#define UK_TILE_PROTO(fn) void fn(void*, const void*, const void*, const uk_mmt4d_params_t*);
#define UK_TILE(T, M0, N0, K0, CPU, FLAGS, PLAN, FN, SCALED_FN, GROUP_FN, SCALED_GROUP_FN) \
  UK_TILE_PROTO(FN) UK_TILE_PROTO(SCALED_FN) UK_TILE_PROTO(GROUP_FN) UK_TILE_PROTO(SCALED_GROUP_FN)
#define UK_GENERIC(T, M0, N0, K0, FN) UK_TILE_PROTO(FN)
#include "uk_mmt4d_generic_tiles.inl"
#if defined(__x86_64__) || defined(_M_X64)
#define UK_ARCH_X86_64 1
#include "arch/x86_64/uk_mmt4d_x86_64_avx2_fma_tiles.inl"
#include "arch/x86_64/uk_mmt4d_x86_64_avx512_base_tiles.inl"
#include "arch/x86_64/uk_mmt4d_x86_64_avx512_vnni_tiles.inl"
#include "arch/x86_64/uk_mmt4d_x86_64_avx512_bf16_tiles.inl"
#elif defined(__aarch64__)
#define UK_ARCH_ARM_64 1
#include "arch/arm_64/uk_mmt4d_arm_64_neon_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_fp16fml_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_dotprod_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_i8mm_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_bf16_tiles.inl"
#endif
#undef UK_TILE
#undef UK_GENERIC

/* Scalar conversions of the 16-bit float formats: uk_convert.h (shipped with the ABI header;
 * generated kernels that store f16/bf16 results use the same ones). */
#include "uk_convert.h"

#endif
