/* Tile table rows of AVX512 BF16 (csrc/arch/x86_64/uk_mmt4d_x86_64_avx512_bf16.c), an X-macro list:
 * AVX-512 BF16: bf16 16x16x2 through vdpbf16ps.
 *
 * See csrc/uk_mmt4d_internal.h for UK_TILE's columns. */
#define UK_CPU_BF16 (UK_CPU_X86_AVX512_BASE | UK_CPU_X86_AVX512_BF16)
UK_TILE(BF16BF16F32, 1, 16, 2, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_1x16x2_x86_64_avx512_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 2, 16, 2, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_2x16x2_x86_64_avx512_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 4, 16, 2, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_4x16x2_x86_64_avx512_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 8, 16, 2, UK_CPU_BF16, 0, 0, uk_mmt4d_tile_bf16bf16f32_8x16x2_x86_64_avx512_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
UK_TILE(BF16BF16F32, 16, 16, 2, UK_CPU_BF16, 0, 1, uk_mmt4d_tile_bf16bf16f32_16x16x2_x86_64_avx512_bf16, UK_NO_FN, UK_NO_FN, UK_NO_FN)
#undef UK_CPU_BF16
