/* AVX2+FMA tile functions.  Compiled with -mavx2 -mfma -mf16c only; called
 * only when the CPU bits say UK_CPU_X86_AVX2_FMA. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_X86_64)
#include <immintrin.h>
#include <string.h>

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")

/* f32: out[M0][8] (+)= sum_k lhs[k][M0] * rhs[k][8]; M0 <= 8 accumulators. */
UK_INLINE void uk_tile_f32_Mx8x1(float* out, const float* lhs, const float* rhs,
                                 const uk_mmt4d_params_t* p, const int M0) {
  __m256 acc[8];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm256_setzero_ps();
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    const __m256 r = _mm256_loadu_ps(rhs);
    UK_UNROLL for (int i = 0; i < M0; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(lhs + i), r, acc[i]);
    lhs += M0;
    rhs += rs;
  }
  if (p->flags & UK_FLAG_ACCUMULATE) /* the K block from zero, then added (see uk_mmt4d_internal.h) */
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm256_add_ps(_mm256_loadu_ps(out + 8 * i), acc[i]);
  UK_UNROLL for (int i = 0; i < M0; ++i) _mm256_storeu_ps(out + 8 * i, acc[i]);
}

/* The end of every 16-wide f32 tile: ACCUMULATE adds the K-block sum to out (the
 * sum started from zero), then the rows are stored. */
UK_INLINE void uk_finish_f32_Mx16(float* out, __m256* acc0, __m256* acc1, const uk_mmt4d_params_t* p,
                                  const int M0) {
  if (p->flags & UK_FLAG_ACCUMULATE) {
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      acc0[i] = _mm256_add_ps(_mm256_loadu_ps(out + 16 * i), acc0[i]);
      acc1[i] = _mm256_add_ps(_mm256_loadu_ps(out + 16 * i + 8), acc1[i]);
    }
  }
  UK_UNROLL for (int i = 0; i < M0; ++i) {
    _mm256_storeu_ps(out + 16 * i, acc0[i]);
    _mm256_storeu_ps(out + 16 * i + 8, acc1[i]);
  }
}

/* f32: out[M0][16] (+)= sum_k lhs[k][M0] * rhs[k][16]; two ymm per row, so
 * 6 rows give 12 independent FMA chains (> 4-cycle latency x 2 pipes) with
 * 6 broadcasts + 2 loads per 12 FMAs. */
UK_INLINE void uk_tile_f32_Mx16x1(float* out, const float* lhs, const float* rhs,
                                  const uk_mmt4d_params_t* p, const int M0) {
  __m256 acc0[6], acc1[6];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  const int64_t K = p->K, rs = uk_rhs_k_stride(p); /* 16 packed; a row stride read in place */
  int64_t k = 0;
  if (M0 <= 2) {
    /* Narrow tiles: split K over 2 more chains per half-row (latency). */
    __m256 b0[2], b1[2];
    UK_UNROLL for (int i = 0; i < M0; ++i) b0[i] = b1[i] = _mm256_setzero_ps();
    for (; k + 2 <= K; k += 2) {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const __m256 l0 = _mm256_broadcast_ss(lhs + i), l1 = _mm256_broadcast_ss(lhs + M0 + i);
        acc0[i] = _mm256_fmadd_ps(l0, _mm256_loadu_ps(rhs), acc0[i]);
        acc1[i] = _mm256_fmadd_ps(l0, _mm256_loadu_ps(rhs + 8), acc1[i]);
        b0[i] = _mm256_fmadd_ps(l1, _mm256_loadu_ps(rhs + rs), b0[i]);
        b1[i] = _mm256_fmadd_ps(l1, _mm256_loadu_ps(rhs + rs + 8), b1[i]);
      }
      lhs += 2 * M0;
      rhs += 2 * rs;
    }
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      acc0[i] = _mm256_add_ps(acc0[i], b0[i]);
      acc1[i] = _mm256_add_ps(acc1[i], b1[i]);
    }
  }
  for (; k < K; ++k) {
    const __m256 r0 = _mm256_loadu_ps(rhs), r1 = _mm256_loadu_ps(rhs + 8);
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      const __m256 l = _mm256_broadcast_ss(lhs + i);
      acc0[i] = _mm256_fmadd_ps(l, r0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(l, r1, acc1[i]);
    }
    lhs += M0;
    rhs += rs;
  }
  uk_finish_f32_Mx16(out, acc0, acc1, p, M0);
}

/* Sign-extended pair (lhs[2i], lhs[2i+1]) of rows i..i+3, broadcast: after
 * vpmovsxbw of 8 bytes repeated in both 128-bit halves, dword j of each lane
 * is the 16-bit pair of row i+j; vpshufd then broadcasts one row's pair. */
