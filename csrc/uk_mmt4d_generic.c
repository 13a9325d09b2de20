/* Portable tile functions: any M0/N0/K0, plain C, accumulating in place in
 * the output tile (no scratch, no allocation).  The tile shapes the planner
 * uses for the generic ISA level get copies with compile-time sizes, which
 * the compiler unrolls and vectorises for the baseline ISA (SSE2 on x86-64). */
#include <string.h>

#include "uk_mmt4d_internal.h"

#define UK_INLINE static inline __attribute__((always_inline))

/* Sums over K accumulate from zero; with ACCUMULATE the finished sum is then
 * added to out (out + sum, as the SIMD tiles do), so that chained K blocks add
 * block sums instead of running one rounding chain over all of K. Tiles of up
 * to UK_GENERIC_STACK_ELEMS use a stack accumulator; larger (unplanned) ones
 * accumulate in place. */
#define UK_GENERIC_STACK_ELEMS 1024

UK_INLINE void uk_generic_f32_sum(float* restrict acc, const float* restrict lhs,
                                  const float* restrict rhs, const int64_t K, const int64_t rs,
                                  const int64_t M0, const int64_t N0, const int64_t K0) {
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t i = 0; i < M0; ++i)
      for (int64_t kk = 0; kk < K0; ++kk) {
        const float l = lhs[i * K0 + kk];
        for (int64_t j = 0; j < N0; ++j) acc[i * N0 + j] += l * rhs[j * K0 + kk];
      }
    lhs += M0 * K0;
    rhs += rs;
  }
}

UK_INLINE void uk_generic_f32(float* restrict out, const float* restrict lhs,
                              const float* restrict rhs, const uk_mmt4d_params_t* p,
                              const int64_t M0, const int64_t N0, const int64_t K0) {
  if (!(p->flags & UK_FLAG_ACCUMULATE)) {
    memset(out, 0, (size_t)(M0 * N0) * sizeof(float));
    uk_generic_f32_sum(out, lhs, rhs, p->K, uk_rhs_k_stride(p), M0, N0, K0);
  } else if (M0 * N0 <= UK_GENERIC_STACK_ELEMS) {
    float acc[UK_GENERIC_STACK_ELEMS];
    memset(acc, 0, (size_t)(M0 * N0) * sizeof(float));
    uk_generic_f32_sum(acc, lhs, rhs, p->K, uk_rhs_k_stride(p), M0, N0, K0);
    for (int64_t e = 0; e < M0 * N0; ++e) out[e] = out[e] + acc[e];
  } else {
    uk_generic_f32_sum(out, lhs, rhs, p->K, uk_rhs_k_stride(p), M0, N0, K0);
  }
}

/* uint32 arithmetic: overflow wraps (defined behaviour), like the SIMD paths. */
UK_INLINE void uk_generic_s8(uint32_t* restrict out, const int8_t* restrict lhs,
                             const int8_t* restrict rhs, const uk_mmt4d_params_t* p,
                             const int64_t M0, const int64_t N0, const int64_t K0) {
  if (!(p->flags & UK_FLAG_ACCUMULATE)) memset(out, 0, (size_t)(M0 * N0) * sizeof(uint32_t));
  for (int64_t k = 0; k < p->K; ++k) {
    for (int64_t i = 0; i < M0; ++i)
      for (int64_t j = 0; j < N0; ++j) {
        int32_t s = 0;
        for (int64_t kk = 0; kk < K0; ++kk) s += (int32_t)lhs[i * K0 + kk] * (int32_t)rhs[j * K0 + kk];
        out[i * N0 + j] += (uint32_t)s;
      }
    lhs += M0 * K0;
    rhs += uk_rhs_k_stride(p);
  }
}

