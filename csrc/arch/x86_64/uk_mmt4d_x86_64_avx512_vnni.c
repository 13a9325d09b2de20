/* AVX-512 VNNI tile functions: s8 through vpdpwssd (multiply pairs of s16 and
 * accumulate into s32 in one instruction).  Compiled with the AVX-512 base
 * flags plus -mavx512vnni; called only under UK_CPU_X86_AVX512_VNNI. */
#include "../../uk_mmt4d_internal.h"

#if defined(UK_ARCH_X86_64)
#include <immintrin.h>
#include <string.h>

#define UK_INLINE static inline __attribute__((always_inline))
#define UK_UNROLL _Pragma("GCC unroll 16")
#define UK_S8_MAC(acc, l, r) _mm512_dpwssd_epi32((acc), (l), (r))
#include "uk_mmt4d_x86_64_avx512_s8.inl"
UK_DEFINE_S8_512(1, avx512_vnni)
UK_DEFINE_S8_512(2, avx512_vnni)
UK_DEFINE_S8_512(4, avx512_vnni)
UK_DEFINE_S8_512(8, avx512_vnni)
UK_DEFINE_S8_512(16, avx512_vnni)

#include "uk_mmt4d_x86_64_avx512_vnni_types.inl"
UK_DEFINE_VNNI_TYPES(1)
UK_DEFINE_VNNI_TYPES(2)
UK_DEFINE_VNNI_TYPES(4)
UK_DEFINE_VNNI_TYPES(8)
UK_DEFINE_VNNI_TYPES(16)

#endif