UK_INLINE __m256i uk_load_4pairs_s8_to_s16(const int8_t* lhs) {
  int64_t v;
  memcpy(&v, lhs, 8);
  return _mm256_cvtepi8_epi16(_mm_set1_epi64x(v));
}
UK_INLINE __m256i uk_bcast_pair_s8_to_s16(const int8_t* lhs) {
  int16_t v;
  memcpy(&v, lhs, 2);
  return _mm256_cvtepi8_epi16(_mm_set1_epi16(v));
}

/* u8 lhs: the same pairs zero-extended (vpmaddwd of u8 x s8 widened to s16 is exact). */
UK_INLINE __m256i uk_load_4pairs_u8_to_s16(const int8_t* lhs) {
  int64_t v;
  memcpy(&v, lhs, 8);
  return _mm256_cvtepu8_epi16(_mm_set1_epi64x(v));
}
UK_INLINE __m256i uk_bcast_pair_u8_to_s16(const int8_t* lhs) {
  int16_t v;
  memcpy(&v, lhs, 2);
  return _mm256_cvtepu8_epi16(_mm_set1_epi16(v));
}

/* int8 x int4: 8 rhs bytes per k (one per column: k0 in the low nibble, k1 in the high
 * one) become 16 sign-extended s16 in (k0, k1) pairs -- the s8 tile's rhs vector -- with
 * shifts and one interleave. */
UK_INLINE __m256i uk_s4x16_to_s16_pairs(const uint8_t* rhs) {
  const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)rhs)); /* 8 x u16: byte j */
  const __m128i lo = _mm_srai_epi16(_mm_slli_epi16(w, 12), 12);              /* low nibbles, signed */
  const __m128i hi = _mm_srai_epi16(_mm_slli_epi16(w, 8), 12);               /* high nibbles, signed */
  return _mm256_set_m128i(_mm_unpackhi_epi16(lo, hi), _mm_unpacklo_epi16(lo, hi));
}

/* The integer triples of the 8x8x2 tile; only how the operands become s16 pairs differs. */
enum { UK_INT_S8S8, UK_INT_U8S8, UK_INT_S8S4, UK_INT_S16S16 };

/* out[M0][8] (+)= sum_k lhs[k][M0][2] . rhs[k][8][2] via vpmaddwd on s16 pairs: the rhs
 * widened from s8 (or unpacked from nibbles, or loaded as s16), the lhs pair of each row
 * broadcast (sign- or zero-extended 8-bit, 4 rows per load for M0 >= 4; s16 as a dword). */
UK_INLINE void uk_tile_int_Mx8x2(int32_t* out, const void* lhs_, const void* rhs_,
                                 const uk_mmt4d_params_t* p, const int M0, const int KIND) {
  const char* lhs = (const char*)lhs_;
  const char* rhs = (const char*)rhs_;
  const int64_t lhs_step = 2 * M0 * (KIND == UK_INT_S16S16 ? 2 : 1);
  const int64_t rhs_step = KIND == UK_INT_S16S16 ? 32 : KIND == UK_INT_S8S4 ? 8 : 16;
  __m256i acc[8];
  if (p->flags & UK_FLAG_ACCUMULATE) {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm256_loadu_si256((const __m256i*)(out + 8 * i));
  } else {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm256_setzero_si256();
  }
  const int64_t K = p->K;
  for (int64_t k = 0; k < K; ++k) {
    const __m256i r = KIND == UK_INT_S16S16 ? _mm256_loadu_si256((const __m256i*)rhs)
                      : KIND == UK_INT_S8S4 ? uk_s4x16_to_s16_pairs((const uint8_t*)rhs)
                                            : _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)rhs));
    if (KIND == UK_INT_S16S16) {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        int32_t pair;
        memcpy(&pair, lhs + 4 * i, 4);
        acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_set1_epi32(pair), r));
      }
    } else if (M0 >= 4) {
      UK_UNROLL for (int g = 0; g < M0; g += 4) {
        const int8_t* lg = (const int8_t*)lhs + 2 * g;
        const __m256i l = KIND == UK_INT_U8S8 ? uk_load_4pairs_u8_to_s16(lg) : uk_load_4pairs_s8_to_s16(lg);
        acc[g + 0] = _mm256_add_epi32(acc[g + 0], _mm256_madd_epi16(_mm256_shuffle_epi32(l, 0x00), r));
        acc[g + 1] = _mm256_add_epi32(acc[g + 1], _mm256_madd_epi16(_mm256_shuffle_epi32(l, 0x55), r));
        acc[g + 2] = _mm256_add_epi32(acc[g + 2], _mm256_madd_epi16(_mm256_shuffle_epi32(l, 0xAA), r));
        acc[g + 3] = _mm256_add_epi32(acc[g + 3], _mm256_madd_epi16(_mm256_shuffle_epi32(l, 0xFF), r));
      }
    } else {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const int8_t* li = (const int8_t*)lhs + 2 * i;
        acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(
            KIND == UK_INT_U8S8 ? uk_bcast_pair_u8_to_s16(li) : uk_bcast_pair_s8_to_s16(li), r));
      }
    }
    lhs += lhs_step;
    rhs += rhs_step;
  }
  UK_UNROLL for (int i = 0; i < M0; ++i) _mm256_storeu_si256((__m256i*)(out + 8 * i), acc[i]);
}

