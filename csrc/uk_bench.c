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
