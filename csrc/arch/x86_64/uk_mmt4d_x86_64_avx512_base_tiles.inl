/* Tile table rows of AVX512 BASE (csrc/arch/x86_64/uk_mmt4d_x86_64_avx512_base.c), an X-macro list:
 * AVX-512 F/BW/DQ/VL: f32 16x16x1, s8 16x16x2 (vpmaddwd).
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_AVX512 (UK_CPU_X86_AVX512_BASE)
UK_TILE(F32F32F32, 1, 16, 1, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_f32f32f32_1x16x1_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F32F32F32, 2, 16, 1, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_f32f32f32_2x16x1_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F32F32F32, 4, 16, 1, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_f32f32f32_4x16x1_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F32F32F32, 8, 16, 1, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_f32f32f32_8x16x1_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(F32F32F32, 16, 16, 1, UK_CPU_AVX512, 0, 1, uk_mmt4d_tile_f32f32f32_16x16x1_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 1, 16, 2, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_s8s8s32_1x16x2_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 2, 16, 2, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_s8s8s32_2x16x2_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 4, 16, 2, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_s8s8s32_4x16x2_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 8, 16, 2, UK_CPU_AVX512, 0, 0, uk_mmt4d_tile_s8s8s32_8x16x2_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(S8S8S32, 16, 16, 2, UK_CPU_AVX512, 0, 1, uk_mmt4d_tile_s8s8s32_16x16x2_x86_64_avx512_base, UK_NO_FN, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_AVX512