/* The ends shared by the one-row integer group tiles: a finished K group's int32 sums
 * converted and multiplied by its scales into the f32 accumulators (SCALED), and the final
 * store of either (ACCUMULATE adds out; int32 wraps, as everywhere). */
UK_INLINE void uk_group_scale(__m256* facc, __m256i* acc, const float* scales, const int64_t ss, const int64_t grp) {
  UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) {
    facc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[g]), _mm256_loadu_ps(scales + g * ss + grp * 8), facc[g]);
    acc[g] = _mm256_setzero_si256();
  }
}
UK_INLINE void uk_group_store(void* out_, __m256* facc, __m256i* acc, const uk_mmt4d_params_t* p, const int SCALED) {
  UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) {
    if (SCALED) {
      float* out = (float*)out_ + 8 * g;
      if (p->flags & UK_FLAG_ACCUMULATE) facc[g] = _mm256_add_ps(_mm256_loadu_ps(out), facc[g]);
      _mm256_storeu_ps(out, facc[g]);
    } else {
      int32_t* out = (int32_t*)out_ + 8 * g;
      if (p->flags & UK_FLAG_ACCUMULATE) acc[g] = _mm256_add_epi32(_mm256_loadu_si256((const __m256i*)out), acc[g]);
      _mm256_storeu_si256((__m256i*)out, acc[g]);
    }
  }
}

/* One row, UK_TILE_GROUP 8x2 integer tiles at once (see uk_mmt4d_internal.h): the lhs pair
 * broadcast once per k for the group's panels (rhs_stride0 elements apart), read side by side,
 * one accumulator chain per panel (s8s8, u8s8, s16s16; int4 panels: the 8x4 group below). SCALED
 * (UK_FLAG_GROUP_SCALES): each group of group_k K steps sums exactly in int32 registers, then
 * is converted and multiplied by its 8 scales per panel into f32 accumulators -- the whole K
 * loop in registers; params' group_scales + group_scales_offset point at the first panel's. */
UK_INLINE void uk_tile_int_1x8x2_group(void* out_, const void* lhs_, const void* rhs_,
                                       const uk_mmt4d_params_t* p, const int KIND, const int SCALED) {
  const char* lhs = (const char*)lhs_;
  const char* rhs = (const char*)rhs_;
  const int bits = KIND == UK_INT_S16S16 ? 16 : 8;
  const int64_t lhs_step = KIND == UK_INT_S16S16 ? 4 : 2;
  const int64_t rhs_step = uk_rhs_k_stride(p) * bits / 8, ps = p->rhs_stride0 * bits / 8; /* bytes */
  const int64_t K = p->K, gk = SCALED ? p->group_k : (K > 0 ? K : 1);
  const float* scales = SCALED ? p->group_scales + p->group_scales_offset : 0;
  __m256 facc[UK_TILE_GROUP];
  __m256i acc[UK_TILE_GROUP];
  UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) {
    facc[g] = _mm256_setzero_ps();
    acc[g] = _mm256_setzero_si256();
  }
  for (int64_t k0 = 0, grp = 0; k0 < K; k0 += gk, ++grp) {
    const int64_t k1 = K - k0 < gk ? K : k0 + gk;
    for (int64_t k = k0; k < k1; ++k) {
      __m256i l;
      if (KIND == UK_INT_S16S16) {
        int32_t pair;
        memcpy(&pair, lhs, 4);
        l = _mm256_set1_epi32(pair);
      } else {
        l = KIND == UK_INT_U8S8 ? uk_bcast_pair_u8_to_s16((const int8_t*)lhs)
                                : uk_bcast_pair_s8_to_s16((const int8_t*)lhs);
      }
      UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) {
        const char* r = rhs + g * ps;
        const __m256i v = KIND == UK_INT_S16S16 ? _mm256_loadu_si256((const __m256i*)r)
                                                : _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)r));
        acc[g] = _mm256_add_epi32(acc[g], _mm256_madd_epi16(l, v));
      }
      lhs += lhs_step;
      rhs += rhs_step;
    }
    if (SCALED) uk_group_scale(facc, acc, scales, p->group_scales_stride0, grp);
  }
  uk_group_store(out_, facc, acc, p, SCALED);
}

