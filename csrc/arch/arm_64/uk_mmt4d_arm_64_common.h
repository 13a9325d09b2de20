/* Shared by the aarch64 tile files (each compiled with its own -march): the inlining and
 * unrolling spellings, and the end of every 8-wide f32 tile. Only baseline NEON here. */
#ifndef UK_MMT4D_ARM_64_COMMON_H
#define UK_MMT4D_ARM_64_COMMON_H

#include <arm_neon.h>
#include <string.h>

#include "../../uk_mmt4d_internal.h"

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")

/* The end of an 8-wide f32 tile: ACCUMULATE adds the K-block sum (summed from zero, see
 * uk_mmt4d_internal.h) to out, then the M0 rows (two q registers each) are stored. */
UK_INLINE void uk_finish_f32_Mx8_neon(float* out, float32x4_t* acc0, float32x4_t* acc1, const uk_mmt4d_params_t* p,
                                      const int M0) {
  UK_UNROLL for (int i = 0; i < M0; ++i) {
    if (p->flags & UK_FLAG_ACCUMULATE) {
      acc0[i] = vaddq_f32(vld1q_f32(out + 8 * i), acc0[i]);
      acc1[i] = vaddq_f32(vld1q_f32(out + 8 * i + 4), acc1[i]);
    }
    vst1q_f32(out + 8 * i, acc0[i]);
    vst1q_f32(out + 8 * i + 4, acc1[i]);
  }
}

#endif
