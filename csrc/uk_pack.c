/* uk_pack: row-major (any strides) -> [out0][out1][T0][T1] with zero padding
 * and optional inner/outer transposes.  See uk_api.h for the exact mapping.
 *
 * Speed: the common tile shapes get versions with compile-time tile sizes
 * (fully unrolled gathers/copies); under an outer transpose (the rhs [K][N]
 * -> [N1][K1][N0][K0] walk) the k loop is blocked so that one block of input
 * rows is reused across all output panels while it is in cache and TLB. */
#include <string.h>

#include "uk_api.h"
#include "uk_mmt4d_internal.h" /* the 16-bit float conversions */

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_PACK_K_BLOCK 32 /* input rows per block under an outer transpose */

/* One ELEM type; T0c/T1c are compile-time constants in the specialisations
 * (or the runtime sizes in the general version). */
#define UK_DEFINE_PACK_IMPL(SUFFIX, ELEM, OUT, CONV)                                                    \
  UK_INLINE void uk_pack_tile_##SUFFIX(OUT* restrict dst, const ELEM* restrict in,          \
                                       const uk_pack_params_t* p, int64_t o0, int64_t o1,    \
                                       const int64_t T0, const int64_t T1, int tin, int tout) { \
    const int64_t TR = tin ? T1 : T0, TC = tin ? T0 : T1;                                    \
    const int64_t s0 = p->in_stride0, s1 = p->in_stride1;                                    \
    const int64_t r0 = (tout ? o1 : o0) * TR, c0 = (tout ? o0 : o1) * TC;                    \
    const ELEM* src = in + r0 * s0 + c0 * s1;                                                \
    if (r0 + TR <= p->in_size0 && c0 + TC <= p->in_size1) {                                  \
      if (!tin) {                                                                            \
        if (s1 == 1) {                                                                       \
          for (int64_t t0 = 0; t0 < T0; ++t0)                                                \
            for (int64_t t1 = 0; t1 < T1; ++t1) dst[t0 * T1 + t1] = CONV(src[t0 * s0 + t1]);       \
        } else {                                                                             \
          for (int64_t t0 = 0; t0 < T0; ++t0)                                                \
            for (int64_t t1 = 0; t1 < T1; ++t1) dst[t0 * T1 + t1] = CONV(src[t0 * s0 + t1 * s1]);  \
        }                                                                                    \
      } else { /* dst[t0][t1] = in[r0 + t1][c0 + t0] */                                      \
        if (s1 == 1) {                                                                       \
          for (int64_t t1 = 0; t1 < T1; ++t1)                                                \
            for (int64_t t0 = 0; t0 < T0; ++t0) dst[t0 * T1 + t1] = CONV(src[t1 * s0 + t0]);       \
        } else {                                                                             \
          for (int64_t t1 = 0; t1 < T1; ++t1)                                                \
            for (int64_t t0 = 0; t0 < T0; ++t0) dst[t0 * T1 + t1] = CONV(src[t1 * s0 + t0 * s1]); \
        }                                                                                    \
      }                                                                                      \
      return;                                                                                \
    }                                                                                        \
    for (int64_t t0 = 0; t0 < T0; ++t0) { /* edge tile: zero padding */                     \
      for (int64_t t1 = 0; t1 < T1; ++t1) {                                                  \
        const int64_t r = r0 + (tin ? t1 : t0), c = c0 + (tin ? t0 : t1);                    \
        dst[t0 * T1 + t1] = (r < p->in_size0 && c < p->in_size1) ? CONV(in[r * s0 + c * s1]) : (OUT)0; \
      }                                                                                      \
    }                                                                                        \
  }                                                                                          \
  UK_INLINE void uk_pack_impl_##SUFFIX(const uk_pack_params_t* p, const int64_t T0,          \
                                       const int64_t T1) {                                   \
    const ELEM* in = (const ELEM*)p->in_buffer + p->in_offset;                               \
    OUT* out = (OUT*)p->out_buffer + p->out_offset;                                        \
    const int tin = (p->flags & UK_PACK_TRANSPOSE_INNER) != 0;                               \
    const int tout = (p->flags & UK_PACK_TRANSPOSE_OUTER) != 0;                              \
    if (!tout) {                                                                             \
      for (int64_t o0 = 0; o0 < p->out_size0; ++o0)                                          \
        for (int64_t o1 = 0; o1 < p->out_size1; ++o1)                                        \
          uk_pack_tile_##SUFFIX(out + o0 * p->out_stride0 + o1 * T0 * T1, in, p, o0, o1, T0, T1, tin, 0); \
      return;                                                                                \
    }                                                                                        \
    /* Full tiles of the rhs walk (both transposes, T1 == 1, unit column    \
     * stride): each tile is T0 contiguous input elements of one row; copy    \
     * them in a tight loop without per-tile bookkeeping. */                  \
    int64_t fast_o0 = 0, fast_o1 = 0;                                                        \
    if (tin && T1 == 1 && p->in_stride1 == 1) {                                              \
      fast_o0 = p->in_size1 / T0 < p->out_size0 ? p->in_size1 / T0 : p->out_size0;           \
      fast_o1 = p->in_size0 < p->out_size1 ? p->in_size0 : p->out_size1;                     \
    }                                                                                        \
    for (int64_t b1 = 0; b1 < p->out_size1; b1 += UK_PACK_K_BLOCK) {                        \
      const int64_t e1 = b1 + UK_PACK_K_BLOCK < p->out_size1 ? b1 + UK_PACK_K_BLOCK : p->out_size1; \
      const int64_t fe1 = e1 < fast_o1 ? e1 : fast_o1;                                        \
      for (int64_t o0 = 0; o0 < p->out_size0; ++o0) {                                        \
        int64_t o1 = b1;                                                                     \
        if (o0 < fast_o0) {                                                                  \
          const ELEM* restrict src = in + b1 * p->in_stride0 + o0 * T0;                      \
          OUT* restrict dst = out + o0 * p->out_stride0 + b1 * T0;                          \
          for (; o1 < fe1; ++o1, src += p->in_stride0, dst += T0)                            \
            for (int64_t t0 = 0; t0 < T0; ++t0) dst[t0] = CONV(src[t0]);                           \
        }                                                                                    \
        for (; o1 < e1; ++o1)                                                                \
          uk_pack_tile_##SUFFIX(out + o0 * p->out_stride0 + o1 * T0 * T1, in, p, o0, o1, T0, T1, tin, 1); \
      }                                                                                      \
    }                                                                                        \
  }