/* The one-row group variants of the integer tiles, plain and with per-group scales. */
#define UK_DEFINE_INT_GROUP(NAME, KIND)                                                                   \
  void uk_mmt4d_tile_##NAME##_1x8x2_x4_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,        \
                                                       const uk_mmt4d_params_t* p) {                     \
    uk_tile_int_1x8x2_group(out, lhs, rhs, p, KIND, 0);                                                  \
  }                                                                                                      \
  void uk_mmt4d_tile_##NAME##_1x8x2_x4_scaled_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs, \
                                                              const uk_mmt4d_params_t* p) {              \
    uk_tile_int_1x8x2_group(out, lhs, rhs, p, KIND, 1);                                                  \
  }
UK_DEFINE_INT_GROUP(s8s8s32, UK_INT_S8S8)
UK_DEFINE_INT_GROUP(u8s8s32, UK_INT_U8S8)
UK_DEFINE_INT_GROUP(s16s16s32, UK_INT_S16S16)

/* M0 (<= 6) consecutive 16-bit values -> a 128-bit vector, reading exactly 2*M0 bytes
 * (the panel's last k must not read past its end). */
UK_INLINE __m128i uk_load_m0_halves(const uint16_t* p, const int M0) {
  int64_t lo = 0;
  int32_t hi = 0;
  if (M0 >= 4) memcpy(&lo, p, 8); else memcpy(&lo, p, (size_t)(2 * M0));
  if (M0 == 6) memcpy(&hi, p + 4, 4);
  return _mm_insert_epi32(_mm_cvtsi64_si128(lo), hi, 2);
}
UK_INLINE __m256 uk_f16x8_to_f32(__m128i h) { return _mm256_cvtph_ps(h); }
UK_INLINE __m256 uk_bf16x8_to_f32(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* 16-bit floats (f16 through F16C, bf16 by widening shifts) -> f32 accumulators,
 * the 6x16x1 register tile of f32: per k, 16 rhs values become 2 ymm, the M0 lhs
 * values one ymm, stored and re-broadcast from L1 (cheaper than M0 shuffles). */
UK_INLINE void uk_tile_h16_Mx16x1(float* out, const uint16_t* lhs, const uint16_t* rhs,
                                  const uk_mmt4d_params_t* p, const int M0, const int BF16) {
  __m256 acc0[6], acc1[6];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  float l[8] __attribute__((aligned(32)));
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    const __m128i rh0 = _mm_loadu_si128((const __m128i*)rhs), rh1 = _mm_loadu_si128((const __m128i*)(rhs + 8));
    const __m256 r0 = BF16 ? uk_bf16x8_to_f32(rh0) : uk_f16x8_to_f32(rh0);
    const __m256 r1 = BF16 ? uk_bf16x8_to_f32(rh1) : uk_f16x8_to_f32(rh1);
    const __m128i lh = uk_load_m0_halves(lhs, M0);
    _mm256_store_ps(l, BF16 ? uk_bf16x8_to_f32(lh) : uk_f16x8_to_f32(lh));
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      const __m256 b = _mm256_broadcast_ss(l + i);
      acc0[i] = _mm256_fmadd_ps(b, r0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(b, r1, acc1[i]);
    }
    lhs += M0;
    rhs += rs;
  }
  uk_finish_f32_Mx16(out, acc0, acc1, p, M0);
}

/* One row, UK_TILE_GROUP 16-wide tiles at once (see uk_mmt4d_internal.h): per k, the lhs
 * value broadcast once and two vectors of each of the panels (rhs_stride0 elements apart)
 * read side by side. KIND: 0 f32, 1 f16, 2 bf16 inputs. */
