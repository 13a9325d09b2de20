/* AVX-512 BF16 narrowing packs (UK_PACK_NARROW_BF16: f32 input rounded to bf16, nearest
 * even, by vcvtne2ps2bf16) into the K0 = 2 tiles of the vdpbf16ps ukernels, for
 * precision="bf16" on float32 operands. vcvtne2ps2bf16 flushes subnormals, as
 * vdpbf16ps does with its inputs anyway: results match rounding first and packing after.
 * Each function does the full tiles it can and returns how far it got; the caller
 * (csrc/uk_pack.c) finishes the edges with the portable code. Called only under
 * UK_CPU_X86_AVX512_BF16. */
#include "uk_api.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

/* rhs: b (K rows x N columns, unit column stride) -> [N1][K1][16][2]. Two input rows of 16
 * columns into one vector (row k in the low half, k + 1 in the high half) -- with
 * UK_PACK_NARROW_BF16 f32 rows rounded by one vcvtne2ps2bf16, else 16-bit rows (bf16, f16,
 * s16) as they are -- then interleaved into (k, k+1) pairs per column by one vpermw.
 * Returns the K tiles done (whole row pairs) over the first *full_n column tiles. The
 * 16-bit path uses AVX-512 BW only (callers check UK_CPU_X86_AVX512_BASE; the narrowing
 * one UK_CPU_X86_AVX512_BF16 too). */
int64_t uk_pack_rhs_pairs_avx512(const uk_pack_params_t* p, int64_t* full_n) {
  *full_n = 0;
  if ((p->flags & 0xFF) != UK_PACK_TYPE_X16 ||
      (p->flags & (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER)) !=
          (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER) ||
      p->tile_size0 != 16 || p->tile_size1 != 2 || p->in_stride1 != 1)
    return 0;
  const int narrow = (p->flags & UK_PACK_NARROW_BF16) != 0;
  const int64_t fn = p->in_size1 / 16 < p->out_size0 ? p->in_size1 / 16 : p->out_size0;
  const int64_t tiles = p->in_size0 / 2 < p->out_size1 ? p->in_size0 / 2 : p->out_size1;
  if (fn <= 0 || tiles <= 0) return 0;
  const float* in32 = (const float*)p->in_buffer + p->in_offset;
  const uint16_t* in16 = (const uint16_t*)p->in_buffer + p->in_offset;
  uint16_t* out = (uint16_t*)p->out_buffer + p->out_offset;
  const int64_t s0 = p->in_stride0;
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t b1 = 0; b1 < tiles; b1 += 16) { /* 32 input rows stay in cache across the column tiles */
    const int64_t e1 = b1 + 16 < tiles ? b1 + 16 : tiles;
    for (int64_t o0 = 0; o0 < fn; ++o0)
      for (int64_t o1 = b1; o1 < e1; ++o1) {
        const int64_t at = 2 * o1 * s0 + o0 * 16;
        __m512i w;
        if (narrow) {
          const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in32 + at + s0), _mm512_loadu_ps(in32 + at));
          memcpy(&w, &v, sizeof w);
        } else {
          w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(in16 + at))),
                                 _mm256_loadu_si256((const __m256i*)(in16 + at + s0)), 1);
        }
        _mm512_storeu_si512((void*)(out + o0 * p->out_stride0 + o1 * 32), _mm512_permutexvar_epi16(idx, w));
      }
  }
  *full_n = fn;
  return tiles;
}

/* lhs: a (M rows x K columns, unit column stride) -> [M1][K1][T0][2], T0 in {1, 2, 4, 8,
 * 16}: each row's 16 columns rounded into 8 (k, k+1) pairs (one 32-bit word each), then
 * the T0 x 8 block of words transposed into 8 tiles through a small buffer. Returns the
 * input columns done (a multiple of 16) over the full row panels. */
int64_t uk_pack_lhs_narrow_bf16_avx512(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0;
  if ((p->flags & 0xFF) != UK_PACK_TYPE_X16 || !(p->flags & UK_PACK_NARROW_BF16) ||
      (p->flags & (UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER)) || p->tile_size1 != 2 ||
      p->in_stride1 != 1 || (T0 != 1 && T0 != 2 && T0 != 4 && T0 != 8 && T0 != 16))
    return 0;
  const int64_t panels = p->in_size0 / T0 < p->out_size0 ? p->in_size0 / T0 : p->out_size0;
  const int64_t kmax = p->in_size1 < 2 * p->out_size1 ? p->in_size1 : 2 * p->out_size1;
  const int64_t cols = kmax / 16 * 16;
  if (panels <= 0 || cols <= 0) return 0;
  const float* in = (const float*)p->in_buffer + p->in_offset;
  uint32_t buf[16 * 8];
  for (int64_t o0 = 0; o0 < panels; ++o0) {
    uint32_t* dst = (uint32_t*)((uint16_t*)p->out_buffer + p->out_offset + o0 * p->out_stride0); /* pairs as words */
    for (int64_t c = 0; c < cols; c += 16) {
      for (int64_t t = 0; t < T0; ++t) {
        const __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(in + (o0 * T0 + t) * p->in_stride0 + c));
        memcpy(buf + 8 * t, &v, 32);
      }
      uint32_t* d = dst + (c / 2) * T0;
      for (int s = 0; s < 8; ++s)
        for (int64_t t = 0; t < T0; ++t) d[s * T0 + t] = buf[8 * t + s];
    }
  }
  return cols;
}
#endif
