/* Tile table rows of aarch64 NEON (csrc/arch/arm_64/uk_mmt4d_arm_64_neon.c), an X-macro list:
 * f32 8x8x1 (M0 narrowed to 1, 2, 4) with fmla by lane; f16 -> f32 8x8x1 the same after fcvtl.
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_NEON (UK_CPU_ARM_NEON)
UK_TILE(F32F32F32, 1, 8, 1, UK_CPU_NEON, 0, 0, uk_mmt4d_tile_f32f32f32_1x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F32F32F32, 2, 8, 1, UK_CPU_NEON, 0, 0, uk_mmt4d_tile_f32f32f32_2x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F32F32F32, 4, 8, 1, UK_CPU_NEON, 0, 0, uk_mmt4d_tile_f32f32f32_4x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F32F32F32, 8, 8, 1, UK_CPU_NEON, 0, 1, uk_mmt4d_tile_f32f32f32_8x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F16F16F32, 1, 8, 1, UK_CPU_NEON, 0, 0, uk_mmt4d_tile_f16f16f32_1x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F16F16F32, 2, 8, 1, UK_CPU_NEON, 0, 0, uk_mmt4d_tile_f16f16f32_2x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F16F16F32, 4, 8, 1, UK_CPU_NEON, 0, 0, uk_mmt4d_tile_f16f16f32_4x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F16F16F32, 8, 8, 1, UK_CPU_NEON, 0, 1, uk_mmt4d_tile_f16f16f32_8x8x1_arm_64_neon, UK_NO_FN, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_NEON
