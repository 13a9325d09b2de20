/* Tile table rows of AVX512 VNNI (csrc/arch/x86_64/uk_mmt4d_x86_64_avx512_vnni.c), an X-macro list:
 * AVX-512 VNNI: vpdpwssd (s8, s16 pairs, K0 = 2) and vpdpbusd (u8s8, s8s8 with the +128
 * lhs offset, s8s4 with nibbles unpacked in registers, K0 = 4).
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_VNNI (UK_CPU_X86_AVX512_BASE | UK_CPU_X86_AVX512_VNNI)
UK_TILE(S8S8S32, 1, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_1x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 2, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_2x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 4, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_4x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 8, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_8x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 16, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_16x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S16S16S32, 1, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s16s16s32_1x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(U8S8S32, 1, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_u8s8s32_1x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_u8s8s32_1x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S16S16S32, 2, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s16s16s32_2x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(U8S8S32, 2, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_u8s8s32_2x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_u8s8s32_2x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S16S16S32, 4, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s16s16s32_4x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(U8S8S32, 4, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_u8s8s32_4x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_u8s8s32_4x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S16S16S32, 8, 16, 2, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s16s16s32_8x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(U8S8S32, 8, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_u8s8s32_8x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_u8s8s32_8x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S16S16S32, 16, 16, 2, UK_CPU_VNNI, 0, 1, uk_mmt4d_tile_s16s16s32_16x16x2_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(U8S8S32, 16, 16, 4, UK_CPU_VNNI, 0, 1, uk_mmt4d_tile_u8s8s32_16x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_u8s8s32_16x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 1, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_1x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s8s32_1x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 2, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_2x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s8s32_2x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 4, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_4x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s8s32_4x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 8, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s8s32_8x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s8s32_8x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 16, 16, 4, UK_CPU_VNNI, 0, 1, uk_mmt4d_tile_s8s8s32_16x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s8s32_16x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S4S32, 1, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s4s32_1x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s4s32_1x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S4S32, 2, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s4s32_2x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s4s32_2x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S4S32, 4, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s4s32_4x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s4s32_4x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S4S32, 8, 16, 4, UK_CPU_VNNI, 0, 0, uk_mmt4d_tile_s8s4s32_8x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s4s32_8x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S4S32, 16, 16, 4, UK_CPU_VNNI, 0, 1, uk_mmt4d_tile_s8s4s32_16x16x4_x86_64_avx512_vnni, uk_mmt4d_tile_s8s4s32_16x16x4_scaled_x86_64_avx512_vnni, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_VNNI