UK_INLINE __m256 uk_load8_as_f32(const void* p, const int KIND) {
  if (KIND == 0) return _mm256_loadu_ps((const float*)p);
  const __m128i h = _mm_loadu_si128((const __m128i*)p);
  return KIND == 1 ? uk_f16x8_to_f32(h) : uk_bf16x8_to_f32(h);
}
UK_INLINE float uk_load1_as_f32(const void* p, const int KIND) {
  if (KIND == 0) return *(const float*)p;
  const uint16_t h = *(const uint16_t*)p;
  return KIND == 1 ? uk_f16_to_f32(h) : uk_bf16_to_f32(h);
}
UK_INLINE void uk_tile_float_1x16x1_group(float* out, const char* lhs, const char* rhs,
                                          const uk_mmt4d_params_t* p, const int KIND) {
  const int64_t es = KIND == 0 ? 4 : 2;
  const int64_t rs = uk_rhs_k_stride(p) * es, ps = p->rhs_stride0 * es; /* bytes */
  __m256 acc[UK_TILE_GROUP][2];
  UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
  const int64_t K = p->K;
  /* rows of a row-major rhs read in place (rs: a row stride): the next K block of the
   * dispatch reads the next K rows of these columns; ask for them now (the hardware
   * prefetcher restarts on every short row segment) */
  const int64_t ahead = rs != 16 * es ? K * rs : 0;
  for (int64_t k = 0; k < K; ++k) {
    const __m256 l = _mm256_set1_ps(uk_load1_as_f32(lhs, KIND));
    if (ahead)
      UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) _mm_prefetch(rhs + g * ps + ahead, _MM_HINT_T1);
    UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) {
      acc[g][0] = _mm256_fmadd_ps(l, uk_load8_as_f32(rhs + g * ps, KIND), acc[g][0]);
      acc[g][1] = _mm256_fmadd_ps(l, uk_load8_as_f32(rhs + g * ps + 8 * es, KIND), acc[g][1]);
    }
    lhs += es;
    rhs += rs;
  }
  UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) uk_finish_f32_Mx16(out + 16 * g, &acc[g][0], &acc[g][1], p, 1);
}
void uk_mmt4d_tile_f32f32f32_1x16x1_x4_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,
                                                       const uk_mmt4d_params_t* p) {
  uk_tile_float_1x16x1_group((float*)out, (const char*)lhs, (const char*)rhs, p, 0);
}
void uk_mmt4d_tile_f16f16f32_1x16x1_x4_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,
                                                       const uk_mmt4d_params_t* p) {
  uk_tile_float_1x16x1_group((float*)out, (const char*)lhs, (const char*)rhs, p, 1);
}
void uk_mmt4d_tile_bf16bf16f32_1x16x1_x4_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,
                                                         const uk_mmt4d_params_t* p) {
  uk_tile_float_1x16x1_group((float*)out, (const char*)lhs, (const char*)rhs, p, 2);
}

#define UK_DEFINE_H16(M0)                                                                  \
  void uk_mmt4d_tile_f16f16f32_##M0##x16x1_x86_64_avx2_fma(                                \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_h16_Mx16x1((float*)out, (const uint16_t*)lhs, (const uint16_t*)rhs, p, M0, 0); \
  }                                                                                        \
  void uk_mmt4d_tile_bf16bf16f32_##M0##x16x1_x86_64_avx2_fma(                              \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_h16_Mx16x1((float*)out, (const uint16_t*)lhs, (const uint16_t*)rhs, p, M0, 1); \
  }
#define UK_DEFINE_I16(M0)                                                                  \
  void uk_mmt4d_tile_s16s16s32_##M0##x8x2_x86_64_avx2_fma(                                 \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_int_Mx8x2((int32_t*)out, lhs, rhs, p, M0, UK_INT_S16S16);                     \
  }                                                                                        \
  void uk_mmt4d_tile_u8s8s32_##M0##x8x2_x86_64_avx2_fma(                                   \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_int_Mx8x2((int32_t*)out, lhs, rhs, p, M0, UK_INT_U8S8);                       \
  }
UK_DEFINE_H16(1)
UK_DEFINE_H16(2)
UK_DEFINE_H16(4)
UK_DEFINE_H16(6)
UK_DEFINE_I16(1)
UK_DEFINE_I16(2)
UK_DEFINE_I16(4)
UK_DEFINE_I16(8)

#define UK_DEFINE_S8S4(M0)                                                                 \
  void uk_mmt4d_tile_s8s4s32_##M0##x8x2_x86_64_avx2_fma(                                   \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_int_Mx8x2((int32_t*)out, lhs, rhs, p, M0, UK_INT_S8S4);                       \
  }
UK_DEFINE_S8S4(1)
UK_DEFINE_S8S4(2)
UK_DEFINE_S8S4(4)
UK_DEFINE_S8S4(8)

#define UK_DEFINE_F32(M0)                                                                  \
  void uk_mmt4d_tile_f32f32f32_##M0##x8x1_x86_64_avx2_fma(                                 \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_f32_Mx8x1((float*)out, (const float*)lhs, (const float*)rhs, p, M0);          \
  }
#define UK_DEFINE_S8(M0)                                                                   \
  void uk_mmt4d_tile_s8s8s32_##M0##x8x2_x86_64_avx2_fma(                                   \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_int_Mx8x2((int32_t*)out, lhs, rhs, p, M0, UK_INT_S8S8);                       \
  }

#define UK_DEFINE_F32_16(M0)                                                               \
  void uk_mmt4d_tile_f32f32f32_##M0##x16x1_x86_64_avx2_fma(                                \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {           \
    uk_tile_f32_Mx16x1((float*)out, (const float*)lhs, (const float*)rhs, p, M0);         \
  }

UK_DEFINE_F32_16(1)
UK_DEFINE_F32_16(2)
UK_DEFINE_F32_16(4)
UK_DEFINE_F32_16(6)
UK_DEFINE_F32(1)
UK_DEFINE_F32(2)
UK_DEFINE_F32(4)
UK_DEFINE_F32(8)
UK_DEFINE_S8(1)
UK_DEFINE_S8(2)
UK_DEFINE_S8(4)
UK_DEFINE_S8(8)

