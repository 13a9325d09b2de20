/* Decode kernels of uk_qlinear_run on AVX-512 VNNI (compiled with -mavx512vnni; called only
 * under UK_CPU_X86_AVX512_VNNI). One vpdpbusd (u8 x s8, 4 products per lane, wrapping int32)
 * per 64 weight bytes and row, no per-step correction:
 *  - int8: x + 128 as the unsigned operand (broadcast quads), the s8 weights as they are; a
 *    group's dot is the sum minus the chunk's 128 * sum(w);
 *  - int4: the offset nibble w + 8 is already an unsigned byte: one 64-byte load holds two K
 *    steps of a tile (low nibbles: 8s..8s+3, high: 8s+4..8s+7), split by one AND and one
 *    shift + AND; a group's dot is the sum minus 8 * the group's sum of x.
 * Exact wherever the true dot fits in int32 (the differences are taken in wrapping int32).
 * One row reads a panel's four tiles together, so the weight is one sequential stream (scales
 * and sums inline after each group); more rows share each load. */
#include "../../uk_qlinear_internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#include <string.h>

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")

UK_INLINE __m512i uk_bcast_quad(const uint8_t* p) {
  int32_t q;
  memcpy(&q, p, 4);
  return _mm512_set1_epi32(q);
}

/* Tiles [u0, u0 + T) of panel p for rows [m0, m0 + M0): M0, T and GROUPED (a->grouped) compile-time
 * constants (per channel, the f32 sums are not live across the K loop: room for more tiles). */
UK_INLINE void uk_qgemv_block(const uk_qgemv_args_t* a, const int64_t p, const int u0, const int64_t m0,
                              const int M0, const int T, const int GROUPED) {
  const int64_t Kp = a->Kp, G = a->G, steps = a->steps;
  const int s4 = a->bits == 4;
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 facc[4][8];
  UK_UNROLL for (int u = 0; u < T; ++u) UK_UNROLL for (int i = 0; i < M0; ++i) facc[u][i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* chunk = a->w + (p * G + g) * a->chunk_bytes;
    /* one accumulator chain per (tile, row): M0 x T independent chains (one row streams four
     * tiles, so even decode has four; vpdpbusd's latency is hidden by the others) */
    __m512i acc[4][8];
    UK_UNROLL for (int u = 0; u < T; ++u) UK_UNROLL for (int i = 0; i < M0; ++i) acc[u][i] = _mm512_setzero_si512();
    const uint8_t* wp = chunk + 64 * u0;
    const uint8_t* xp = a->xq + m0 * Kp + g * a->gk;
    if (s4) {
      for (int64_t s = 0; s < steps; ++s) {
        UK_UNROLL for (int u = 0; u < T; ++u) {
          const __m512i v = _mm512_load_si512((const void*)(wp + 256 * s + 64 * u));
          const __m512i lo = _mm512_and_si512(v, low);
          const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
          UK_UNROLL for (int i = 0; i < M0; ++i) {
            acc[u][i] = _mm512_dpbusd_epi32(acc[u][i], lo, uk_bcast_quad(xp + i * Kp + 8 * s));
            acc[u][i] = _mm512_dpbusd_epi32(acc[u][i], hi, uk_bcast_quad(xp + i * Kp + 8 * s + 4));
          }
        }
      }
    } else {
      for (int64_t s = 0; s < steps; ++s) {
        UK_UNROLL for (int u = 0; u < T; ++u) {
          const __m512i v = _mm512_load_si512((const void*)(wp + 256 * s + 64 * u));
          UK_UNROLL for (int i = 0; i < M0; ++i)
            acc[u][i] = _mm512_dpbusd_epi32(acc[u][i], uk_bcast_quad(xp + i * Kp + 4 * s), v);
        }
      }
    }
    /* the group's exact dots, scaled into the f32 sums */
    const float* scales = uk_qchunk_scales(a, chunk) + 16 * u0;
    const int32_t* sums = uk_qchunk_sums(a, chunk) + 16 * u0;
    UK_UNROLL for (int u = 0; u < T; ++u) {
      const __m512 sc = _mm512_load_ps(scales + 16 * u);
      const __m512i corr = s4 ? _mm512_setzero_si512() : _mm512_load_si512((const void*)(sums + 16 * u));
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        __m512i dot = acc[u][i];
        dot = s4 ? _mm512_sub_epi32(dot, _mm512_set1_epi32((int32_t)((uint32_t)a->xsum[(m0 + i) * G + g] * 8u)))
                 : _mm512_sub_epi32(dot, corr);
        const __m512 f = _mm512_cvtepi32_ps(dot);
        facc[u][i] = GROUPED ? _mm512_fmadd_ps(f, sc, facc[u][i]) : _mm512_mul_ps(f, sc);
      }
    }
  }
  UK_UNROLL for (int u = 0; u < T; ++u) {
    const int64_t n0 = p * UK_QLINEAR_PANEL + (u0 + u) * 16, nn = a->N - n0;
    if (nn <= 0) break;
    const __mmask16 mask = nn >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nn) - 1u);
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      const __m512 y = _mm512_mul_ps(facc[u][i], _mm512_set1_ps(a->sx[m0 + i]));
      _mm512_mask_storeu_ps(a->out + (m0 + i) * a->out_stride0 + (n0 - a->col0), mask, y);
    }
  }
}

UK_INLINE void uk_qgemv_panels(const uk_qgemv_args_t* a, int64_t p0, int64_t p1, const int GROUPED) {
  for (int64_t p = p0; p < p1; ++p) { /* a panel (K x 64) stays in L2 across the row blocks */
    for (int64_t m0 = 0; m0 < a->M;) {
      const int64_t rows = a->M - m0;
      if (rows >= 8) { /* prompts: 8 rows share each weight load */
        if (GROUPED) {
          for (int u = 0; u < 4; ++u) uk_qgemv_block(a, p, u, m0, 8, 1, GROUPED);
        } else { /* and two tiles each broadcast of x */
          uk_qgemv_block(a, p, 0, m0, 8, 2, GROUPED);
          uk_qgemv_block(a, p, 2, m0, 8, 2, GROUPED);
        }
        m0 += 8;
      } else if (rows >= 4) {
        if (GROUPED) {
          uk_qgemv_block(a, p, 0, m0, 4, 2, GROUPED);
          uk_qgemv_block(a, p, 2, m0, 4, 2, GROUPED);
        } else {
          uk_qgemv_block(a, p, 0, m0, 4, 4, GROUPED);
        }
        m0 += 4;
      } else if (rows == 3) {
        uk_qgemv_block(a, p, 0, m0, 3, 2, GROUPED);
        uk_qgemv_block(a, p, 2, m0, 3, 2, GROUPED);
        m0 += 3;
      } else if (rows == 2) {
        uk_qgemv_block(a, p, 0, m0, 2, 4, GROUPED);
        m0 += 2;
      } else { /* decode: one row reads the panel's four tiles together (one stream) */
        uk_qgemv_block(a, p, 0, m0, 1, 4, GROUPED);
        m0 += 1;
      }
    }
  }
}

void uk_qgemv_x86_64_avx512_vnni(const uk_qgemv_args_t* a, int64_t p0, int64_t p1) {
  if (a->grouped)
    uk_qgemv_panels(a, p0, p1, 1);
  else
    uk_qgemv_panels(a, p0, p1, 0);
}
#endif
