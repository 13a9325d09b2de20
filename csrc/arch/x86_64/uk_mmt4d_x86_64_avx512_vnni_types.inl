/* AVX-512 VNNI tiles of the 16-bit and u8 x s8 integer triples (included by
 * uk_mmt4d_x86_64_avx512_vnni.c, compiled with -mavx512vnni):
 *  - s16s16s32 16x16x2: the rhs pairs are already s16 (one 64-byte load), the lhs
 *    pair broadcast as a dword, one vpdpwssd per accumulator;
 *  - u8s8s32 16x16x4: 4-byte groups, lhs u8 quad broadcast, rhs s8 quads, one
 *    vpdpbusd (u8 x s8, 4 products, no saturation) per accumulator: four times f32's
 *    multiply-adds per instruction. */

UK_INLINE void uk_tile_s16_Mx16x2_vnni(int32_t* out, const int16_t* lhs, const int16_t* rhs,
                                       const uk_mmt4d_params_t* p, const int M0) {
  __m512i acc[16];
  if (p->flags & UK_FLAG_ACCUMULATE) {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_loadu_si512((const void*)(out + 16 * i));
  } else {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_setzero_si512();
  }
  const int64_t K = p->K;
  for (int64_t k = 0; k < K; ++k) {
    const __m512i r = _mm512_loadu_si512((const void*)rhs);
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      int32_t pair;
      memcpy(&pair, lhs + 2 * i, 4);
      acc[i] = _mm512_dpwssd_epi32(acc[i], _mm512_set1_epi32(pair), r);
    }
    lhs += 2 * M0;
    rhs += 32;
  }
  UK_UNROLL for (int i = 0; i < M0; ++i) _mm512_storeu_si512((void*)(out + 16 * i), acc[i]);
}

UK_INLINE void uk_tile_u8s8_Mx16x4_vnni(int32_t* out, const uint8_t* lhs, const int8_t* rhs,
                                        const uk_mmt4d_params_t* p, const int M0) {
  __m512i acc[16];
  if (p->flags & UK_FLAG_ACCUMULATE) {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_loadu_si512((const void*)(out + 16 * i));
  } else {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_setzero_si512();
  }
  const int64_t K = p->K;
  for (int64_t k = 0; k < K; ++k) {
    const __m512i r = _mm512_loadu_si512((const void*)rhs);
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      int32_t quad;
      memcpy(&quad, lhs + 4 * i, 4);
      acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(quad), r);
    }
    lhs += 4 * M0;
    rhs += 64;
  }
  UK_UNROLL for (int i = 0; i < M0; ++i) _mm512_storeu_si512((void*)(out + 16 * i), acc[i]);
}

#define UK_DEFINE_VNNI_TYPES(M0)                                                            \
  void uk_mmt4d_tile_s16s16s32_##M0##x16x2_x86_64_avx512_vnni(                              \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {            \
    uk_tile_s16_Mx16x2_vnni((int32_t*)out, (const int16_t*)lhs, (const int16_t*)rhs, p, M0); \
  }                                                                                         \
  void uk_mmt4d_tile_u8s8s32_##M0##x16x4_x86_64_avx512_vnni(                                \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {            \
    uk_tile_u8s8_Mx16x4_vnni((int32_t*)out, (const uint8_t*)lhs, (const int8_t*)rhs, p, M0); \
  }