/* ---- 8x8x4 integer tiles through vpmaddubsw (u8 x s8 -> s16 pairs, 32 products an
 * instruction; vpmaddwd on s16 pairs does 16). Both stay exact:
 *
 * s8s8 (UK_FLAG_LHS_S8_SYMMETRIC: the lhs has no -128, as the symmetric per-row quantizer of a
 * quantized Linear makes): |w| (u8, <= 128) times x*sign(w) (<= 127 in magnitude, no overflow
 * without -128), so a pair sums to at most 2 * 128 * 127 = 32512 < 2^15; vpmaddwd by ones
 * widens the pairs to int32 every step. Per row and 32 products: vpsignb, vpmaddubsw, vpmaddwd,
 * vpaddd (the vpmaddwd tile: 2 x (vpshufd, vpmaddwd, vpaddd)).
 *
 * s8s4 (any s8 lhs): a nibble u (two's complement w) gives u ^ 8 = w + 8 in [0, 15], so
 * sum_k x w = sum_k x (u^8) - 8 sum_k x: vpmaddubsw of the unsigned (u^8) by x sums a pair to
 * at most 2 * 15 * 128 = 3840, so 8 K steps add up in int16 (30720) before one widening; the
 * lhs row sums come from one vpmaddubsw by ones per K step. Per row and 32 products: a
 * vpmaddubsw and a vpaddw. */

/* 16 bytes of nibbles (32 int4 values, element 2i in the low nibble of byte i) -> 32 bytes
 * w + 8 (0..15) in element order: the two 8-byte halves into the two 128-bit lanes, then low
 * and high nibbles interleaved per lane. */
UK_INLINE __m256i uk_s4x32_to_u8_offset(const uint8_t* r) {
  const __m256i x = _mm256_permute4x64_epi64(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)r)), 0x50);
  const __m256i m = _mm256_set1_epi8(0x0F);
  const __m256i xo = _mm256_xor_si256(x, _mm256_set1_epi8((char)0x88));
  return _mm256_unpacklo_epi8(_mm256_and_si256(xo, m), _mm256_and_si256(_mm256_srli_epi16(xo, 4), m));
}

/* lhs quad (4 bytes of one row) broadcast to every dword */
UK_INLINE __m256i uk_bcast_quad(const int8_t* lhs) {
  int32_t q;
  memcpy(&q, lhs, 4);
  return _mm256_set1_epi32(q);
}

/* The end of a K group of the scaled 8x4 tiles (UK_FLAG_GROUP_SCALES): out row i (f32) +=
 * float(sum row i) * the group's 8 scales. */
UK_INLINE void uk_scale_rows_into(float* out, const __m256i* sums, const float* scales, const int M0) {
  const __m256 s = _mm256_loadu_ps(scales);
  UK_UNROLL for (int i = 0; i < M0; ++i)
    _mm256_storeu_ps(out + 8 * i, _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[i]), s, _mm256_loadu_ps(out + 8 * i)));
}

/* s8s8, lhs without -128: out[M0][8] (+)= sum_k lhs[k][M0][4] . rhs[k][8][4]; SCALED: per group
 * of group_k K steps, the exact int32 sums scaled into the f32 out tile. */
UK_INLINE void uk_tile_s8sym_Mx8x4(void* out_, const int8_t* lhs, const int8_t* rhs, const uk_mmt4d_params_t* p,
                                   const int M0, const int SCALED) {
  const __m256i ones = _mm256_set1_epi16(1);
  int32_t* out = (int32_t*)out_;
  float* fout = (float*)out_;
  const int accumulate = (p->flags & UK_FLAG_ACCUMULATE) != 0;
  __m256i acc[8];
  if (SCALED && !accumulate)
    UK_UNROLL for (int i = 0; i < M0; ++i) _mm256_storeu_ps(fout + 8 * i, _mm256_setzero_ps());
  UK_UNROLL for (int i = 0; i < M0; ++i)
    acc[i] = !SCALED && accumulate ? _mm256_loadu_si256((const __m256i*)(out + 8 * i)) : _mm256_setzero_si256();
  const int64_t K = p->K, rs = uk_rhs_k_stride(p), gk = SCALED ? p->group_k : (K > 0 ? K : 1);
  for (int64_t k0 = 0, grp = 0; k0 < K; k0 += gk, ++grp) {
    const int64_t k1 = K - k0 < gk ? K : k0 + gk;
    for (int64_t k = k0; k < k1; ++k) {
      const __m256i w = _mm256_loadu_si256((const __m256i*)rhs);
      const __m256i aw = _mm256_abs_epi8(w);
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const __m256i s = _mm256_sign_epi8(uk_bcast_quad(lhs + 4 * i), w);
        acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, s), ones));
      }
      lhs += 4 * M0;
      rhs += rs;
    }
    if (SCALED) {
      uk_scale_rows_into(fout, acc, p->group_scales + p->group_scales_offset + grp * 8, M0);
      UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm256_setzero_si256();
    }
  }
  if (!SCALED) UK_UNROLL for (int i = 0; i < M0; ++i) _mm256_storeu_si256((__m256i*)(out + 8 * i), acc[i]);
}

