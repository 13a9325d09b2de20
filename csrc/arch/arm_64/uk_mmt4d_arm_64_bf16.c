/* aarch64 NEON bfloat16 dot product (FEAT_BF16: bfdot) tile functions. Compiled with
 * -march=armv8.2-a+bf16 (bfdot and bfmmla); called when the CPU bits say UK_CPU_ARM_BF16. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_ARM_64)
#include "uk_mmt4d_arm_64_common.h"

/* bf16 -> f32: out[M0][8] (+)= sum_k lhs[k][M0][2] . rhs[k][8][2]: per K step the 8 columns'
 * pairs in two q registers, the pairs of 4 rows in one, one bfdot v.4s, v.8h, v.2h[lane] per
 * row and column half (each lane += the pair's two products). The architecture does not round
 * between the two products of a pair; subnormal inputs and results may be flushed, as
 * vdpbf16ps does on x86. Float tiles sum each K block from zero and add it to out with
 * ACCUMULATE (uk_mmt4d_internal.h). */
UK_INLINE void uk_tile_bf16_Mx8x2_bfdot(float* out, const bfloat16_t* lhs, const bfloat16_t* rhs,
                                        const uk_mmt4d_params_t* p, const int M0) {
  float32x4_t acc0[8], acc1[8];
  UK_UNROLL for (int i = 0; i < M0; ++i) acc0[i] = acc1[i] = vdupq_n_f32(0.0f);
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    const bfloat16x8_t r0 = vld1q_bf16(rhs), r1 = vld1q_bf16(rhs + 8);
    if (M0 >= 4) {
      UK_UNROLL for (int g = 0; g < M0; g += 4) {
        const bfloat16x8_t l = vld1q_bf16(lhs + 2 * g);
        acc0[g + 0] = vbfdotq_laneq_f32(acc0[g + 0], r0, l, 0);
        acc1[g + 0] = vbfdotq_laneq_f32(acc1[g + 0], r1, l, 0);
        acc0[g + 1] = vbfdotq_laneq_f32(acc0[g + 1], r0, l, 1);
        acc1[g + 1] = vbfdotq_laneq_f32(acc1[g + 1], r1, l, 1);
        acc0[g + 2] = vbfdotq_laneq_f32(acc0[g + 2], r0, l, 2);
        acc1[g + 2] = vbfdotq_laneq_f32(acc1[g + 2], r1, l, 2);
        acc0[g + 3] = vbfdotq_laneq_f32(acc0[g + 3], r0, l, 3);
        acc1[g + 3] = vbfdotq_laneq_f32(acc1[g + 3], r1, l, 3);
      }
    } else {
      UK_UNROLL for (int i = 0; i < M0; ++i) {
        uint32_t pair;
        memcpy(&pair, lhs + 2 * i, 4);
        const bfloat16x8_t l = vreinterpretq_bf16_u32(vdupq_n_u32(pair));
        acc0[i] = vbfdotq_f32(acc0[i], r0, l);
        acc1[i] = vbfdotq_f32(acc1[i], r1, l);
      }
    }
    lhs += 2 * M0;
    rhs += rs;
  }
  uk_finish_f32_Mx8_neon(out, acc0, acc1, p, M0);
}

#define UK_DEFINE_BF16_BFDOT(M0)                                                                   \
  void uk_mmt4d_tile_bf16bf16f32_##M0##x8x2_arm_64_bf16(void* out, const void* lhs, const void* rhs,   \
                                                        const uk_mmt4d_params_t* p) {             \
    uk_tile_bf16_Mx8x2_bfdot((float*)out, (const bfloat16_t*)lhs, (const bfloat16_t*)rhs, p, M0); \
  }
UK_DEFINE_BF16_BFDOT(1)
UK_DEFINE_BF16_BFDOT(2)
UK_DEFINE_BF16_BFDOT(4)
UK_DEFINE_BF16_BFDOT(8)

/* bf16 -> f32 with bfmmla: a 2x4 block of the lhs (two rows' 4 K values, 16 contiguous bytes
 * of the packed 8x4 tile) times a 4x2 block of the rhs (two columns' 4 K values) into a 2x2 f32
 * block, 16 products an instruction, twice bfdot's. 8 rows x 8 columns are 4 x 4 blocks (16
 * accumulators); at the end each block's [r0c0 r0c1 r1c0 r1c1] goes back to rows by its 64-bit
 * halves, as in the i8mm tile. M0 = 1 runs the pair with a zero second row. The architecture
 * sums the 4 products of a block step without rounding between them (and may flush
 * subnormals), so results may differ from bfdot's in the last bits on non-integer data. */
UK_INLINE void uk_tile_bf16_Mx8x4_bfmmla(float* out, const bfloat16_t* lhs, const bfloat16_t* rhs,
                                         const uk_mmt4d_params_t* p, const int M0) {
  enum { PAIRS_MAX = 4 };
  const int pairs = M0 == 1 ? 1 : M0 / 2;
  float32x4_t acc[PAIRS_MAX][4];
  UK_UNROLL for (int i = 0; i < pairs; ++i)
    UK_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = vdupq_n_f32(0.0f);
  const int64_t K = p->K, rs = uk_rhs_k_stride(p);
  for (int64_t k = 0; k < K; ++k) {
    bfloat16x8_t r[4];
    UK_UNROLL for (int j = 0; j < 4; ++j) r[j] = vld1q_bf16(rhs + 8 * j);
    UK_UNROLL for (int i = 0; i < pairs; ++i) {
      const bfloat16x8_t l =
          M0 == 1 ? vreinterpretq_bf16_u16(vcombine_u16(vld1_u16((const uint16_t*)lhs), vdup_n_u16(0)))
                  : vld1q_bf16(lhs + 8 * i);
      UK_UNROLL for (int j = 0; j < 4; ++j) acc[i][j] = vbfmmlaq_f32(acc[i][j], l, r[j]);
    }
    lhs += 4 * M0;
    rhs += rs;
  }
  float32x4_t acc0[8], acc1[8];
  UK_UNROLL for (int i = 0; i < pairs; ++i) {
    acc0[2 * i] = vcombine_f32(vget_low_f32(acc[i][0]), vget_low_f32(acc[i][1]));
    acc1[2 * i] = vcombine_f32(vget_low_f32(acc[i][2]), vget_low_f32(acc[i][3]));
    acc0[2 * i + 1] = vcombine_f32(vget_high_f32(acc[i][0]), vget_high_f32(acc[i][1]));
    acc1[2 * i + 1] = vcombine_f32(vget_high_f32(acc[i][2]), vget_high_f32(acc[i][3]));
  }
  uk_finish_f32_Mx8_neon(out, acc0, acc1, p, M0);
}

#define UK_DEFINE_BF16_BFMMLA(M0)                                                                  \
  void uk_mmt4d_tile_bf16bf16f32_##M0##x8x4_arm_64_bf16(void* out, const void* lhs, const void* rhs,   \
                                                        const uk_mmt4d_params_t* p) {             \
    uk_tile_bf16_Mx8x4_bfmmla((float*)out, (const bfloat16_t*)lhs, (const bfloat16_t*)rhs, p, M0); \
  }
UK_DEFINE_BF16_BFMMLA(1)
UK_DEFINE_BF16_BFMMLA(2)
UK_DEFINE_BF16_BFMMLA(4)
UK_DEFINE_BF16_BFMMLA(8)

#endif
