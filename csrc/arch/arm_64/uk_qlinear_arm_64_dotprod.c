/* Decode kernels of uk_qlinear_run on aarch64 with the dot-product extension (compiled with
 * -march=armv8.2-a+dotprod; called only under UK_CPU_ARM_DOTPROD). sdot (s8 x s8, 4 products
 * per 32-bit lane) on the layout's 64-byte blocks as four 16-byte registers of 4 columns x 4 K:
 *  - int8: the s8 weights and x (UK_QX_S8) as they are;
 *  - int4: the offset nibbles w + 8 (0..15, non-negative as s8: low nibbles one K step, high
 *    nibbles the next), a group's dot minus 8 * the group's sum of x.
 * Exact wherever the true dot fits in int32. The float part multiplies then adds (no fused
 * multiply-add), as aarch64's general path scales groups in portable C: the results equal it
 * bit for bit (csrc/uk_qlinear_internal.h). */
#include "../../uk_qlinear_internal.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")

UK_INLINE int8x16_t uk_dup_quad(const uint8_t* p) {
  int32_t q;
  memcpy(&q, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(q));
}

/* Tile u of panel p (16 columns: four registers) for rows [m0, m0 + M0) (compile-time M0). */
UK_INLINE void uk_qgemv_tile_dotprod(const uk_qgemv_args_t* a, const int64_t p, const int u, const int64_t m0,
                                     const int M0) {
  const int64_t Kp = a->Kp, G = a->G, steps = a->steps;
  const int s4 = a->bits == 4;
  const uint8x16_t low = vdupq_n_u8(0x0F);
  float32x4_t facc[4][4];
  UK_UNROLL for (int i = 0; i < M0; ++i) UK_UNROLL for (int c = 0; c < 4; ++c) facc[i][c] = vdupq_n_f32(0.0f);
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* chunk = a->w + (p * G + g) * a->chunk_bytes;
    const uint8_t* wp = chunk + 64 * u;
    const uint8_t* xp = a->xq + m0 * Kp + g * a->gk;
    int32x4_t acc[4][4];
    UK_UNROLL for (int i = 0; i < M0; ++i) UK_UNROLL for (int c = 0; c < 4; ++c) acc[i][c] = vdupq_n_s32(0);
    for (int64_t s = 0; s < steps; ++s) {
      const uint8_t* blk = wp + 256 * s;
      UK_UNROLL for (int c = 0; c < 4; ++c) {
        const uint8x16_t v = vld1q_u8(blk + 16 * c);
        if (s4) {
          const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, low));
          const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
          UK_UNROLL for (int i = 0; i < M0; ++i) {
            acc[i][c] = vdotq_s32(acc[i][c], lo, uk_dup_quad(xp + i * Kp + 8 * s));
            acc[i][c] = vdotq_s32(acc[i][c], hi, uk_dup_quad(xp + i * Kp + 8 * s + 4));
          }
        } else {
          UK_UNROLL for (int i = 0; i < M0; ++i)
            acc[i][c] = vdotq_s32(acc[i][c], vreinterpretq_s8_u8(v), uk_dup_quad(xp + i * Kp + 4 * s));
        }
      }
    }
    const float* scales = uk_qchunk_scales(a, chunk) + 16 * u;
    UK_UNROLL for (int i = 0; i < M0; ++i) {
      const int32x4_t corr = vdupq_n_s32(s4 ? (int32_t)((uint32_t)a->xsum[(m0 + i) * G + g] * 8u) : 0);
      UK_UNROLL for (int c = 0; c < 4; ++c) {
        const float32x4_t f = vcvtq_f32_s32(vsubq_s32(acc[i][c], corr));
        const float32x4_t prod = vmulq_f32(f, vld1q_f32(scales + 4 * c));
        facc[i][c] = a->grouped ? vaddq_f32(facc[i][c], prod) : prod;
      }
    }
  }
  const int64_t n0 = p * UK_QLINEAR_PANEL + 16 * u, nn = a->N - n0;
  if (nn <= 0) return;
  UK_UNROLL for (int i = 0; i < M0; ++i) {
    float y[16];
    const float32x4_t sxv = vdupq_n_f32(a->sx[m0 + i]);
    UK_UNROLL for (int c = 0; c < 4; ++c) vst1q_f32(y + 4 * c, vmulq_f32(facc[i][c], sxv));
    memcpy(a->out + (m0 + i) * a->out_stride0 + (n0 - a->col0), y, (size_t)(nn < 16 ? nn : 16) * sizeof(float));
  }
}

void uk_qgemv_arm_64_dotprod(const uk_qgemv_args_t* a, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t m0 = 0; m0 < a->M;) {
      const int64_t rows = a->M - m0;
      const int M0 = rows >= 4 ? 4 : (int)rows;
      for (int u = 0; u < 4; ++u) {
        switch (M0) {
          case 4: uk_qgemv_tile_dotprod(a, p, u, m0, 4); break;
          case 3: uk_qgemv_tile_dotprod(a, p, u, m0, 3); break;
          case 2: uk_qgemv_tile_dotprod(a, p, u, m0, 2); break;
          default: uk_qgemv_tile_dotprod(a, p, u, m0, 1); break;
        }
      }
      m0 += M0;
    }
  }
}
#endif