#define UK_SAME(x) (x)
/* Widening packs: 16-bit float inputs written as f32 bits (exact). Branch-free
 * conversions, so the contiguous copies vectorise. */
static inline uint32_t uk_bf16_bits_to_f32_bits(uint16_t h) { return (uint32_t)h << 16; }
static inline uint32_t uk_f16_bits_to_f32_bits(uint16_t h) {
  union { float f; uint32_t u; } o = {uk_f16_to_f32(h)};
  return o.u;
}
UK_DEFINE_PACK_IMPL(x32, uint32_t, uint32_t, UK_SAME)
UK_DEFINE_PACK_IMPL(x16, uint16_t, uint16_t, UK_SAME)
UK_DEFINE_PACK_IMPL(x8, uint8_t, uint8_t, UK_SAME)
UK_DEFINE_PACK_IMPL(wf16, uint16_t, uint32_t, uk_f16_bits_to_f32_bits)
UK_DEFINE_PACK_IMPL(wbf16, uint16_t, uint32_t, uk_bf16_bits_to_f32_bits)
/* Narrowing pack: f32 bits rounded to nearest even into bf16 (uk_f32_to_bf16, branch-free
 * select for NaN so the contiguous copies vectorise). */
static inline uint16_t uk_f32_bits_to_bf16_bits(uint32_t u) {
  const uint16_t rounded = (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  return (u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)((u >> 16) | 0x40u) : rounded;
}
UK_DEFINE_PACK_IMPL(nbf16, uint32_t, uint16_t, uk_f32_bits_to_bf16_bits)

#define UK_PACK_CASE(SUFFIX, A, B) \
  if (T0 == A && T1 == B) { uk_pack_impl_##SUFFIX(p, A, B); return; }

#if defined(__x86_64__)
int64_t uk_pack_rhs_pairs_avx512(const uk_pack_params_t* p, int64_t* full_n);
int64_t uk_pack_lhs_narrow_bf16_avx512(const uk_pack_params_t* p);
int64_t uk_pack_rhs_x8_quads_avx2(const uk_pack_params_t* p, int64_t* full_n);
int64_t uk_pack_lhs_f32_avx2(const uk_pack_params_t* p);
int64_t uk_pack_rhs_widen_f16_avx2(const uk_pack_params_t* p, int64_t* full_n);
#endif

static void uk_pack_widen_portable(const uk_pack_params_t* p);

#if defined(__x86_64__)
/* What a SIMD pack leaves: it did the first outer_done output tiles (row panels; column
 * panels with TRANSPOSE_OUTER) over their first inner_done K tiles (inner_done * T1 input
 * elements along K). `rest` (given params without cpu_data: portable code) packs the
 * remaining K of those tiles, then the remaining tiles whole. */
static void uk_pack_rest(const uk_pack_params_t* p, int64_t outer_done, int64_t inner_done,
                         void (*rest)(const uk_pack_params_t*)) {
  const int t = (p->flags & UK_PACK_TRANSPOSE_OUTER) != 0; /* input dim 1 runs along the tiles */
  const int64_t T0 = p->tile_size0, T1 = p->tile_size1;
  const int64_t outer_stride = t ? p->in_stride1 : p->in_stride0, inner_stride = t ? p->in_stride0 : p->in_stride1;
  uk_pack_params_t r = *p;
  r.cpu_data = NULL;
  int64_t* inner_size = t ? &r.in_size0 : &r.in_size1;
  r.out_size0 = outer_done;
  r.in_offset = p->in_offset + inner_done * T1 * inner_stride;
  *inner_size = *inner_size - inner_done * T1 > 0 ? *inner_size - inner_done * T1 : 0;
  r.out_offset = p->out_offset + inner_done * T0 * T1;
  r.out_size1 = p->out_size1 - inner_done;
  if (r.out_size0 > 0 && r.out_size1 > 0) rest(&r);
  r = *p;
  r.cpu_data = NULL;
  int64_t* outer_size = t ? &r.in_size1 : &r.in_size0;
  r.in_offset = p->in_offset + outer_done * T0 * outer_stride;
  *outer_size -= outer_done * T0;
  r.out_offset = p->out_offset + outer_done * p->out_stride0;
  r.out_size0 = p->out_size0 - outer_done;
  if (r.out_size0 > 0) rest(&r);
}

/* The AVX2 lhs pack (8x8 transposes; f32, or f16 widened with F16C) over the full row
 * panels and the first multiple of 8 columns, then `rest` (portable code) for the
 * remaining columns of those panels and for the partial last panel. Returns 0, having
 * done nothing, when the layout is not one the SIMD path handles. */
static int uk_pack_lhs_simd(const uk_pack_params_t* p, void (*rest)(const uk_pack_params_t*)) {
  const int64_t done_cols = uk_pack_lhs_f32_avx2(p);
  if (done_cols <= 0) return 0;
  const int64_t T0 = p->tile_size0;
  const int64_t full_panels = p->in_size0 / T0 < p->out_size0 ? p->in_size0 / T0 : p->out_size0;
  uk_pack_rest(p, full_panels, done_cols, rest);
  return 1;
}

/* A SIMD rhs pack (both transposes) over the full column tiles x the K tiles it returns (it
 * sets *full_n, 0 when the layout is not its own), then `rest` (portable code) for what it
 * left. Returns 0, having done nothing, when the SIMD pack did nothing. */
static int uk_pack_rhs_simd(const uk_pack_params_t* p, int64_t (*simd)(const uk_pack_params_t*, int64_t*),
                            void (*rest)(const uk_pack_params_t*)) {
  int64_t full_n = 0;
  const int64_t k_tiles = simd(p, &full_n);
  if (full_n <= 0) return 0;
  uk_pack_rest(p, full_n, k_tiles, rest);
  return 1;
}
#endif

/* f16 -> f32 widening packs: the F16C paths for the layouts the dispatch uses, the
 * portable code for what they leave (partial tiles, padding). */
static void uk_pack_widen_f16(const uk_pack_params_t* p) {
#if defined(__x86_64__)
  if (p->cpu_data && (p->cpu_data[0] & UK_CPU_X86_AVX2_FMA) && (p->cpu_data[0] & UK_CPU_X86_F16C)) {
    if (uk_pack_lhs_simd(p, uk_pack_widen_portable)) return;
    if (uk_pack_rhs_simd(p, uk_pack_rhs_widen_f16_avx2, uk_pack_widen_portable)) return;
  }
#endif
  uk_pack_widen_portable(p);
}

static void uk_pack_x32(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0, T1 = p->tile_size1;
#if defined(__x86_64__)
  if (p->cpu_data && (p->cpu_data[0] & UK_CPU_X86_AVX2_FMA)) {
    if (uk_pack_lhs_simd(p, uk_pack_x32)) return;
  }
#endif
  UK_PACK_CASE(x32, 16, 1)
  UK_PACK_CASE(x32, 8, 1)
  UK_PACK_CASE(x32, 6, 1)
  UK_PACK_CASE(x32, 4, 1)
  UK_PACK_CASE(x32, 2, 1)
  UK_PACK_CASE(x32, 1, 1)
  uk_pack_impl_x32(p, T0, T1);
}

#if defined(__x86_64__)
static void uk_pack_x16(const uk_pack_params_t* p);

/* The lhs of 16-bit pairs (K0 = 2, no conversion): a pair is 32 bits, so the packed layout
 * [M1][K1][T0][2] is the f32 lhs layout [M1][K1][T0] over pairs, and the AVX2 8x8 transposes
 * pack the full row panels x the first multiple of 8 pairs; the portable code does the rest
 * (an odd last column, partial panels). Measured: bf16 4096x128x4096 spent 47% of its time in
 * the portable pack of this lhs. Returns 0, having done nothing, for other layouts. */
static int uk_pack_lhs_pairs_simd(const uk_pack_params_t* p) {
  if ((p->flags & ~(uint32_t)0xFF) != 0 || p->tile_size1 != 2 || p->in_stride1 != 1 || (p->in_stride0 & 1) ||
      (p->in_offset & 1) || (p->out_offset & 1) || (p->out_stride0 & 1))
    return 0;
  uk_pack_params_t q = *p;
  q.flags = UK_PACK_TYPE_F32;
  q.tile_size1 = 1;
  q.in_stride0 = p->in_stride0 / 2;
  q.in_offset = p->in_offset / 2;
  q.in_size1 = p->in_size1 / 2; /* whole pairs */
  q.out_stride0 = p->out_stride0 / 2;
  q.out_offset = p->out_offset / 2;
  const int64_t pairs = uk_pack_lhs_f32_avx2(&q);
  if (pairs <= 0) return 0;
  const int64_t T0 = p->tile_size0;
  const int64_t full_panels = p->in_size0 / T0 < p->out_size0 ? p->in_size0 / T0 : p->out_size0;
  uk_pack_rest(p, full_panels, pairs, uk_pack_x16);
  return 1;
}
#endif

static void uk_pack_x16(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0, T1 = p->tile_size1;
#if defined(__x86_64__)
  if (p->cpu_data && (p->cpu_data[0] & UK_CPU_X86_AVX2_FMA) && uk_pack_lhs_pairs_simd(p)) return;
  if (p->cpu_data && (p->cpu_data[0] & UK_CPU_X86_AVX512_BASE) && uk_pack_rhs_simd(p, uk_pack_rhs_pairs_avx512, uk_pack_x16))
    return;
#endif
  UK_PACK_CASE(x16, 16, 1)
  UK_PACK_CASE(x16, 8, 1)
  UK_PACK_CASE(x16, 6, 1)
  UK_PACK_CASE(x16, 4, 1)
  UK_PACK_CASE(x16, 2, 1)
  UK_PACK_CASE(x16, 1, 1)
  UK_PACK_CASE(x16, 16, 2)
  UK_PACK_CASE(x16, 8, 2)
  UK_PACK_CASE(x16, 4, 2)
  UK_PACK_CASE(x16, 2, 2)
  UK_PACK_CASE(x16, 1, 2)
  uk_pack_impl_x16(p, T0, T1);
}

static void uk_pack_x8(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0, T1 = p->tile_size1;
#if defined(__x86_64__)
  if (p->cpu_data && (p->cpu_data[0] & UK_CPU_X86_AVX2_FMA) && uk_pack_rhs_simd(p, uk_pack_rhs_x8_quads_avx2, uk_pack_x8))
    return;
#endif
  UK_PACK_CASE(x8, 16, 4)
  UK_PACK_CASE(x8, 8, 4)
  UK_PACK_CASE(x8, 4, 4)
  UK_PACK_CASE(x8, 2, 4)
  UK_PACK_CASE(x8, 1, 4)
  UK_PACK_CASE(x8, 16, 2)
  UK_PACK_CASE(x8, 8, 2)
  UK_PACK_CASE(x8, 4, 2)
  UK_PACK_CASE(x8, 2, 2)
  UK_PACK_CASE(x8, 1, 2)
  uk_pack_impl_x8(p, T0, T1);
}

/* int4 output: element e of the tiled layout in byte e/2 (low nibble for even e), taken
 * from the low nibble of the int8 input (two's complement [-8, 7], or ml_dtypes' int4).
 * Element-wise like the portable pack; used for weights (packed once). */
static int uk_pack_s4(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0, T1 = p->tile_size1;
  if (T1 % 2 || p->out_offset % 2 || p->out_stride0 % 2) return UK_STATUS_BAD_ARGUMENT;
  const uint8_t* in = (const uint8_t*)p->in_buffer + p->in_offset;
  uint8_t* out = (uint8_t*)p->out_buffer + p->out_offset / 2;
  const int tin = (p->flags & UK_PACK_TRANSPOSE_INNER) != 0, tout = (p->flags & UK_PACK_TRANSPOSE_OUTER) != 0;
  const int64_t TR = tin ? T1 : T0, TC = tin ? T0 : T1, s0 = p->in_stride0, s1 = p->in_stride1;
  for (int64_t o0 = 0; o0 < p->out_size0; ++o0)
    for (int64_t o1 = 0; o1 < p->out_size1; ++o1) {
      uint8_t* dst = out + (o0 * p->out_stride0 + o1 * T0 * T1) / 2;
      const int64_t r0 = (tout ? o1 : o0) * TR, c0 = (tout ? o0 : o1) * TC;
      for (int64_t t0 = 0; t0 < T0; ++t0)
        for (int64_t t1 = 0; t1 < T1; t1 += 2) {
          uint8_t nib[2];
          for (int q = 0; q < 2; ++q) {
            const int64_t r = r0 + (tin ? t1 + q : t0), c = c0 + (tin ? t0 : t1 + q);
            nib[q] = (r < p->in_size0 && c < p->in_size1) ? (uint8_t)(in[r * s0 + c * s1] & 0x0Fu) : 0u;
          }
          dst[(t0 * T1 + t1) / 2] = (uint8_t)(nib[0] | (nib[1] << 4));
        }
    }
  return UK_STATUS_OK;
}

static void uk_pack_widen_portable(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0, T1 = p->tile_size1;
  if (p->flags & UK_PACK_WIDEN_F16) {
    if (T1 == 1 && T0 == 16) uk_pack_impl_wf16(p, 16, 1);
    else if (T1 == 1 && T0 == 6) uk_pack_impl_wf16(p, 6, 1);
    else uk_pack_impl_wf16(p, T0, T1);
  } else {
    if (T1 == 1 && T0 == 16) uk_pack_impl_wbf16(p, 16, 1);
    else if (T1 == 1 && T0 == 6) uk_pack_impl_wbf16(p, 6, 1);
    else uk_pack_impl_wbf16(p, T0, T1);
  }
}

static void uk_pack_narrow_bf16(const uk_pack_params_t* p) {
  const int64_t T0 = p->tile_size0, T1 = p->tile_size1;
#if defined(__x86_64__)
  if (p->cpu_data && (p->cpu_data[0] & UK_CPU_X86_AVX512_BF16) && (p->cpu_data[0] & UK_CPU_X86_AVX512_BASE)) {
    if (uk_pack_rhs_simd(p, uk_pack_rhs_pairs_avx512, uk_pack_narrow_bf16)) return;
    const int64_t cols = uk_pack_lhs_narrow_bf16_avx512(p);
    if (cols > 0) { /* lhs: the full row panels x the first cols input columns done */
      const int64_t panels = p->in_size0 / T0 < p->out_size0 ? p->in_size0 / T0 : p->out_size0;
      uk_pack_rest(p, panels, cols / T1, uk_pack_narrow_bf16);
      return;
    }
  }
#endif
  uk_pack_impl_nbf16(p, T0, T1); /* edges only where the SIMD packs run: no fixed-size copies */
}

int uk_pack(const uk_pack_params_t* p) {
  if (p->in_size0 < 0 || p->in_size1 < 0 || p->out_size0 < 0 || p->out_size1 < 0 ||
      p->tile_size0 <= 0 || p->tile_size1 <= 0)
    return UK_STATUS_BAD_ARGUMENT;
  if (p->flags & UK_PACK_NARROW_BF16) {
    if ((p->flags & 0xFF) != UK_PACK_TYPE_X16 || p->flags & (UK_PACK_WIDEN_F16 | UK_PACK_WIDEN_BF16))
      return UK_STATUS_BAD_ARGUMENT;
    uk_pack_narrow_bf16(p);
    return UK_STATUS_OK;
  }
  if (p->flags & (UK_PACK_WIDEN_F16 | UK_PACK_WIDEN_BF16)) {
    if ((p->flags & 0xFF) != UK_PACK_TYPE_F32 || (p->flags & UK_PACK_WIDEN_F16 && p->flags & UK_PACK_WIDEN_BF16))
      return UK_STATUS_BAD_ARGUMENT;
    if (p->flags & UK_PACK_WIDEN_F16) uk_pack_widen_f16(p);
    else uk_pack_widen_portable(p);
    return UK_STATUS_OK;
  }
  switch (p->flags & 0xFF) {
    case UK_PACK_TYPE_F32: uk_pack_x32(p); return UK_STATUS_OK;
    case UK_PACK_TYPE_I8: uk_pack_x8(p); return UK_STATUS_OK;
    case UK_PACK_TYPE_X16: uk_pack_x16(p); return UK_STATUS_OK;
    case UK_PACK_TYPE_S4: return uk_pack_s4(p);
    default: return UK_STATUS_UNSUPPORTED_TYPE;
  }
}
