/* Measurement helpers for bench/ (not used by matmul): repeat a ukernel call
 * in C, so the tile kernel can be timed without Python overhead. */
#include "uk_api.h"

int uk_bench_mmt4d_repeat(const uk_mmt4d_params_t* params, int64_t reps) {
  for (int64_t r = 0; r < reps; ++r) {
    const int status = uk_mmt4d(params);
    if (status) return status;
  }
  return UK_STATUS_OK;
}

/* Read-bandwidth probe: reads bytes of buf (8-byte aligned, bytes a multiple of
 * 64 * streams) as `streams` equal sequential parts side by side (one 64-byte line
 * of each per step), and returns a checksum so the reads are not optimised away.
 * Several streams are what sequential decode kernels present to the memory system. */
uint64_t uk_probe_read(const void* buf, int64_t bytes, int32_t streams) {
  if (streams < 1 || streams > 16 || bytes < 64 * (int64_t)streams) return 0;
  const uint64_t* p = (const uint64_t*)buf;
  const int64_t part = bytes / 8 / streams / 8 * 8; /* words per stream, whole lines */
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0; /* in registers: no store-forwarding chains */
  for (int64_t i = 0; i < part; i += 8)
    for (int32_t s = 0; s < streams; ++s) {
      const uint64_t* q = p + s * part + i;
      a0 += q[0] ^ q[4];
      a1 += q[1] ^ q[5];
      a2 += q[2] ^ q[6];
      a3 += q[3] ^ q[7];
    }
  return a0 + a1 + a2 + a3;
}

/* STREAM-like triad: a[i] = b[i] + s * c[i] over n floats (two streams read, one written).
 * Returns a[n - 1] so the work is not optimised away. */
float uk_probe_triad(float* a, const float* b, const float* c, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
  return n > 0 ? a[n - 1] : 0.0f;
}
