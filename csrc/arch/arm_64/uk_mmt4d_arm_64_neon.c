/* aarch64 Advanced SIMD (NEON, every aarch64 CPU) tile functions. Compiled with
 * -march=armv8-a; called when the CPU bits say UK_CPU_ARM_NEON. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_ARM_64)
#include "uk_mmt4d_arm_64_common.h"

/* f32: out[M0][8] (+)= sum_k lhs[k][M0] * rhs[k][8]: two q registers per row (16 accumulators
 * at M0 = 8, of 32), the M0 lhs values of a K step loaded as vectors and used by lane
 * (fmla v.4s, v.4s, v.s[lane]): 2 rhs loads and M0/4 lhs loads per 2*M0 fmla. Like the x86
 * float tiles, each K block is summed from zero and added to out with ACCUMULATE. */
UK_INLINE void uk_tile_f32_Mx8x1_neon(float* out, const float* lhs, const float* rhs, const uk_mmt4d_params_t* p,
                                      const int M0) {
  float32x4_t acc0[8], acc1[8];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    const float32x4_t r0 = vld1q_f32(rhs), r1 = vld1q_f32(rhs + 4);
    if (M0 >= 4) {
      UK_UNROLL for (int g = 0; g < M0; g += 4) {
        const float32x4_t l = vld1q_f32(lhs + g);
        acc0[g + 0] = vfmaq_laneq_f32(acc0[g + 0], r0, l, 0);
        acc1[g + 0] = vfmaq_laneq_f32(acc1[g + 0], r1, l, 0);
        acc0[g + 1] = vfmaq_laneq_f32(acc0[g + 1], r0, l, 1);
        acc1[g + 1] = vfmaq_laneq_f32(acc1[g + 1], r1, l, 1);
        acc0[g + 2] = vfmaq_laneq_f32(acc0[g + 2], r0, l, 2);
        acc1[g + 2] = vfmaq_laneq_f32(acc1[g + 2], r1, l, 2);
        acc0[g + 3] = vfmaq_laneq_f32(acc0[g + 3], r0, l, 3);
        acc1[g + 3] = vfmaq_laneq_f32(acc1[g + 3], r1, l, 3);
      }
    } else {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const float32x4_t l = vdupq_n_f32(lhs[i]);
        acc0[i] = vfmaq_f32(acc0[i], r0, l);
        acc1[i] = vfmaq_f32(acc1[i], r1, l);
      }
    }
    lhs += M0;
    rhs += rs;
  }
  uk_finish_f32_Mx8_neon(out, acc0, acc1, p, M0);
}

#define UK_DEFINE_F32_NEON(M0)                                                             \
  void uk_mmt4d_tile_f32f32f32_##M0##x8x1_arm_64_neon(void* out, const void* lhs, const void* rhs, \
                                                      const uk_mmt4d_params_t* p) {       \
    uk_tile_f32_Mx8x1_neon((float*)out, (const float*)lhs, (const float*)rhs, p, M0);     \
  }
UK_DEFINE_F32_NEON(1)
UK_DEFINE_F32_NEON(2)
UK_DEFINE_F32_NEON(4)
UK_DEFINE_F32_NEON(8)

/* f16 -> f32 on baseline NEON: the f32 tile above with each K step's halves widened first
 * (fcvtl, exact): 2 widenings of the 8 rhs halves and M0/4 of the lhs per 2*M0 fmla. A product
 * of two halves is exact in f32, so the fused multiply-add rounds once, as the generic tile's
 * multiply-then-add does: the two agree bit for bit. */
UK_INLINE float32x4_t uk_widen_lo_f16(const uint16x8_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h))); }
UK_INLINE float32x4_t uk_widen_hi_f16(const uint16x8_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h))); }

UK_INLINE void uk_tile_f16_Mx8x1_neon(float* out, const uint16_t* lhs, const uint16_t* rhs, const uk_mmt4d_params_t* p,
                                      const int M0) {
  float32x4_t acc0[8], acc1[8];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    const uint16x8_t r = vld1q_u16(rhs);
    const float32x4_t r0 = uk_widen_lo_f16(r), r1 = uk_widen_hi_f16(r);
    if (M0 >= 4) {
      UK_UNROLL for (int g = 0; g < M0; g += 4) {
        const float32x4_t l = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(lhs + g)));
        acc0[g + 0] = vfmaq_laneq_f32(acc0[g + 0], r0, l, 0);
        acc1[g + 0] = vfmaq_laneq_f32(acc1[g + 0], r1, l, 0);
        acc0[g + 1] = vfmaq_laneq_f32(acc0[g + 1], r0, l, 1);
        acc1[g + 1] = vfmaq_laneq_f32(acc1[g + 1], r1, l, 1);
        acc0[g + 2] = vfmaq_laneq_f32(acc0[g + 2], r0, l, 2);
        acc1[g + 2] = vfmaq_laneq_f32(acc1[g + 2], r1, l, 2);
        acc0[g + 3] = vfmaq_laneq_f32(acc0[g + 3], r0, l, 3);
        acc1[g + 3] = vfmaq_laneq_f32(acc1[g + 3], r1, l, 3);
      }
    } else {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        const float32x4_t l = vcvt_f32_f16(vreinterpret_f16_u16(vld1_dup_u16(lhs + i)));
        acc0[i] = vfmaq_f32(acc0[i], r0, l);
        acc1[i] = vfmaq_f32(acc1[i], r1, l);
      }
    }
    lhs += M0;
    rhs += rs;
  }
  uk_finish_f32_Mx8_neon(out, acc0, acc1, p, M0);
}

#define UK_DEFINE_F16_NEON(M0)                                                             \
  void uk_mmt4d_tile_f16f16f32_##M0##x8x1_arm_64_neon(void* out, const void* lhs, const void* rhs, \
                                                      const uk_mmt4d_params_t* p) {       \
    uk_tile_f16_Mx8x1_neon((float*)out, (const uint16_t*)lhs, (const uint16_t*)rhs, p, M0); \
  }
UK_DEFINE_F16_NEON(1)
UK_DEFINE_F16_NEON(2)
UK_DEFINE_F16_NEON(4)
UK_DEFINE_F16_NEON(8)

#endif