void uk_mmt4d_tile_f32f32f32_generic(void* out_tile, const void* lhs_panel,
                                     const void* rhs_panel, const uk_mmt4d_params_t* p) {
  float* out = (float*)out_tile;
  const float* lhs = (const float*)lhs_panel;
  const float* rhs = (const float*)rhs_panel;
  if (p->N0 == 8 && p->K0 == 1) {
    switch (p->M0) {
      case 8: uk_generic_f32(out, lhs, rhs, p, 8, 8, 1); return;
      case 4: uk_generic_f32(out, lhs, rhs, p, 4, 8, 1); return;
      case 2: uk_generic_f32(out, lhs, rhs, p, 2, 8, 1); return;
      case 1: uk_generic_f32(out, lhs, rhs, p, 1, 8, 1); return;
      default: break;
    }
  }
  uk_generic_f32(out, lhs, rhs, p, p->M0, p->N0, p->K0);
}

void uk_mmt4d_tile_s8s8s32_generic(void* out_tile, const void* lhs_panel,
                                   const void* rhs_panel, const uk_mmt4d_params_t* p) {
  uint32_t* out = (uint32_t*)out_tile;
  const int8_t* lhs = (const int8_t*)lhs_panel;
  const int8_t* rhs = (const int8_t*)rhs_panel;
  if (p->N0 == 8 && p->K0 == 2) {
    switch (p->M0) {
      case 8: uk_generic_s8(out, lhs, rhs, p, 8, 8, 2); return;
      case 4: uk_generic_s8(out, lhs, rhs, p, 4, 8, 2); return;
      case 2: uk_generic_s8(out, lhs, rhs, p, 2, 8, 2); return;
      case 1: uk_generic_s8(out, lhs, rhs, p, 1, 8, 2); return;
      default: break;
    }
  }
  uk_generic_s8(out, lhs, rhs, p, p->M0, p->N0, p->K0);
}

/* ---- the other element types: one macro per accumulator family ---------- */

static inline float uk_load_f16(const uint16_t* p) { return uk_f16_to_f32(*p); }
static inline float uk_load_bf16(const uint16_t* p) { return uk_bf16_to_f32(*p); }

/* Float inputs of type T converted exactly to f32 (LOAD), f32 accumulator; the
 * same from-zero-then-add ACCUMULATE rule as f32. */
#define UK_DEFINE_GENERIC_FLOAT(NAME, T, LOAD)                                                  \
  static void uk_generic_sum_##NAME(float* restrict acc, const T* restrict lhs,                 \
                                    const T* restrict rhs, const uk_mmt4d_params_t* p) {        \
    const int64_t M0 = p->M0, N0 = p->N0, K0 = p->K0;                                          \
    for (int64_t k = 0; k < p->K; ++k) {                                                        \
      for (int64_t i = 0; i < M0; ++i)                                                          \
        for (int64_t kk = 0; kk < K0; ++kk) {                                                   \
          const float l = LOAD(&lhs[i * K0 + kk]);                                              \
          for (int64_t j = 0; j < N0; ++j) acc[i * N0 + j] += l * LOAD(&rhs[j * K0 + kk]);      \
        }                                                                                       \
      lhs += M0 * K0;                                                                           \
      rhs += uk_rhs_k_stride(p);                                                                \
    }                                                                                           \
  }                                                                                             \
  void uk_mmt4d_tile_##NAME##_generic(void* out_tile, const void* lhs_panel,                    \
                                      const void* rhs_panel, const uk_mmt4d_params_t* p) {      \
    float* out = (float*)out_tile;                                                              \
    const int64_t n = (int64_t)p->M0 * p->N0;                                                   \
    if (!(p->flags & UK_FLAG_ACCUMULATE)) {                                                     \
      memset(out, 0, (size_t)n * sizeof(float));                                                \
      uk_generic_sum_##NAME(out, (const T*)lhs_panel, (const T*)rhs_panel, p);                  \
    } else if (n <= UK_GENERIC_STACK_ELEMS) {                                                   \
      float acc[UK_GENERIC_STACK_ELEMS];                                                        \
      memset(acc, 0, (size_t)n * sizeof(float));                                                \
      uk_generic_sum_##NAME(acc, (const T*)lhs_panel, (const T*)rhs_panel, p);                  \
      for (int64_t e = 0; e < n; ++e) out[e] = out[e] + acc[e];                                 \
    } else {                                                                                    \
      uk_generic_sum_##NAME(out, (const T*)lhs_panel, (const T*)rhs_panel, p);                  \
    }                                                                                           \
  }

