/* aarch64 NEON half-precision multiply-add long (FEAT_FHM: fmlal, fmlal2) tile functions.
 * Compiled with -march=armv8.2-a+fp16fml; called when the CPU bits say UK_CPU_ARM_FHM. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_ARM_64)
#include "uk_mmt4d_arm_64_common.h"

/* f16 -> f32: out[M0][8] (+)= sum_k lhs[k][M0] * rhs[k][8], the 8 rhs halves of a K step in one
 * q register, multiplied as halves and accumulated in f32 by lane (fmlal for columns 0-3,
 * fmlal2 for 4-7): 16 instructions per 2 loads at M0 = 8, no widening step (the baseline tile
 * spends 4 fcvtl a step). The product of two halves is exact in f32 and fmlal rounds once, so
 * the results equal the baseline and generic tiles' bit for bit. */
UK_INLINE void uk_tile_f16_Mx8x1_fhm(float* out, const float16_t* lhs, const float16_t* rhs,
                                     const uk_mmt4d_params_t* p, const int M0) {
  float32x4_t acc0[8], acc1[8];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    const float16x8_t r = vld1q_f16(rhs);
    if (M0 == 8) {
      const float16x8_t l = vld1q_f16(lhs);
#define UK_FHM_ROW(i)                                       \
  acc0[i] = vfmlalq_laneq_low_f16(acc0[i], r, l, i);        \
  acc1[i] = vfmlalq_laneq_high_f16(acc1[i], r, l, i);
      UK_FHM_ROW(0) UK_FHM_ROW(1) UK_FHM_ROW(2) UK_FHM_ROW(3)
      UK_FHM_ROW(4) UK_FHM_ROW(5) UK_FHM_ROW(6) UK_FHM_ROW(7)
#undef UK_FHM_ROW
    } else if (M0 == 4) {
      const float16x4_t l = vld1_f16(lhs);
      acc0[0] = vfmlalq_lane_low_f16(acc0[0], r, l, 0);
      acc1[0] = vfmlalq_lane_high_f16(acc1[0], r, l, 0);
      acc0[1] = vfmlalq_lane_low_f16(acc0[1], r, l, 1);
      acc1[1] = vfmlalq_lane_high_f16(acc1[1], r, l, 1);
      acc0[2] = vfmlalq_lane_low_f16(acc0[2], r, l, 2);
      acc1[2] = vfmlalq_lane_high_f16(acc1[2], r, l, 2);
      acc0[3] = vfmlalq_lane_low_f16(acc0[3], r, l, 3);
      acc1[3] = vfmlalq_lane_high_f16(acc1[3], r, l, 3);
    } else {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const float16x8_t l = vld1q_dup_f16(lhs + i);
        acc0[i] = vfmlalq_low_f16(acc0[i], r, l);
        acc1[i] = vfmlalq_high_f16(acc1[i], r, l);
      }
    }
    lhs += M0;
    rhs += rs;
  }
  uk_finish_f32_Mx8_neon(out, acc0, acc1, p, M0);
}

#define UK_DEFINE_F16_FHM(M0)                                                                   \
  void uk_mmt4d_tile_f16f16f32_##M0##x8x1_arm_64_fp16fml(void* out, const void* lhs, const void* rhs, \
                                                         const uk_mmt4d_params_t* p) {          \
    uk_tile_f16_Mx8x1_fhm((float*)out, (const float16_t*)lhs, (const float16_t*)rhs, p, M0);   \
  }
UK_DEFINE_F16_FHM(1)
UK_DEFINE_F16_FHM(2)
UK_DEFINE_F16_FHM(4)
UK_DEFINE_F16_FHM(8)

#endif
