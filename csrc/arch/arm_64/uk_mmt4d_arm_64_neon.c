/* aarch64 Advanced SIMD (NEON, every aarch64 CPU) tile functions. Compiled with
 * -march=armv8-a; called when the CPU bits say UK_CPU_ARM_NEON. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_ARM_64)
#include "uk_mmt4d_arm_64_common.h"

/* f32, and f16 widened to f32: out[M0][8] (+)= sum_k lhs[k][M0] * rhs[k][8]: two q registers
 * per row (16 accumulators at M0 = 8, of 32), the M0 lhs values of a K step loaded as vectors
 * and used by lane (fmla v.4s, v.4s, v.s[lane]): 2 rhs loads and M0/4 lhs loads per 2*M0 fmla.
 * f16 operands are widened as they are loaded (fcvtl, exact: 2 widenings of the rhs and M0/4 of
 * the lhs a step); a product of two halves is exact in f32, so the fused multiply-add rounds
 * once, as the generic tile's multiply-then-add does, and the two agree bit for bit. Like the
 * x86 float tiles, each K block is summed from zero and added to out with ACCUMULATE. */
UK_INLINE float32x4_t uk_load4_neon(const void* p, const int f16) {
  return f16 ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t*)p))) : vld1q_f32((const float*)p);
}
UK_INLINE float32x4_t uk_dup_neon(const void* p, const int f16) {
  return f16 ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_dup_u16((const uint16_t*)p))) : vld1q_dup_f32((const float*)p);
}

UK_INLINE void uk_tile_Mx8x1_neon(float* out, const void* lhs_, const void* rhs_, const uk_mmt4d_params_t* p,
                                  const int M0, const int f16) {
  const int64_t es = f16 ? 2 : 4; /* element size */
  const char* lhs = (const char*)lhs_;
  const char* rhs = (const char*)rhs_;
  float32x4_t acc0[8], acc1[8];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
  const int64_t K = p->K, rs = uk_rhs_k_stride(p) * es;
  for (int64_t k = 0; k < K; ++k) {
    const float32x4_t r0 = uk_load4_neon(rhs, f16), r1 = uk_load4_neon(rhs + 4 * es, f16);
    if (M0 >= 4) {
      UK_UNROLL for (int g = 0; g < M0; g += 4) {
        const float32x4_t l = uk_load4_neon(lhs + g * es, f16);
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
        const float32x4_t l = uk_dup_neon(lhs + i * es, f16);
        acc0[i] = vfmaq_f32(acc0[i], r0, l);
        acc1[i] = vfmaq_f32(acc1[i], r1, l);
      }
    }
    lhs += M0 * es;
    rhs += rs;
  }
  uk_finish_f32_Mx8_neon(out, acc0, acc1, p, M0);
}

#define UK_DEFINE_NEON(TYPES, M0, F16)                                                          \
  void uk_mmt4d_tile_##TYPES##_##M0##x8x1_arm_64_neon(void* out, const void* lhs, const void* rhs, \
                                                      const uk_mmt4d_params_t* p) {            \
    uk_tile_Mx8x1_neon((float*)out, lhs, rhs, p, M0, F16);                                    \
  }
UK_DEFINE_NEON(f32f32f32, 1, 0)
UK_DEFINE_NEON(f32f32f32, 2, 0)
UK_DEFINE_NEON(f32f32f32, 4, 0)
UK_DEFINE_NEON(f32f32f32, 8, 0)
UK_DEFINE_NEON(f16f16f32, 1, 1)
UK_DEFINE_NEON(f16f16f32, 2, 1)
UK_DEFINE_NEON(f16f16f32, 4, 1)
UK_DEFINE_NEON(f16f16f32, 8, 1)

#endif
