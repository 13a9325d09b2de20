/* aarch64 NEON int8 matrix multiply (FEAT_I8MM: smmla) tile functions. Compiled with
 * -march=armv8.2-a+i8mm; called when the CPU bits say UK_CPU_ARM_I8MM. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_ARM_64)
#include "uk_mmt4d_arm_64_common.h"

/* s8s8: out[M0][8] (+)= sum_k lhs[k][M0][8] . rhs[k][8][8]. smmla multiplies a 2x8 block of
 * the lhs (two rows' 8 K values, 16 contiguous bytes of the packed tile) by an 8x2 block of
 * the rhs (two columns' 8 K values) into a 2x2 int32 block: 32 products an instruction, twice
 * sdot's. 8 rows x 8 columns are 4 x 4 blocks (16 accumulators); at the end each block's
 * [r0c0 r0c1 r1c0 r1c1] goes back to rows by its 64-bit halves. M0 = 1 runs the pair with a
 * zero second row. Exact in int32 (wrapping, as every integer tile). */
UK_INLINE void uk_tile_s8_Mx8x8_i8mm(int32_t* out, const int8_t* lhs, const int8_t* rhs,
                                     const uk_mmt4d_params_t* p, const int M0) {
  enum { PAIRS_MAX = 4 };
  const int pairs = M0 == 1 ? 1 : M0 / 2;
  int32x4_t acc[PAIRS_MAX][4];
  UK_UNROLL for (int i = 0; i < pairs; ++i)
    UK_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_s32(0);
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    int8x16_t r[4];
    UK_UNROLL for (int j = 0; j < 4; ++j) r[j] = vld1q_s8(rhs + 16 * j);
    UK_UNROLL for (int i = 0; i < pairs; ++i) {
      const int8x16_t l = M0 == 1 ? vcombine_s8(vld1_s8(lhs), vdup_n_s8(0)) : vld1q_s8(lhs + 16 * i);
      UK_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = vmmlaq_s32(acc[i][j], l, r[j]);
    }
    lhs += 8 * M0;
    rhs += rs;
  }
  UK_UNROLL for (int i = 0; i < pairs; ++i) {
    for (int h = 0; h < (M0 == 1 ? 1 : 2); ++h) { /* row 2i + h: low (h = 0) or high halves */
      int32_t* row = out + 8 * (2 * i + h);
      int32x4_t lo = h ? vcombine_s32(vget_high_s32(acc[i][0]), vget_high_s32(acc[i][1]))
                       : vcombine_s32(vget_low_s32(acc[i][0]), vget_low_s32(acc[i][1]));
      int32x4_t hi = h ? vcombine_s32(vget_high_s32(acc[i][2]), vget_high_s32(acc[i][3]))
                       : vcombine_s32(vget_low_s32(acc[i][2]), vget_low_s32(acc[i][3]));
      if (p->flags & UK_FLAG_ACCUMULATE) {
        lo = vaddq_s32(vld1q_s32(row), lo);
        hi = vaddq_s32(vld1q_s32(row + 4), hi);
      }
      vst1q_s32(row, lo);
      vst1q_s32(row + 4, hi);
    }
  }
}

#define UK_DEFINE_S8_I8MM(M0)                                                                  \
  void uk_mmt4d_tile_s8s8s32_##M0##x8x8_arm_64_i8mm(void* out, const void* lhs, const void* rhs, \
                                                    const uk_mmt4d_params_t* p) {             \
    uk_tile_s8_Mx8x8_i8mm((int32_t*)out, (const int8_t*)lhs, (const int8_t*)rhs, p, M0);     \
  }
UK_DEFINE_S8_I8MM(1)
UK_DEFINE_S8_I8MM(2)
UK_DEFINE_S8_I8MM(4)
UK_DEFINE_S8_I8MM(8)

#endif