UK_DEFINE_GENERIC_FLOAT(f16f16f32, uint16_t, uk_load_f16)
UK_DEFINE_GENERIC_FLOAT(bf16bf16f32, uint16_t, uk_load_bf16)

/* Integer inputs, int32 accumulator with wrapping (mod 2^32) arithmetic, like
 * the SIMD paths (vpmaddwd's single overflow case, -32768 * -32768 * 2, wraps). */
#define UK_DEFINE_GENERIC_INT(NAME, TL, TR)                                                     \
  void uk_mmt4d_tile_##NAME##_generic(void* out_tile, const void* lhs_panel,                    \
                                      const void* rhs_panel, const uk_mmt4d_params_t* p) {      \
    uint32_t* restrict out = (uint32_t*)out_tile;                                               \
    const TL* restrict lhs = (const TL*)lhs_panel;                                              \
    const TR* restrict rhs = (const TR*)rhs_panel;                                              \
    const int64_t M0 = p->M0, N0 = p->N0, K0 = p->K0;                                          \
    if (!(p->flags & UK_FLAG_ACCUMULATE)) memset(out, 0, (size_t)(M0 * N0) * sizeof(uint32_t)); \
    for (int64_t k = 0; k < p->K; ++k) {                                                        \
      for (int64_t i = 0; i < M0; ++i)                                                          \
        for (int64_t j = 0; j < N0; ++j) {                                                      \
          uint32_t s = 0;                                                                       \
          for (int64_t kk = 0; kk < K0; ++kk)                                                   \
            s += (uint32_t)((int32_t)lhs[i * K0 + kk] * (int32_t)rhs[j * K0 + kk]);             \
          out[i * N0 + j] += s;                                                                 \
        }                                                                                       \
      lhs += M0 * K0;                                                                           \
      rhs += uk_rhs_k_stride(p);                                                                \
    }                                                                                           \
  }

UK_DEFINE_GENERIC_INT(s16s16s32, int16_t, int16_t)
UK_DEFINE_GENERIC_INT(u8s8s32, uint8_t, int8_t)

/* int8 x int4: the rhs tile [N0][K0] holds nibbles, element e in byte e/2 (low nibble
 * for even e, high for odd), sign-extended from 4 bits. */
static inline int32_t uk_s4_at(const uint8_t* rhs, int64_t e) {
  const uint8_t b = rhs[e >> 1];
  return (int32_t)(int8_t)(uint8_t)((e & 1) ? (b & 0xF0u) : (uint8_t)(b << 4)) >> 4;
}

void uk_mmt4d_tile_s8s4s32_generic(void* out_tile, const void* lhs_panel, const void* rhs_panel,
                                   const uk_mmt4d_params_t* p) {
  uint32_t* restrict out = (uint32_t*)out_tile;
  const int8_t* restrict lhs = (const int8_t*)lhs_panel;
  const uint8_t* restrict rhs = (const uint8_t*)rhs_panel;
  const int64_t M0 = p->M0, N0 = p->N0, K0 = p->K0;
  if (!(p->flags & UK_FLAG_ACCUMULATE)) memset(out, 0, (size_t)(M0 * N0) * sizeof(uint32_t));
  for (int64_t k = 0; k < p->K; ++k) {
    for (int64_t i = 0; i < M0; ++i)
      for (int64_t j = 0; j < N0; ++j) {
        uint32_t s = 0;
        for (int64_t kk = 0; kk < K0; ++kk) s += (uint32_t)((int32_t)lhs[i * K0 + kk] * uk_s4_at(rhs, j * K0 + kk));
        out[i * N0 + j] += s;
      }
    lhs += M0 * K0;
    rhs += uk_rhs_k_stride(p) / 2;
  }
}
