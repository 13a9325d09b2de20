/* s8 16x16x2 tile body shared by the AVX-512 base and VNNI files: the file
 * that includes it defines UK_S8_MAC(acc, lhs_pairs, rhs). */

/* dword j of every 128-bit lane = sign-extended pair of row j (of 4 rows). */
UK_INLINE __m512i uk_load_4pairs_s8_to_s16_512(const int8_t* lhs) {
  int64_t v;
  memcpy(&v, lhs, 8);
  return _mm512_cvtepi8_epi16(_mm256_set1_epi64x(v));
}
UK_INLINE __m512i uk_bcast_pair_s8_to_s16_512(const int8_t* lhs) {
  int16_t v;
  memcpy(&v, lhs, 2);
  return _mm512_cvtepi8_epi16(_mm256_set1_epi16(v));
}

UK_INLINE void uk_tile_s8_Mx16x2(int32_t* out, const int8_t* lhs, const int8_t* rhs,
                                 const uk_mmt4d_params_t* p, const int M0) {
  __m512i acc[16];
  if (p->flags & UK_FLAG_ACCUMULATE) {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_loadu_si512((const void*)(out + 16 * i));
  } else {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_setzero_si512();
  }
  const int64_t K = p->K;
  for (int64_t k = 0; k < K; ++k) {
    const __m512i r = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)rhs));
    if (M0 >= 4) {
      UK_UNROLL for (int g = 0; g < M0; g += 4) {
        const __m512i l = uk_load_4pairs_s8_to_s16_512(lhs + 2 * g);
        acc[g + 0] = UK_S8_MAC(acc[g + 0], _mm512_shuffle_epi32(l, 0x00), r);
        acc[g + 1] = UK_S8_MAC(acc[g + 1], _mm512_shuffle_epi32(l, 0x55), r);
        acc[g + 2] = UK_S8_MAC(acc[g + 2], _mm512_shuffle_epi32(l, 0xAA), r);
        acc[g + 3] = UK_S8_MAC(acc[g + 3], _mm512_shuffle_epi32(l, 0xFF), r);
      }
    } else {
      UK_UNROLL for (int i = 0; i < M0; ++i)
        acc[i] = UK_S8_MAC(acc[i], uk_bcast_pair_s8_to_s16_512(lhs + 2 * i), r);
    }
    lhs += 2 * M0;
    rhs += 32;
  }
  UK_UNROLL for (int i = 0; i < M0; ++i) _mm512_storeu_si512((void*)(out + 16 * i), acc[i]);
}

#define UK_DEFINE_S8_512(M0, SUFFIX)                                                      \
  void uk_mmt4d_tile_s8s8s32_##M0##x16x2_x86_64_##SUFFIX(                                 \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {          \
    uk_tile_s8_Mx16x2((int32_t*)out, (const int8_t*)lhs, (const int8_t*)rhs, p, M0);     \
  }
