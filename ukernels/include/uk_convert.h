/* Scalar conversions of the 16-bit float formats (exact widening; round-to-nearest-even
 * narrowing with IEEE NaN/Inf behaviour). One definition for the handwritten runtime (generic
 * tiles, packs, the write-back) and the generated kernels that store f16/bf16 results, so both
 * round alike. Header-only (static inline); needs only <stdint.h>. */
#ifndef UK_CONVERT_H
#define UK_CONVERT_H

#include <stdint.h>

static inline float uk_bf16_to_f32(uint16_t h) {
  union { uint32_t u; float f; } v = {(uint32_t)h << 16};
  return v.f;
}
static inline uint16_t uk_f32_to_bf16(float f) {
  union { float f; uint32_t u; } v = {f};
  if ((v.u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((v.u >> 16) | 0x40u); /* quiet NaN */
  return (uint16_t)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float uk_f16_to_f32(uint16_t h) {
  /* Giesen's half_to_float: rebias the exponent, then fix Inf/NaN and renormalise
   * subnormals with one float subtract (selects rather than loops: vectorises in packs) */
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  union { uint32_t u; float f; } o = {(uint32_t)(h & 0x7FFFu) << 13}, magic = {113u << 23};
  const uint32_t exp = o.u & 0x0F800000u;
  o.u += (127u - 15u) << 23;
  if (exp == 0x0F800000u) o.u += (128u - 16u) << 23; /* Inf / NaN (payload kept) */
  if (exp == 0) { o.u += 1u << 23; o.f -= magic.f; }  /* zero / subnormal */
  o.u |= sign;
  return o.f;
}
static inline uint16_t uk_f32_to_f16(float f) {
  union { float f; uint32_t u; } v = {f};
  const uint32_t sign = (v.u >> 16) & 0x8000u, a = v.u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu)); /* NaN stays NaN */
  if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds past 65504 -> Inf */
  if (a < 0x38800000u) { /* result subnormal or zero: add 0.5 (as a float) and take the low bits */
    union { uint32_t u; float f; } x = {a}, half = {0x3F000000u};
    x.f += half.f; /* the FPU rounds to nearest even at the 2^-24 position */
    return (uint16_t)(sign | (x.u - half.u));
  }
  const uint32_t r = a + 0xC8000FFFu + ((a >> 13) & 1u); /* rebias exponent and round to nearest even */
  return (uint16_t)(sign | (r >> 13));
}

#endif
