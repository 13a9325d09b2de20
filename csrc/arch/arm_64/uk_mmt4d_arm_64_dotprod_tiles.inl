/* Tile table rows of aarch64 NEON dotprod (csrc/arch/arm_64/uk_mmt4d_arm_64_dotprod.c), an
 * X-macro list: s8s8 8x8x4 (M0 narrowed to 1, 2, 4) with sdot by lane.
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_DOTPROD (UK_CPU_ARM_NEON | UK_CPU_ARM_DOTPROD)
UK_TILE(S8S8S32, 1, 8, 4, UK_CPU_DOTPROD, 0, 0, uk_mmt4d_tile_s8s8s32_1x8x4_arm_64_dotprod, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 2, 8, 4, UK_CPU_DOTPROD, 0, 0, uk_mmt4d_tile_s8s8s32_2x8x4_arm_64_dotprod, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 4, 8, 4, UK_CPU_DOTPROD, 0, 0, uk_mmt4d_tile_s8s8s32_4x8x4_arm_64_dotprod, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 8, 8, 4, UK_CPU_DOTPROD, 0, 1, uk_mmt4d_tile_s8s8s32_8x8x4_arm_64_dotprod, UK_NO_FN, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_DOTPROD