/* The M0 rows' lhs of one K step (M0 x 4 bytes) in one register, zero above. */
UK_INLINE __m256i uk_load_lhs_quads(const int8_t* lhs, const int M0) {
  if (M0 == 8) return _mm256_loadu_si256((const __m256i*)lhs);
  if (M0 == 4) return _mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)lhs));
  int64_t v = 0;
  memcpy(&v, lhs, (size_t)(4 * M0));
  return _mm256_castsi128_si256(_mm_cvtsi64_si128(v));
}

/* s8s4, any s8 lhs: out[M0][8] (+)= sum_k lhs[k][M0][4] . rhs[k][8][4] (rhs nibbles). The
 * int32 sums live in out (SCALED: in a local tile, scaled into the f32 out at each group end);
 * int16 partial sums are widened into them every 8 K steps. */
UK_INLINE void uk_tile_s8s4_Mx8x4(void* out_, const int8_t* lhs, const uint8_t* rhs, const uk_mmt4d_params_t* p,
                                  const int M0, const int SCALED) {
  const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
  int32_t group_sums[8 * 8];
  int32_t* sums = SCALED ? group_sums : (int32_t*)out_;
  const int accumulate = (p->flags & UK_FLAG_ACCUMULATE) != 0;
  if (!accumulate) /* SCALED: the f32 out tile starts from zero (its rows are as wide as int32's) */
    UK_UNROLL for (int i = 0; i < M0; ++i) _mm256_storeu_si256((__m256i*)out_ + i, _mm256_setzero_si256());
  const int64_t K = p->K, rs = uk_rhs_k_stride(p) / 2, gk = SCALED ? p->group_k : (K > 0 ? K : 1); /* bytes */
  for (int64_t g0 = 0, grp = 0; g0 < K; g0 += gk, ++grp) {
    const int64_t g1 = K - g0 < gk ? K : g0 + gk;
    if (SCALED) UK_UNROLL for (int i = 0; i < M0; ++i) _mm256_storeu_si256((__m256i*)(sums + 8 * i), _mm256_setzero_si256());
    for (int64_t k0 = g0; k0 < g1; k0 += 8) {
      const int64_t steps = g1 - k0 < 8 ? g1 - k0 : 8;
      __m256i acc[8], rowsum = _mm256_setzero_si256();
      UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm256_setzero_si256();
      for (int64_t k = 0; k < steps; ++k) {
        const __m256i w = uk_s4x32_to_u8_offset(rhs);
        rowsum = _mm256_add_epi16(rowsum, _mm256_maddubs_epi16(ones8, uk_load_lhs_quads(lhs, M0)));
        UK_UNROLL for (int i = 0; i < M0; ++i)
          acc[i] = _mm256_add_epi16(acc[i], _mm256_maddubs_epi16(w, uk_bcast_quad(lhs + 4 * i)));
        lhs += 4 * M0;
        rhs += rs;
      }
      /* dword i of rowsums: row i's lhs sum over these steps, times 8 (the w + 8 offset) */
      const __m256i rowsums = _mm256_slli_epi32(_mm256_madd_epi16(rowsum, ones16), 3);
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const __m256i corr = _mm256_permutevar8x32_epi32(rowsums, _mm256_set1_epi32(i));
        __m256i* o = (__m256i*)(sums + 8 * i);
        _mm256_storeu_si256(o, _mm256_add_epi32(_mm256_loadu_si256(o),
                                                _mm256_sub_epi32(_mm256_madd_epi16(acc[i], ones16), corr)));
      }
    }
    if (SCALED) {
      __m256i rows[8];
      UK_UNROLL for (int i = 0; i < M0; ++i) rows[i] = _mm256_loadu_si256((const __m256i*)(sums + 8 * i));
      uk_scale_rows_into((float*)out_, rows, p->group_scales + p->group_scales_offset + grp * 8, M0);
    }
  }
}

/* One row, UK_TILE_GROUP 8x4 panels at once (rhs_stride0 elements apart), plain or with
 * per-group scales (SCALED: see uk_tile_int_1x8x2_group). S4: int4 panels (the offset form
 * above), else s8 panels with a symmetric lhs. */
