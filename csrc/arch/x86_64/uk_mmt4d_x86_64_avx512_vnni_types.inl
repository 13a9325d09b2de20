/* AVX-512 VNNI tiles of the 16-bit and u8 x s8 integer triples (included by
 * uk_mmt4d_x86_64_avx512_vnni.c, compiled with -mavx512vnni):
 *  - s16s16s32 16x16x2: the rhs pairs are already s16 (one 64-byte load), the lhs
 *    pair broadcast as a dword, one vpdpwssd per accumulator;
 *  - u8s8s32 16x16x4: 4-byte groups, lhs u8 quad broadcast, rhs s8 quads, one
 *    vpdpbusd (u8 x s8, 4 products, no saturation) per accumulator: four times f32's
 *    multiply-adds per instruction;
 *  - s8s8s32 16x16x4: vpdpbusd too, made exact for a signed lhs: each broadcast lhs quad
 *    is offset by +128 into u8 (vpxord with 0x80 in the vector unit: 78% of vpdpbusd's
 *    peak measured, vs 68% XOR-ing the panel into a stack buffer first) and 128 x (the
 *    column sums of the rhs) is subtracted,
 *    the sums accumulated in the same loop by one more vpdpbusd per K step (128 as the
 *    u8 operand). (a + 128) . b - 128 . b = a . b, in wrapping int32 arithmetic: exact
 *    wherever the true sum fits in int32, as for the other integer tiles;
 *  - s8s4s32 16x16x4: the same, the rhs quads unpacked from nibbles in registers first
 *    (32 bytes per K step: zero-extended to words, low and high nibble into the two bytes
 *    of each word, then sign-extended by (x ^ 8) - 8). */

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

/* 16 columns x 4 K of int4 (element e = 4n + k in byte e/2, low nibble first) as s8 quads */
UK_INLINE __m512i uk_unpack_s4_quads(const int8_t* rhs) {
  const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)rhs));
  const __m512i nibbles = _mm512_ternarylogic_epi32(_mm512_and_si512(w, _mm512_set1_epi16(0x000F)),
                                                    _mm512_slli_epi16(w, 4), _mm512_set1_epi16(0x0F00),
                                                    0xF8); /* A | (B & C) */
  const __m512i eight = _mm512_set1_epi8(8);
  return _mm512_sub_epi8(_mm512_xor_si512(nibbles, eight), eight);
}

/* The vpdpbusd tiles (compile-time flags): lhs_s8: the lhs is s8 (s8s8s32, s8s4s32; offset
 * +128 and corrected, see above), else u8 (u8s8s32); rhs_s4: the rhs holds int4 nibbles
 * (s8s4s32), 32 bytes per K step, else s8, 64 bytes. SCALED (UK_FLAG_GROUP_SCALES): each group
 * of group_k K steps sums exactly in int32 registers, then is converted and multiplied by its
 * 16 scales into the f32 out tile. */
UK_INLINE void uk_tile_dpbusd_Mx16x4(void* out_, const uint8_t* lhs, const int8_t* rhs, const uk_mmt4d_params_t* p,
                                     const int M0, const int lhs_s8, const int rhs_s4, const int SCALED) {
  int32_t* out = (int32_t*)out_;
  float* fout = (float*)out_;
  const int accumulate = (p->flags & UK_FLAG_ACCUMULATE) != 0;
  __m512i acc[16];
  if (SCALED && !accumulate)
    UK_UNROLL for (int i = 0; i < M0; ++i) _mm512_storeu_ps(fout + 16 * i, _mm512_setzero_ps());
  UK_UNROLL for (int i = 0; i < M0; ++i)
    acc[i] = !SCALED && accumulate ? _mm512_loadu_si512((const void*)(out + 16 * i)) : _mm512_setzero_si512();
  const __m512i offset = _mm512_set1_epi8((char)0x80); /* XOR: s8 -> s8 + 128 as u8; as u8: 128 */
  __m512i corr = _mm512_setzero_si512();               /* 128 x the rhs column sums */
  const int64_t K = p->K, gk = SCALED ? p->group_k : (K > 0 ? K : 1);
  for (int64_t k0 = 0, grp = 0; k0 < K; k0 += gk, ++grp) {
    const int64_t k1 = K - k0 < gk ? K : k0 + gk;
    for (int64_t k = k0; k < k1; ++k) {
      const __m512i r = rhs_s4 ? uk_unpack_s4_quads(rhs) : _mm512_loadu_si512((const void*)rhs);
      if (lhs_s8) corr = _mm512_dpbusd_epi32(corr, offset, r);
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        int32_t quad;
        memcpy(&quad, lhs + 4 * i, 4);
        __m512i q = _mm512_set1_epi32(quad);
        if (lhs_s8) {
          __asm__("" : "+v"(q)); /* keep the broadcast from memory; XOR in the vector unit */
          q = _mm512_xor_si512(q, offset);
        }
        acc[i] = _mm512_dpbusd_epi32(acc[i], q, r);
      }
      lhs += 4 * M0;
      rhs += rhs_s4 ? 32 : 64;
    }
    if (SCALED) {
      const __m512 sc = _mm512_loadu_ps(p->group_scales + p->group_scales_offset + grp * 16);
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const __m512i sum = lhs_s8 ? _mm512_sub_epi32(acc[i], corr) : acc[i];
        _mm512_storeu_ps(fout + 16 * i, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), sc, _mm512_loadu_ps(fout + 16 * i)));
        acc[i] = _mm512_setzero_si512();
      }
      corr = _mm512_setzero_si512();
    }
  }
  if (!SCALED)
    UK_UNROLL for (int i = 0; i < M0; ++i)
      _mm512_storeu_si512((void*)(out + 16 * i), lhs_s8 ? _mm512_sub_epi32(acc[i], corr) : acc[i]);
}

/* a vpdpbusd tile and its group-scaled variant */
#define UK_DEFINE_DPBUSD(M0, NAME, LHS_S8, RHS_S4)                                                          \
  void uk_mmt4d_tile_##NAME##_##M0##x16x4_x86_64_avx512_vnni(void* out, const void* lhs, const void* rhs,    \
                                                             const uk_mmt4d_params_t* p) {                  \
    uk_tile_dpbusd_Mx16x4(out, (const uint8_t*)lhs, (const int8_t*)rhs, p, M0, LHS_S8, RHS_S4, 0);          \
  }                                                                                                         \
  void uk_mmt4d_tile_##NAME##_##M0##x16x4_scaled_x86_64_avx512_vnni(void* out, const void* lhs,             \
                                                                    const void* rhs,                        \
                                                                    const uk_mmt4d_params_t* p) {           \
    uk_tile_dpbusd_Mx16x4(out, (const uint8_t*)lhs, (const int8_t*)rhs, p, M0, LHS_S8, RHS_S4, 1);          \
  }

#define UK_DEFINE_VNNI_TYPES(M0)                                                            \
  void uk_mmt4d_tile_s16s16s32_##M0##x16x2_x86_64_avx512_vnni(                              \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {            \
    uk_tile_s16_Mx16x2_vnni((int32_t*)out, (const int16_t*)lhs, (const int16_t*)rhs, p, M0); \
  }                                                                                         \
  UK_DEFINE_DPBUSD(M0, u8s8s32, 0, 0)                                                       \
  UK_DEFINE_DPBUSD(M0, s8s8s32, 1, 0)                                                       \
  UK_DEFINE_DPBUSD(M0, s8s4s32, 1, 1)
