/* AVX-512 (F/BW/DQ/VL) tile functions.  Compiled with -mavx512f -mavx512bw
 * -mavx512dq -mavx512vl -mavx512cd; called only under UK_CPU_X86_AVX512_BASE. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_X86_64)
#include <immintrin.h>
#include <string.h>

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")

UK_INLINE void uk_tile_f32_Mx16x1(float* out, const float* lhs, const float* rhs,
                                  const uk_mmt4d_params_t* p, const int M0) {
  __m512 acc[16];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_setzero_ps();
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  int64_t k = 0;
  if (M0 <= 2) {
    /* Narrow tiles have too few accumulators to cover FMA latency: split K
     * over 4 chains per row and add them at the end. */
    __m512 acc2[3][2];
    UK_UNROLL for (int c = 0; c < 3; ++c) UK_UNROLL for (int i = 0; i < M0; ++i) acc2[c][i] = _mm512_setzero_ps();
    for (; k + 4 <= K; k += 4) {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(lhs[i]), _mm512_loadu_ps(rhs), acc[i]);
        acc2[0][i] = _mm512_fmadd_ps(_mm512_set1_ps(lhs[M0 + i]), _mm512_loadu_ps(rhs + rs), acc2[0][i]);
        acc2[1][i] = _mm512_fmadd_ps(_mm512_set1_ps(lhs[2 * M0 + i]), _mm512_loadu_ps(rhs + 2 * rs), acc2[1][i]);
        acc2[2][i] = _mm512_fmadd_ps(_mm512_set1_ps(lhs[3 * M0 + i]), _mm512_loadu_ps(rhs + 3 * rs), acc2[2][i]);
      }
      lhs += 4 * M0;
      rhs += 4 * rs;
    }
    UK_UNROLL for (int i = 0; i < M0; ++i)
      acc[i] = _mm512_add_ps(_mm512_add_ps(acc[i], acc2[0][i]), _mm512_add_ps(acc2[1][i], acc2[2][i]));
  }
  for (; k < K; ++k) {
    const __m512 r = _mm512_loadu_ps(rhs);
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(lhs[i]), r, acc[i]);
    lhs += M0;
    rhs += rs;
  }
  if (p->flags & UK_FLAG_ACCUMULATE) /* the K block from zero, then added (see uk_mmt4d_internal.h) */
    UK_UNROLL for (int i = 0; i < M0; ++i) acc[i] = _mm512_add_ps(_mm512_loadu_ps(out + 16 * i), acc[i]);
  UK_UNROLL for (int i = 0; i < M0; ++i) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

#define UK_DEFINE_F32_512(M0)                                                             \
  void uk_mmt4d_tile_f32f32f32_##M0##x16x1_x86_64_avx512_base(                            \
      void* out, const void* lhs, const void* rhs, const uk_mmt4d_params_t* p) {          \
    uk_tile_f32_Mx16x1((float*)out, (const float*)lhs, (const float*)rhs, p, M0);        \
  }
UK_DEFINE_F32_512(1)
UK_DEFINE_F32_512(2)
UK_DEFINE_F32_512(4)
UK_DEFINE_F32_512(8)
UK_DEFINE_F32_512(16)

#define UK_S8_MAC(acc, l, r) _mm512_add_epi32((acc), _mm512_madd_epi16((l), (r)))
#include "uk_mmt4d_x86_64_avx512_s8.inl"
UK_DEFINE_S8_512(1, avx512_base)
UK_DEFINE_S8_512(2, avx512_base)
UK_DEFINE_S8_512(4, avx512_base)
UK_DEFINE_S8_512(8, avx512_base)
UK_DEFINE_S8_512(16, avx512_base)

#endif
