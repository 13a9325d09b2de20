/* CPU feature detection: cpuid + xgetbv on x86-64 (instruction support AND
 * OS-enabled register state), getauxval on aarch64 Linux, nothing elsewhere. */
#include <string.h>

#include "uk_api.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static uint64_t uk_xgetbv0(void) {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}

void uk_cpu_detect(uint64_t* cpu_data) {
  uint64_t bits = 0;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) { cpu_data[0] = 0; return; }
  const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
  uint64_t xcr0 = osxsave ? uk_xgetbv0() : 0;
  const int os_ymm = (xcr0 & 0x6) == 0x6;            /* XMM + YMM state        */
  const int os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0; /* opmask, ZMM_Hi256, Hi16 */
  unsigned b7 = 0, c7 = 0, a71 = 0;
  if (__get_cpuid_max(0, 0) >= 7) {
    __cpuid_count(7, 0, a, b7, c7, d);
    unsigned bb, cc, dd;
    __cpuid_count(7, 1, a71, bb, cc, dd);
  }
  const int avx2 = (b7 >> 5) & 1;
  if (avx && avx2 && fma && os_ymm) bits |= UK_CPU_X86_AVX2_FMA;
  if (avx && f16c && os_ymm) bits |= UK_CPU_X86_F16C;
  const int f = (b7 >> 16) & 1, dq = (b7 >> 17) & 1, cd = (b7 >> 28) & 1,
            bw = (b7 >> 30) & 1, vl = (b7 >> 31) & 1;
  if ((bits & UK_CPU_X86_AVX2_FMA) && os_zmm && f && dq && cd && bw && vl) {
    bits |= UK_CPU_X86_AVX512_BASE;
    if ((c7 >> 11) & 1) bits |= UK_CPU_X86_AVX512_VNNI;
    if ((a71 >> 5) & 1) bits |= UK_CPU_X86_AVX512_BF16;
  }
  cpu_data[0] = bits;
}

void uk_cpu_model_name(char* buf, int64_t buf_size) {
  if (buf_size <= 0) return;
  char name[49];
  memset(name, 0, sizeof name);
  unsigned r[4];
  if (__get_cpuid_max(0x80000000u, 0) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __cpuid(0x80000002u + i, r[0], r[1], r[2], r[3]);
      memcpy(name + 16 * i, r, 16);
    }
  } else {
    strcpy(name, "unknown x86-64");
  }
  const char* s = name;
  while (*s == ' ') ++s;
  strncpy(buf, s, (size_t)buf_size - 1);
  buf[buf_size - 1] = 0;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

void uk_cpu_detect(uint64_t* cpu_data) {
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  uint64_t bits = 0;
  if (hw & (1ul << 1)) bits |= UK_CPU_ARM_NEON;     /* HWCAP_ASIMD   */
  if (hw & (1ul << 20)) bits |= UK_CPU_ARM_DOTPROD; /* HWCAP_ASIMDDP */
  if (hw2 & (1ul << 13)) bits |= UK_CPU_ARM_I8MM;   /* HWCAP2_I8MM   */
  if (hw2 & (1ul << 14)) bits |= UK_CPU_ARM_BF16;   /* HWCAP2_BF16   */
  /* HWCAP_FPHP (9) and HWCAP_ASIMDHP (10): the kernel reports them together or not at all. */
  if ((hw & (3ul << 9)) == (3ul << 9)) bits |= UK_CPU_ARM_FP16;
  if (hw & (1ul << 23)) bits |= UK_CPU_ARM_FHM;     /* HWCAP_ASIMDFHM */
  cpu_data[0] = bits;
}
void uk_cpu_model_name(char* buf, int64_t buf_size) {
  if (buf_size <= 0) return;
  strncpy(buf, "aarch64", (size_t)buf_size - 1);
  buf[buf_size - 1] = 0;
}

#else
void uk_cpu_detect(uint64_t* cpu_data) { cpu_data[0] = 0; }
void uk_cpu_model_name(char* buf, int64_t buf_size) {
  if (buf_size <= 0) return;
  strncpy(buf, "unknown", (size_t)buf_size - 1);
  buf[buf_size - 1] = 0;
}
#endif
