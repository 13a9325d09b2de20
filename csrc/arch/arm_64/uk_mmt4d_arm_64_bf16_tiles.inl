/* Tile table rows of aarch64 NEON bf16 (csrc/arch/arm_64/uk_mmt4d_arm_64_bf16.c), an X-macro
 * list: bf16 x bf16 -> f32 8x8x2 (M0 narrowed to 1, 2, 4) with bfdot by lane, and 8x8x4 with
 * bfmmla on 2x4 by 4x2 blocks (the planned one: twice the products an instruction).
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_BF16 (UK_CPU_ARM_NEON | UK_CPU_ARM_BF16)
UK_TILE(BF16BF16F32, 1, 8, 2, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_1x8x2_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 2, 8, 2, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_2x8x2_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 4, 8, 2, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_4x8x2_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 8, 8, 2, UK_CPU_BF16, 0, 1, uk_mmt4d_tile_bf16bf16f32_8x8x2_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 1, 8, 4, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_1x8x4_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 2, 8, 4, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_2x8x4_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 4, 8, 4, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_4x8x4_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 8, 8, 4, UK_CPU_BF16, 0, 1, uk_mmt4d_tile_bf16bf16f32_8x8x4_arm_64_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_BF16
