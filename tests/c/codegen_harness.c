/* Standalone exact test of one generated mmt4d kernel, for targets this host
 * cannot run natively (built with a cross compiler, run under qemu-user).
 * Compile with -DKERNEL_SOURCE="path.c" -DKERNEL_NAME=... -DTILE_M0=.. -DTILE_N0=..
 * -DIS_S8=0|1; prints "N passed, M failed".
 * With -DWITH_HANDWRITTEN=1 (linked with the runtime's objects) each call is also made through
 * uk_mmt4d with this CPU's bits, which must pick a handwritten tile of the same shape (not the
 * generic one), and both outputs must agree bit for bit: ukernel-vs-codegen on this target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include KERNEL_SOURCE

#if WITH_HANDWRITTEN
void uk_cpu_detect(uint64_t* cpu_data);
#endif

static unsigned long long state = 88172645463325252ull;
static long long rnd(long long lo, long long hi) {
  state ^= state << 13; state ^= state >> 7; state ^= state << 17;
  return lo + (long long)(state % (unsigned long long)(hi - lo + 1));
}

#if IS_S8
typedef int8_t in_t;
typedef int32_t acc_t;
#ifndef TILE_K0
#define TILE_K0 2
#endif
#define TYPE UK_TYPE_S8S8S32
#else
typedef float in_t;
typedef float acc_t;
#define TILE_K0 1
#define TYPE UK_TYPE_F32F32F32
#endif

int main(void) {
#if WITH_HANDWRITTEN
  uint64_t cpu[1];
  uk_cpu_detect(cpu);
  const char* tile = uk_mmt4d_tile_name(TYPE, TILE_M0, TILE_N0, TILE_K0, cpu);
  printf("handwritten tile: %s\n", tile);
  if (!strcmp(tile, "generic") || !strcmp(tile, "none")) {
    printf("no handwritten %dx%dx%d tile on this CPU\n", TILE_M0, TILE_N0, TILE_K0);
    return 2;
  }
#endif
  const long long shapes[][3] = {{1, 1, 1}, {2, 3, 1000}, {5, 7, 13}, {9, 9, 9}, {0, 3, 4}, {3, 0, 4}, {3, 4, 0}};
  int passed = 0, failed = 0;
  for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; ++s)
    for (int acc = 0; acc < 2; ++acc) {
      const long long M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], pad = 3;
      const long long ls = K * TILE_M0 * TILE_K0 + pad, rs = K * TILE_N0 * TILE_K0 + pad, os = N * TILE_M0 * TILE_N0 + pad;
      const long long ln = pad + (M ? M : 1) * ls, rn = pad + (N ? N : 1) * rs, on = pad + (M ? M : 1) * os;
      in_t* lhs = malloc(ln * sizeof(in_t)); in_t* rhs = malloc(rn * sizeof(in_t));
      acc_t* out = malloc(on * sizeof(acc_t)); long long* ref = malloc(on * sizeof(long long));
      for (long long i = 0; i < ln; ++i) lhs[i] = (in_t)(IS_S8 ? rnd(-128, 127) : rnd(-4, 4));
      for (long long i = 0; i < rn; ++i) rhs[i] = (in_t)(IS_S8 ? rnd(-128, 127) : rnd(-4, 4));
      for (long long i = 0; i < on; ++i) { ref[i] = rnd(-50, 50); out[i] = (acc_t)ref[i]; }
      for (long long m = 0; m < M; ++m)
        for (long long n = 0; n < N; ++n)
          for (long long i = 0; i < TILE_M0; ++i)
            for (long long j = 0; j < TILE_N0; ++j) {
              long long* o = &ref[pad + m * os + n * TILE_M0 * TILE_N0 + i * TILE_N0 + j];
              long long sum = acc ? *o : 0;
              for (long long k = 0; k < K; ++k)
                for (long long q = 0; q < TILE_K0; ++q)
                  sum += (long long)lhs[pad + m * ls + (k * TILE_M0 + i) * TILE_K0 + q] * (long long)rhs[pad + n * rs + (k * TILE_N0 + j) * TILE_K0 + q];
              *o = sum;
            }
      uk_mmt4d_params_t p;
      memset(&p, 0, sizeof p);
      p.lhs_buffer = lhs; p.lhs_offset = pad; p.lhs_stride0 = ls;
      p.rhs_buffer = rhs; p.rhs_offset = pad; p.rhs_stride0 = rs;
      p.out_buffer = out; p.out_offset = pad; p.out_stride0 = os;
      p.M = M; p.N = N; p.K = K; p.M0 = TILE_M0; p.N0 = TILE_N0; p.K0 = TILE_K0;
      p.flags = TYPE | (acc ? UK_FLAG_ACCUMULATE : 0);
      acc_t* init = malloc(on * sizeof(acc_t));
      memcpy(init, out, on * sizeof(acc_t));
      int ok = KERNEL_NAME(&p) == UK_STATUS_OK;
      for (long long i = 0; i < on && ok; ++i) ok = (long long)out[i] == ref[i];
#if WITH_HANDWRITTEN
      if (ok) { /* the handwritten tile from the same initial out: equal bit for bit */
        acc_t* out2 = malloc(on * sizeof(acc_t));
        memcpy(out2, init, on * sizeof(acc_t));
        uk_mmt4d_params_t q = p;
        q.out_buffer = out2;
        q.cpu_data = cpu;
        ok = uk_mmt4d(&q) == UK_STATUS_OK && memcmp(out, out2, on * sizeof(acc_t)) == 0;
        free(out2);
      }
#endif
      free(init);
      if (ok) ++passed; else { ++failed; printf("FAIL shape %lld %lld %lld acc %d\n", M, N, K, acc); }
      free(lhs); free(rhs); free(out); free(ref);
    }
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