UK_INLINE void uk_tile_x4_1x8x4_group(void* out_, const int8_t* lhs, const uint8_t* rhs, const uk_mmt4d_params_t* p,
                                      const int S4, const int SCALED) {
  const __m256i ones16 = _mm256_set1_epi16(1), ones8 = _mm256_set1_epi8(1);
  const int64_t rs = uk_rhs_k_stride(p) / (S4 ? 2 : 1), ps = p->rhs_stride0 / (S4 ? 2 : 1); /* bytes */
  const int64_t K = p->K, gk = SCALED ? p->group_k : (K > 0 ? K : 1);
  const float* scales = SCALED ? p->group_scales + p->group_scales_offset : 0;
  __m256 facc[UK_TILE_GROUP];
  __m256i acc[UK_TILE_GROUP];
  UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) {
    facc[g] = _mm256_setzero_ps();
    acc[g] = _mm256_setzero_si256();
  }
  for (int64_t k0 = 0, grp = 0; k0 < K; k0 += gk, ++grp) {
    const int64_t k1 = K - k0 < gk ? K : k0 + gk;
    for (int64_t k = k0; k < k1;) {
      const int64_t steps = S4 ? (k1 - k < 8 ? k1 - k : 8) : 1;
      if (S4) {
        __m256i acc16[UK_TILE_GROUP], rowsum = _mm256_setzero_si256();
        UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) acc16[g] = _mm256_setzero_si256();
        for (int64_t j = 0; j < steps; ++j) {
          const __m256i x = uk_bcast_quad(lhs);
          rowsum = _mm256_add_epi16(rowsum, _mm256_maddubs_epi16(ones8, x));
          UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g)
            acc16[g] = _mm256_add_epi16(acc16[g], _mm256_maddubs_epi16(uk_s4x32_to_u8_offset(rhs + g * ps), x));
          lhs += 4;
          rhs += rs;
        }
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(rowsum, ones16), 3);
        UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g)
          acc[g] = _mm256_add_epi32(acc[g], _mm256_sub_epi32(_mm256_madd_epi16(acc16[g], ones16), corr));
      } else {
        const __m256i x = uk_bcast_quad(lhs);
        UK_UNROLL for (int g = 0; g < UK_TILE_GROUP; ++g) {
          const __m256i w = _mm256_loadu_si256((const __m256i*)(rhs + g * ps));
          const __m256i d = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
          acc[g] = _mm256_add_epi32(acc[g], _mm256_madd_epi16(d, ones16));
        }
        lhs += 4;
        rhs += rs;
      }
      k += steps;
    }
    if (SCALED) uk_group_scale(facc, acc, scales, p->group_scales_stride0, grp);
  }
  uk_group_store(out_, facc, acc, p, SCALED);
}

#define UK_DEFINE_X4(M0, SCALED, SUFFIX)                                                                    \
  void uk_mmt4d_tile_s8s8s32_##M0##x8x4_symmetric##SUFFIX##_x86_64_avx2_fma(void* out, const void* lhs,     \
                                                                            const void* rhs,                \
                                                                            const uk_mmt4d_params_t* p) {   \
    uk_tile_s8sym_Mx8x4(out, (const int8_t*)lhs, (const int8_t*)rhs, p, M0, SCALED);                        \
  }                                                                                                         \
  void uk_mmt4d_tile_s8s4s32_##M0##x8x4##SUFFIX##_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs, \
                                                                  const uk_mmt4d_params_t* p) {             \
    uk_tile_s8s4_Mx8x4(out, (const int8_t*)lhs, (const uint8_t*)rhs, p, M0, SCALED);                        \
  }
UK_DEFINE_X4(1, 0, )
UK_DEFINE_X4(2, 0, )
UK_DEFINE_X4(4, 0, )
UK_DEFINE_X4(8, 0, )
UK_DEFINE_X4(1, 1, _scaled)
UK_DEFINE_X4(2, 1, _scaled)
UK_DEFINE_X4(4, 1, _scaled)
UK_DEFINE_X4(8, 1, _scaled)
void uk_mmt4d_tile_s8s8s32_1x8x4_symmetric_x4_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,
                                                              const uk_mmt4d_params_t* p) {
  uk_tile_x4_1x8x4_group(out, (const int8_t*)lhs, (const uint8_t*)rhs, p, 0, 0);
}
void uk_mmt4d_tile_s8s8s32_1x8x4_symmetric_x4_scaled_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,
                                                                     const uk_mmt4d_params_t* p) {
  uk_tile_x4_1x8x4_group(out, (const int8_t*)lhs, (const uint8_t*)rhs, p, 0, 1);
}
void uk_mmt4d_tile_s8s4s32_1x8x4_x4_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,
                                                    const uk_mmt4d_params_t* p) {
  uk_tile_x4_1x8x4_group(out, (const int8_t*)lhs, (const uint8_t*)rhs, p, 1, 0);
}
void uk_mmt4d_tile_s8s4s32_1x8x4_x4_scaled_x86_64_avx2_fma(void* out, const void* lhs, const void* rhs,
                                                           const uk_mmt4d_params_t* p) {
  uk_tile_x4_1x8x4_group(out, (const int8_t*)lhs, (const uint8_t*)rhs, p, 1, 1);
}

#endif
