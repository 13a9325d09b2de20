/* AVX2 pack of f32 lhs tiles (no transposes, K0 = T1 = 1, unit column stride,
 * T0 in {6, 8, 16}): for 8 columns at a time, 8-row groups are loaded as 8
 * vectors, transposed in registers (unpack/shuffle/permute2f128) and stored
 * as 8 contiguous tile rows -- instead of T0 scalar gathers per tile.
 * Handles the full 8x8 blocks; returns the number of input columns it packed
 * (a multiple of 8) so the caller finishes the rest, and the partial last
 * row panel, with the portable code. */
#include "uk_api.h"

#if defined(__x86_64__)
#include <immintrin.h>

static inline __attribute__((always_inline)) void uk_transpose8x8_ps(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Packs the full row panels [0, full_panels) for columns [0, cols8). */
static inline __attribute__((always_inline)) void uk_pack_lhs_f32_impl(
    const uk_pack_params_t* p, const int T0, int64_t full_panels, int64_t cols8, const int HALF) {
  /* HALF: the input is IEEE half (f16), converted with F16C as it is loaded */
  const float* in = (const float*)p->in_buffer + p->in_offset;
  const uint16_t* in_h = (const uint16_t*)p->in_buffer + p->in_offset;
  float* out = (float*)p->out_buffer + p->out_offset;
  const int64_t s0 = p->in_stride0;
  for (int64_t o0 = 0; o0 < full_panels; ++o0) {
    const float* rows = in + o0 * T0 * s0;
    const uint16_t* rows_h = in_h + o0 * T0 * s0;
    float* dst = out + o0 * p->out_stride0;
    for (int64_t c = 0; c < cols8; c += 8) {
      for (int g = 0; g < T0; g += 8) {
        __m256 r[8];
        const int n = T0 - g < 8 ? T0 - g : 8;
        for (int i = 0; i < 8; ++i)
          r[i] = HALF ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(rows_h + (i < n ? g + i : g) * s0 + c)))
                      : _mm256_loadu_ps(rows + (i < n ? g + i : g) * s0 + c);
        uk_transpose8x8_ps(r);
        for (int j = 0; j < 8; ++j) {
          float* d = dst + (c + j) * T0 + g;
          if (n == 8 || c + j + 1 < p->out_size1) {
            /* T0 == 6: the 2 extra floats land in the next tile's slot, which
             * is written afterwards (vmaskmovps stores are slow on AMD) */
            _mm256_storeu_ps(d, r[j]);
          } else { /* the panel's last tile: exactly 6 floats */
            _mm_storeu_ps(d, _mm256_castps256_ps128(r[j]));
            _mm_storel_pi((__m64*)(d + 4), _mm256_extractf128_ps(r[j], 1));
          }
        }
      }
    }
  }
}

int64_t uk_pack_lhs_f32_avx2(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0;
  if ((p->flags & 0xFF) != UK_PACK_TYPE_F32 || (p->flags & (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER)) ||
      (p->flags & UK_PACK_WIDEN_BF16) ||
      p->tile_size1 != 1 || p->in_stride1 != 1 || (T0 != 6 && T0 != 8 && T0 != 16))
    return 0;
  int64_t full_panels = p->in_size0 / T0;
  if (full_panels > p->out_size0) full_panels = p->out_size0;
  int64_t cols8 = (p->in_size1 < p->out_size1 ? p->in_size1 : p->out_size1) / 8 * 8;
  if (full_panels == 0 || cols8 == 0) return 0;
  const int half = (p->flags & UK_PACK_WIDEN_F16) != 0;
  if (half) {
    if (T0 == 16) uk_pack_lhs_f32_impl(p, 16, full_panels, cols8, 1);
    else if (T0 == 8) uk_pack_lhs_f32_impl(p, 8, full_panels, cols8, 1);
    else uk_pack_lhs_f32_impl(p, 6, full_panels, cols8, 1);
  } else {
    if (T0 == 16) uk_pack_lhs_f32_impl(p, 16, full_panels, cols8, 0);
    else if (T0 == 8) uk_pack_lhs_f32_impl(p, 8, full_panels, cols8, 0);
    else uk_pack_lhs_f32_impl(p, 6, full_panels, cols8, 0);
  }
  return cols8;
}

/* f16 -> f32 rhs pack (both transposes, T1 = 1, unit column stride): each full tile is T0
 * contiguous halves of one input row, converted 8 at a time with F16C. Returns the number
 * of leading input rows (K) it packed completely for the full column tiles [0, full_n); the
 * caller packs the rest (the partial last column tile) with the portable code. */
