/* Tile table rows of aarch64 NEON i8mm (csrc/arch/arm_64/uk_mmt4d_arm_64_i8mm.c), an X-macro
 * list: s8s8 8x8x8 (M0 narrowed to 1, 2, 4) with smmla on 2x8 by 8x2 blocks; after the dotprod
 * rows, so a CPU with both plans this one.
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_I8MM (UK_CPU_ARM_NEON | UK_CPU_ARM_I8MM)
UK_TILE(S8S8S32, 1, 8, 8, UK_CPU_I8MM, 0, 0, uk_mmt4d_tile_s8s8s32_1x8x8_arm_64_i8mm, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 2, 8, 8, UK_CPU_I8MM, 0, 0, uk_mmt4d_tile_s8s8s32_2x8x8_arm_64_i8mm, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 4, 8, 8, UK_CPU_I8MM, 0, 0, uk_mmt4d_tile_s8s8s32_4x8x8_arm_64_i8mm, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 8, 8, 8, UK_CPU_I8MM, 0, 1, uk_mmt4d_tile_s8s8s32_8x8x8_arm_64_i8mm, UK_NO_FN, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_I8MM
