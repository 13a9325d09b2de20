/* Symmetric per-row int8 quantization of float32 activations (a weight-quantized Linear's x,
 * every call): sx[i] = max_k |x[i][k]| / 127, q[i][k] = clip(rint(x[i][k] / sx[i]), -127, 127)
 * (sx = 0: the divisor is 1), the arithmetic of ukernels/quantize.py's documentation in f32,
 * element for element as numpy computes it. Rounding: v + 1.5 * 2^23 - 1.5 * 2^23 rounds
 * half to even in the default rounding mode for |v| < 2^22 (here |v| <= 127 + an ulp), so
 * the loop vectorises with the baseline ISA (no roundps before SSE4.1). No allocation, no
 * globals. */
#include <string.h>

#include "uk_runtime.h"

int uk_quantize_rows_s8(const float* x, int64_t M, int64_t K, int64_t x_stride0, int8_t* q, int64_t q_stride0,
                        float* scales) {
  if (M < 0 || K < 0 || (M > 0 && K > 0 && (!x || !q)) || (M > 0 && !scales)) return UK_STATUS_BAD_ARGUMENT;
  const float magic = 12582912.0f; /* 1.5 * 2^23 */
  for (int64_t i = 0; i < M; ++i) {
    const float* xr = x + i * x_stride0;
    /* max |x| on the magnitude bits as int32 (for non-negative floats the integer order is
     * the float order; NaN and Inf are the bit patterns from 0x7F800000 up): a vectorisable
     * integer max that also finds the non-finite values */
    int32_t mbits = 0;
    for (int64_t k = 0; k < K; ++k) {
      int32_t b;
      memcpy(&b, &xr[k], 4);
      b &= 0x7FFFFFFF;
      mbits = b > mbits ? b : mbits;
    }
    if (mbits >= 0x7F800000) return UK_STATUS_BAD_ARGUMENT;
    float amax;
    memcpy(&amax, &mbits, 4);
    const float sx = amax / 127.0f;
    scales[i] = sx;
    const float d = sx > 0.0f ? sx : 1.0f;
    int8_t* qr = q + i * q_stride0;
    for (int64_t k = 0; k < K; ++k) {
      float v = xr[k] / d;
      v = (v + magic) - magic;
      v = v < -127.0f ? -127.0f : v;
      v = v > 127.0f ? 127.0f : v;
      qr[k] = (int8_t)v;
    }
  }
  return UK_STATUS_OK;
}
