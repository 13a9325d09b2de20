/* Tile table rows of aarch64 NEON fp16fml (csrc/arch/arm_64/uk_mmt4d_arm_64_fp16fml.c), an
 * X-macro list: f16 -> f32 8x8x1 (M0 narrowed to 1, 2, 4) with fmlal/fmlal2 by lane; after the
 * baseline NEON f16 rows of the same shapes, so a CPU with FHM runs these.
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_FHM (UK_CPU_ARM_NEON | UK_CPU_ARM_FP16 | UK_CPU_ARM_FHM)
UK_TILE(F16F16F32, 1, 8, 1, UK_CPU_FHM, 0, 0, uk_mmt4d_tile_f16f16f32_1x8x1_arm_64_fp16fml, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F16F16F32, 2, 8, 1, UK_CPU_FHM, 0, 0, uk_mmt4d_tile_f16f16f32_2x8x1_arm_64_fp16fml, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F16F16F32, 4, 8, 1, UK_CPU_FHM, 0, 0, uk_mmt4d_tile_f16f16f32_4x8x1_arm_64_fp16fml, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F16F16F32, 8, 8, 1, UK_CPU_FHM, 0, 1, uk_mmt4d_tile_f16f16f32_8x8x1_arm_64_fp16fml, UK_NO_FN, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_FHM
