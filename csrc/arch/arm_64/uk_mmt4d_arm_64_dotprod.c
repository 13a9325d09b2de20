/* aarch64 NEON dot-product (FEAT_DotProd: sdot) tile functions. Compiled with
 * -march=armv8.2-a+dotprod; called when the CPU bits say UK_CPU_ARM_DOTPROD. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_ARM_64)
#include "uk_mmt4d_arm_64_common.h"

/* s8s8: out[M0][8] (+)= sum_k lhs[k][M0][4] . rhs[k][8][4]: per K step the 8 columns' quads
 * in two q registers (columns 0-3, 4-7), the lhs quads of 4 rows in one, and one
 * sdot v.4s, v.16b, v.4b[lane] per row and column half (16 products each, exact in int32,
 * wrapping like every integer tile). */
UK_INLINE void uk_tile_s8_Mx8x4_dotprod(int32_t* out, const int8_t* lhs, const int8_t* rhs,
                                        const uk_mmt4d_params_t* p, const int M0) {
  int32x4_t acc0[8], acc1[8];
  if (p->flags & UK_FLAG_ACCUMULATE) {
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      acc0[i] = vld1q_s32(out + 8 * i);
      acc1[i] = vld1q_s32(out + 8 * i + 4);
    }
  } else {
    UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = vdupq_n_s32(0);
  }
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    const int8x16_t r0 = vld1q_s8(rhs), r1 = vld1q_s8(rhs + 16);
    if (M0 >= 4) {
      UK_UNROLL for (int g = 0; g < M0; g += 4) {
        const int8x16_t l = vld1q_s8(lhs + 4 * g);
        acc0[g + 0] = vdotq_laneq_s32(acc0[g + 0], r0, l, 0);
        acc1[g + 0] = vdotq_laneq_s32(acc1[g + 0], r1, l, 0);
        acc0[g + 1] = vdotq_laneq_s32(acc0[g + 1], r0, l, 1);
        acc1[g + 1] = vdotq_laneq_s32(acc1[g + 1], r1, l, 1);
        acc0[g + 2] = vdotq_laneq_s32(acc0[g + 2], r0, l, 2);
        acc1[g + 2] = vdotq_laneq_s32(acc1[g + 2], r1, l, 2);
        acc0[g + 3] = vdotq_laneq_s32(acc0[g + 3], r0, l, 3);
        acc1[g + 3] = vdotq_laneq_s32(acc1[g + 3], r1, l, 3);
      }
    } else {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        int32_t q;
        memcpy(&q, lhs + 4 * i, 4);
        const int8x16_t l = vreinterpretq_s8_s32(vdupq_n_s32(q));
        acc0[i] = vdotq_s32(acc0[i], r0, l);
        acc1[i] = vdotq_s32(acc1[i], r1, l);
      }
    }
    lhs += 4 * M0;
    rhs += rs;
  }
  UK_UNROLL for (int i = 0; i < M0; ++i) {
    vst1q_s32(out + 8 * i, acc0[i]);
    vst1q_s32(out + 8 * i + 4, acc1[i]);
  }
}

#define UK_DEFINE_S8_DOTPROD(M0)                                                               \
  void uk_mmt4d_tile_s8s8s32_##M0##x8x4_arm_64_dotprod(void* out, const void* lhs, const void* rhs, \
                                                       const uk_mmt4d_params_t* p) {          \
    uk_tile_s8_Mx8x4_dotprod((int32_t*)out, (const int8_t*)lhs, (const int8_t*)rhs, p, M0);  \
  }
UK_DEFINE_S8_DOTPROD(1)
UK_DEFINE_S8_DOTPROD(2)
UK_DEFINE_S8_DOTPROD(4)
UK_DEFINE_S8_DOTPROD(8)

#endif
