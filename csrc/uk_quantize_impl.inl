/* The body of the per-row symmetric int8 quantizer (csrc/uk_quantize.c), included once per
 * ISA with UK_QUANTIZE_ROWS naming the function: the same C compiled with the baseline flags
 * and with AVX2's (8-wide division). Rows [r0, r1); returns 0, or 1 on a NaN or Inf value.
 * Rounding: v + 1.5 * 2^23 - 1.5 * 2^23 rounds half to even in the default rounding mode for
 * |v| < 2^22 (here |v| <= 127 + an ulp), so the loop vectorises without a round instruction.
 * max |x| is taken on the magnitude bits as int32 (for non-negative floats the integer order
 * is the float order; NaN and Inf are the bit patterns from 0x7F800000 up). */
int UK_QUANTIZE_ROWS(const float* x, int64_t r0, int64_t r1, int64_t K, int64_t x_stride0, int8_t* q,
                     int64_t q_stride0, float* scales) {
  const float magic = 12582912.0f; /* 1.5 * 2^23 */
  for (int64_t i = r0; i < r1; ++i) {
    const float* xr = x + i * x_stride0;
    int32_t mbits = 0;
    for (int64_t k = 0; k < K; ++k) {
      int32_t b;
      memcpy(&b, &xr[k], 4);
      b &= 0x7FFFFFFF;
      mbits = b > mbits ? b : mbits;
    }
    if (mbits >= 0x7F800000) return 1;
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
  return 0;
}
