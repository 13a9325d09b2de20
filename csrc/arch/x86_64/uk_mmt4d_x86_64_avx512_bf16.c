/* AVX-512 BF16 tile functions: bf16 x bf16 -> f32 through vdpbf16ps (a pair of
 * bf16 products added into each f32 lane: twice f32's multiply-adds per
 * instruction).  Compiled with the AVX-512 base flags plus -mavx512bf16; called
 * only under UK_CPU_X86_AVX512_BF16.  vdpbf16ps flushes denormal inputs and
 * outputs to zero (documented in the README); the tile is 16x16x2: the rhs tile
 * [16][2] is one 64-byte load of (k0, k1) pairs per column, the lhs pair of a row
 * is broadcast as a dword.  As for every float tile, K is summed from zero and
 * ACCUMULATE adds the sum at the end. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_X86_64)
#include <immintrin.h>
#include <string.h>

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")

UK_INLINE void uk_tile_bf16_Mx16x2(float* out, const uint16_t* lhs, const uint16_t* rhs,
                                   const uk_mmt4d_params_t* p, const int M0) {
  __m512 acc[16];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_setzero_ps();
  const int64_t K = p->K;
  for (int64_t k = 0; k < K; ++k) {
    const __m512bh r = (__m512bh)_mm512_loadu_si512((const void*)rhs);
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      int32_t pair;
      memcpy(&pair, lhs + 2 * i, 4);
      acc[i] = _mm512_dpbf16_ps(acc[i], (__m512bh)_mm512_set1_epi32(pair), r);
    }
    lhs += 2 * M0;
    rhs += 32;
  }
  if (p->flags & UK_FLAG_ACCUMULATE)
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_add_ps(_mm512_loadu_ps(out + 16 * i), acc[i]);
  UK_UNROLL for (int i = 0; i < M0; ++i) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

#define UK_DEFINE_BF16_512(M0)                                                                \
  void uk_mmt4d_tile_bf16bf16f32_##M0##x16x2_x86_64_avx512_bf16(                              \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {              \
    uk_tile_bf16_Mx16x2((float*)out, (const uint16_t*)lhs, (const uint16_t*)rhs, p, M0);     \
  }
UK_DEFINE_BF16_512(1)
UK_DEFINE_BF16_512(2)
UK_DEFINE_BF16_512(4)
UK_DEFINE_BF16_512(8)
UK_DEFINE_BF16_512(16)

#endif
