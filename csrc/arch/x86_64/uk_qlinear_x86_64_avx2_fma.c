/* Decode kernels of uk_qlinear_run on AVX2 (compiled with -mavx2 -mfma; called only under
 * UK_CPU_X86_AVX2_FMA). vpmaddubsw (u8 x s8 pairs into saturating s16) then vpmaddwd by ones
 * into int32, kept exact by the ranges:
 *  - int4: the offset nibble w + 8 (0..15) as the unsigned operand, x (-127..127) signed: a
 *    pair is at most 2 * 15 * 127 = 3810, the two K steps of one load added in s16 (7620)
 *    before widening; a group's dot is the sum minus 8 * the group's sum of x;
 *  - int8: |w| (0..128) unsigned and x with w's sign (-127..127): a pair is at most
 *    2 * 128 * 127 = 32512 < 32767 (x never holds -128: uk_quantize_rows_s8).
 * A 16-column tile is two 8-column halves (bytes 0..31 and 32..63 of its 64 bytes); a row reads
 * two tiles of a panel at a time (16 ymm registers), the panel's other two right after. */
#include "../../uk_qlinear_internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")

UK_INLINE __m256i uk_bcast_quad256(const uint8_t* p) {
  int32_t q;
  memcpy(&q, p, 4);
  return _mm256_set1_epi32(q);
}

/* Tiles [u0, u0 + T) of panel p for rows [m0, m0 + M0) (compile-time M0, T). */
UK_INLINE void uk_qgemv_block_avx2(const uk_qgemv_args_t* a, const int64_t p, const int u0, const int64_t m0,
                                   const int M0, const int T) {
  const int64_t Kp = a->Kp, G = a->G, steps = a->steps;
  const int s4 = a->bits == 4;
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 facc[2][2][2]; /* [tile][row][half] */
  UK_UNROLL for (int u = 0; u < T; ++u) UK_UNROLL for (int i = 0; i < M0; ++i) UK_UNROLL for (int h = 0; h < 2; ++h)
    facc[u][i][h] = _mm256_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* chunk = a->w + (p * G + g) * a->chunk_bytes;
    __m256i acc[2][2][2];
    UK_UNROLL for (int u = 0; u < T; ++u) UK_UNROLL for (int i = 0; i < M0; ++i) UK_UNROLL for (int h = 0; h < 2; ++h)
      acc[u][i][h] = _mm256_setzero_si256();
    const uint8_t* wp = chunk + 64 * u0;
    const uint8_t* xp = a->xq + m0 * Kp + g * a->gk;
    for (int64_t s = 0; s < steps; ++s) {
      UK_UNROLL for (int u = 0; u < T; ++u) UK_UNROLL for (int h = 0; h < 2; ++h) {
        const __m256i v = _mm256_load_si256((const __m256i*)(wp + 256 * s + 64 * u + 32 * h));
        if (s4) {
          const __m256i lo = _mm256_and_si256(v, low);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
          UK_UNROLL for (int i = 0; i < M0; ++i) {
            const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(lo, uk_bcast_quad256(xp + i * Kp + 8 * s)),
                                                _mm256_maddubs_epi16(hi, uk_bcast_quad256(xp + i * Kp + 8 * s + 4)));
            acc[u][i][h] = _mm256_add_epi32(acc[u][i][h], _mm256_madd_epi16(pr, ones));
          }
        } else {
          const __m256i mag = _mm256_abs_epi8(v);
          UK_UNROLL for (int i = 0; i < M0; ++i) {
            const __m256i sx = _mm256_sign_epi8(uk_bcast_quad256(xp + i * Kp + 4 * s), v);
            acc[u][i][h] = _mm256_add_epi32(acc[u][i][h], _mm256_madd_epi16(_mm256_maddubs_epi16(mag, sx), ones));
          }
        }
      }
    }
    const float* scales = uk_qchunk_scales(a, chunk) + 16 * u0;
    UK_UNROLL for (int u = 0; u < T; ++u) UK_UNROLL for (int h = 0; h < 2; ++h) {
      const __m256 sc = _mm256_load_ps(scales + 16 * u + 8 * h);
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        __m256i dot = acc[u][i][h];
        if (s4) dot = _mm256_sub_epi32(dot, _mm256_set1_epi32((int32_t)((uint32_t)a->xsum[(m0 + i) * G + g] * 8u)));
        const __m256 f = _mm256_cvtepi32_ps(dot);
        facc[u][i][h] = a->grouped ? _mm256_fmadd_ps(f, sc, facc[u][i][h]) : _mm256_mul_ps(f, sc);
      }
    }
  }
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  UK_UNROLL for (int u = 0; u < T; ++u) {
    const int64_t n0 = p * UK_QLINEAR_PANEL + (u0 + u) * 16, nn = a->N - n0;
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      const __m256 sxv = _mm256_set1_ps(a->sx[m0 + i]);
      float* o = a->out + (m0 + i) * a->out_stride0 + (n0 - a->col0);
      UK_UNROLL for (int h = 0; h < 2; ++h) {
        const __m256 y = _mm256_mul_ps(facc[u][i][h], sxv);
        const int64_t left = nn - 8 * h;
        if (left >= 8)
          _mm256_storeu_ps(o + 8 * h, y);
        else if (left > 0)
          _mm256_maskstore_ps(o + 8 * h, _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)left), lanes), y);
      }
    }
  }
}

void uk_qgemv_x86_64_avx2_fma(const uk_qgemv_args_t* a, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t m0 = 0; m0 < a->M; m0 += 2) {
      if (a->M - m0 >= 2) {
        for (int u = 0; u < 4; ++u) uk_qgemv_block_avx2(a, p, u, m0, 2, 1);
      } else {
        uk_qgemv_block_avx2(a, p, 0, m0, 1, 2);
        uk_qgemv_block_avx2(a, p, 2, m0, 1, 2);
      }
    }
  }
}
#endif
