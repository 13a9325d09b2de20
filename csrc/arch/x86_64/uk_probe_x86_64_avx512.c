/* Dot-product instruction throughput probes for bench/ (AVX-512; VNNI and BF16 forms): 12
 * independent accumulator chains of one instruction on zmm registers. Returns the operations
 * executed (a multiply-add counts 2): vfmadd231ps 32 per instruction, vdpbf16ps 64,
 * vpdpwssd 64, vpdpbusd 128. Callers check the CPU features first. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define UK_CHAINS(STEP)                                                                      \
  for (int64_t i = 0; i < iterations; ++i) {                                                 \
    STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);                               \
    STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);                             \
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));        \
    __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));      \
  }

/* the 12 chains summed (so none is dead code), with the type's add */
#define UK_SUM12(add) \
  add(add(add(a0, a1), add(a2, a3)), add(add(add(a4, a5), add(a6, a7)), add(add(a8, a9), add(a10, a11))))

/* which: 0 vfmadd231ps, 1 vdpbf16ps, 2 vpdpwssd, 3 vpdpbusd */
double uk_probe_dot_peak_avx512(int32_t which, int64_t iterations) {
  int32_t sink = 0;
  if (which == 0 || which == 1) {
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m512 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    __m512bh bx;
    const __m512i ones = _mm512_set1_epi16(0x3F80); /* bf16 1.0 */
    memcpy(&bx, &ones, sizeof bx);
    if (which == 0) {
#define UK_FMA(a) a = _mm512_fmadd_ps(a, x, y)
      UK_CHAINS(UK_FMA)
#undef UK_FMA
    } else {
#define UK_BF16(a) a = _mm512_dpbf16_ps(a, bx, bx)
      UK_CHAINS(UK_BF16)
#undef UK_BF16
    }
    sink = _mm512_reduce_add_ps(UK_SUM12(_mm512_add_ps)) > 1e30f;
  } else {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m512i a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512i x = _mm512_set1_epi8(1);
    if (which == 2) {
#define UK_WSSD(a) a = _mm512_dpwssd_epi32(a, x, x)
      UK_CHAINS(UK_WSSD)
#undef UK_WSSD
    } else {
#define UK_BUSD(a) a = _mm512_dpbusd_epi32(a, x, x)
      UK_CHAINS(UK_BUSD)
#undef UK_BUSD
    }
    sink = _mm512_reduce_add_epi32(UK_SUM12(_mm512_add_epi32)) == 12345;
  }
  static const double ops[] = {32.0, 64.0, 64.0, 128.0};
  return (double)iterations * 12.0 * ops[which & 3] + sink;
}
#endif
