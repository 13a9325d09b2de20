/* The portable tile functions (csrc/uk_mmt4d_generic.c), one per element-type triple, an
 * X-macro list: UK_GENERIC(TYPE, M0, N0, K0, FN). They take any M0/N0/K0 and serve every
 * tile the ISA tables lack (with UK_FLAG_ALLOW_GENERIC_FALLBACK); M0 x N0 x K0 here is the
 * register tile the planner uses where no ISA table row is marked for the triple (the
 * "generic" level, and aarch64 until it has tile functions of its own). */
UK_GENERIC(F32F32F32, 8, 8, 1, uk_mmt4d_tile_f32f32f32_generic)
UK_GENERIC(S8S8S32, 8, 8, 2, uk_mmt4d_tile_s8s8s32_generic)
UK_GENERIC(F16F16F32, 8, 8, 1, uk_mmt4d_tile_f16f16f32_generic)
UK_GENERIC(BF16BF16F32, 8, 8, 1, uk_mmt4d_tile_bf16bf16f32_generic)
UK_GENERIC(S16S16S32, 8, 8, 2, uk_mmt4d_tile_s16s16s32_generic)
UK_GENERIC(U8S8S32, 8, 8, 2, uk_mmt4d_tile_u8s8s32_generic)
UK_GENERIC(S8S4S32, 8, 8, 2, uk_mmt4d_tile_s8s4s32_generic)