int64_t uk_pack_rhs_widen_f16_avx2(const uk_pack_params_t* p, int64_t* full_n) {
  const int64_t T0 = p->tile_size0;
  *full_n = 0;
  if ((p->flags & 0xFF) != UK_PACK_TYPE_F32 || !(p->flags & UK_PACK_WIDEN_F16) ||
      (p->flags & (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER)) !=
          (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER) ||
      p->tile_size1 != 1 || p->in_stride1 != 1 || T0 % 8)
    return 0;
  int64_t fn = p->in_size1 / T0 < p->out_size0 ? p->in_size1 / T0 : p->out_size0;
  const int64_t rows = p->in_size0 < p->out_size1 ? p->in_size0 : p->out_size1;
  const uint16_t* in = (const uint16_t*)p->in_buffer + p->in_offset;
  float* out = (float*)p->out_buffer + p->out_offset;
  for (int64_t b1 = 0; b1 < rows; b1 += 32) {  /* a block of input rows stays in cache across tiles */
    const int64_t e1 = b1 + 32 < rows ? b1 + 32 : rows;
    for (int64_t o0 = 0; o0 < fn; ++o0)
      for (int64_t o1 = b1; o1 < e1; ++o1) {
        const uint16_t* src = in + o1 * p->in_stride0 + o0 * T0;
        float* dst = out + o0 * p->out_stride0 + o1 * T0;
        for (int64_t t = 0; t < T0; t += 8) _mm256_storeu_ps(dst + t, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(src + t))));
      }
  }
  *full_n = fn;
  return rows;
}
/* 8-bit rhs pack into quads (both transposes, T0 = 16, T1 = 4, unit column stride: the
 * 16x16x4 vpdpbusd tiles): 16 columns of 4 input rows transposed into 16 (k..k+3) quads by
 * byte then word unpacks. Returns the K tiles (whole groups of 4 rows) done over the first
 * *full_n column tiles; the caller packs the rest with the portable code. */
int64_t uk_pack_rhs_x8_quads_avx2(const uk_pack_params_t* p, int64_t* full_n) {
  *full_n = 0;
  if ((p->flags & 0xFF) != UK_PACK_TYPE_I8 ||
      (p->flags & (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER)) !=
          (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER) ||
      p->tile_size0 != 16 || p->tile_size1 != 4 || p->in_stride1 != 1)
    return 0;
  const int64_t fn = p->in_size1 / 16 < p->out_size0 ? p->in_size1 / 16 : p->out_size0;
  const int64_t tiles = p->in_size0 / 4 < p->out_size1 ? p->in_size0 / 4 : p->out_size1;
  if (fn <= 0 || tiles <= 0) return 0;
  const int8_t* in = (const int8_t*)p->in_buffer + p->in_offset;
  int8_t* out = (int8_t*)p->out_buffer + p->out_offset;
  const int64_t s0 = p->in_stride0;
  for (int64_t b1 = 0; b1 < tiles; b1 += 8) { /* 32 input rows stay in cache across the column tiles */
    const int64_t e1 = b1 + 8 < tiles ? b1 + 8 : tiles;
    for (int64_t o0 = 0; o0 < fn; ++o0)
      for (int64_t o1 = b1; o1 < e1; ++o1) {
        const int8_t* src = in + 4 * o1 * s0 + o0 * 16;
        const __m128i r0 = _mm_loadu_si128((const __m128i*)src), r1 = _mm_loadu_si128((const __m128i*)(src + s0));
        const __m128i r2 = _mm_loadu_si128((const __m128i*)(src + 2 * s0));
        const __m128i r3 = _mm_loadu_si128((const __m128i*)(src + 3 * s0));
        const __m128i t0 = _mm_unpacklo_epi8(r0, r1), t1 = _mm_unpackhi_epi8(r0, r1);
        const __m128i t2 = _mm_unpacklo_epi8(r2, r3), t3 = _mm_unpackhi_epi8(r2, r3);
        __m128i* dst = (__m128i*)(out + o0 * p->out_stride0 + o1 * 64);
        _mm_storeu_si128(dst, _mm_unpacklo_epi16(t0, t2));
        _mm_storeu_si128(dst + 1, _mm_unpackhi_epi16(t0, t2));
        _mm_storeu_si128(dst + 2, _mm_unpacklo_epi16(t1, t3));
        _mm_storeu_si128(dst + 3, _mm_unpackhi_epi16(t1, t3));
      }
  }
  *full_n = fn;
  return tiles;
}
#endif
