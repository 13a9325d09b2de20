/* Epilogue kernels over one row segment, written as plain loops that the
 * compiler vectorises; this file is compiled once per ISA level (see
 * uk_epilogue*.c, built with -fno-trapping-math) with UK_EPI_SUFFIX naming
 * the variant.  Transcendentals are branch-free approximations (below) so
 * the loops stay vectorised; their accuracy is measured in tests. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define UK_EPI_CAT2(a, b) a##b
#define UK_EPI_CAT(a, b) UK_EPI_CAT2(a, b)
#define UK_EPI_FN(name) UK_EPI_CAT(name, UK_EPI_SUFFIX)
#define UK_EPI_INLINE static inline __attribute__((always_inline))

/* erf(x): rational approximation on [-4, 4] (the form of Eigen/XLA's fast
 * erf); |error| < 2.2e-7 (|x|+1) measured.  NaN propagates (the clamps keep it). */
UK_EPI_INLINE float UK_EPI_FN(uk_erf_f32_)(float x) {
  x = x > 4.0f ? 4.0f : x;
  x = x < -4.0f ? -4.0f : x;
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * x;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

/* exp(x): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split), e^r by a degree-6
 * polynomial, 2^n through the exponent bits; inputs clamped to [-87.3, 88.7]
 * (so the result is a normal float or +inf-free); NaN propagates. */
UK_EPI_INLINE float UK_EPI_FN(uk_exp_f32_)(float x) {
  const float xc0 = x > 88.7f ? 88.7f : x;
  const float xc = xc0 < -87.3f ? -87.3f : xc0;
  const float n = rintf(xc * 1.44269504088896341f);
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, 4);
  const float e = p * scale;
  return x != x ? x : e;
}

UK_EPI_INLINE float UK_EPI_FN(uk_sigmoid_f32_)(float x) {
  return 1.0f / (1.0f + UK_EPI_FN(uk_exp_f32_)(-x));
}

/* tanh: odd Taylor polynomial for |x| < 0.3 (relative accuracy near 0), else
 * 1 - 2/(e^{2x} + 1); both computed and selected (branch-free). */
UK_EPI_INLINE float UK_EPI_FN(uk_tanh_f32_)(float x) {
  const float x2 = x * x;
  /* tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925 + ... */
  float p = -8.8632355e-3f;
  p = p * x2 + 2.1869488e-2f;
  p = p * x2 + -5.3968254e-2f;
  p = p * x2 + 1.3333334e-1f;
  p = p * x2 + -3.3333334e-1f;
  const float small = x + x * x2 * p;
  const float e = UK_EPI_FN(uk_exp_f32_)(2.0f * x);
  const float big = 1.0f - 2.0f / (e + 1.0f);
  return (x2 < 0.09f) ? small : big;
}

void UK_EPI_FN(uk_epilogue_ops_)(const uk_epilogue_op_t* ops, int32_t num_ops,
                                 void* segment, int64_t len, int64_t row, int64_t col0) {
  float* restrict x = (float*)segment;
  int32_t* restrict xi = (int32_t*)segment;
  for (int32_t o = 0; o < num_ops; ++o) {
    const uk_epilogue_op_t* op = &ops[o];
    const int64_t st = op->data_stride;
    switch (op->kind) {
      case UK_EPI_BIAS_COLUMN:
      case UK_EPI_RESIDUAL: {
        const int64_t s1 = op->kind == UK_EPI_RESIDUAL ? op->data_stride1 : st;
        const int64_t base = op->kind == UK_EPI_RESIDUAL ? row * st + col0 * s1 : col0 * st;
        if (op->is_int) {
          /* wrap-around add (numpy int32 semantics) through uint32 */
          uint32_t* restrict u = (uint32_t*)segment;
          const uint32_t* restrict b = (const uint32_t*)op->data + base;
          for (int64_t j = 0; j < len; ++j) u[j] += b[j * s1];
        } else {
          const float* restrict b = (const float*)op->data + base;
          if (s1 == 1) {
            for (int64_t j = 0; j < len; ++j) x[j] += b[j];
          } else {
            for (int64_t j = 0; j < len; ++j) x[j] += b[j * s1];
          }
        }
        break;
      }
      case UK_EPI_BIAS_ROW:
        if (op->is_int) {
          const uint32_t b = ((const uint32_t*)op->data)[row * st];
          uint32_t* restrict u = (uint32_t*)segment;
          for (int64_t j = 0; j < len; ++j) u[j] += b;
        } else {
          const float b = ((const float*)op->data)[row * st];
          for (int64_t j = 0; j < len; ++j) x[j] += b;
        }
        break;
      case UK_EPI_RELU:
        if (op->is_int) { for (int64_t j = 0; j < len; ++j) xi[j] = xi[j] < 0 ? 0 : xi[j]; }
        else { for (int64_t j = 0; j < len; ++j) x[j] = x[j] < 0.0f ? 0.0f : x[j]; }
        break;
      case UK_EPI_RELU6:
        if (op->is_int) {
          for (int64_t j = 0; j < len; ++j) xi[j] = xi[j] < 0 ? 0 : (xi[j] > 6 ? 6 : xi[j]);
        } else {
          for (int64_t j = 0; j < len; ++j) { const float v = x[j] < 0.0f ? 0.0f : x[j]; x[j] = v > 6.0f ? 6.0f : v; }
        }
        break;
      case UK_EPI_CLAMP:
        if (op->is_int) { /* p2/p3: whether lo/hi are present (bounds are exact integers <= 2^24) */
          const int32_t lo = op->p2 != 0.0f ? (int32_t)op->p0 : INT32_MIN;
          const int32_t hi = op->p3 != 0.0f ? (int32_t)op->p1 : INT32_MAX;
          for (int64_t j = 0; j < len; ++j) xi[j] = xi[j] < lo ? lo : (xi[j] > hi ? hi : xi[j]);
        } else {
          const float lo = op->p0, hi = op->p1;
          for (int64_t j = 0; j < len; ++j) { const float v = x[j] < lo ? lo : x[j]; x[j] = v > hi ? hi : v; }
        }
        break;
      case UK_EPI_SCALE:
        if (op->data) {
          const float* restrict s = (const float*)op->data + col0 * st;
          for (int64_t j = 0; j < len; ++j) x[j] *= s[j * st];
        } else {
          const float s = op->p0;
          for (int64_t j = 0; j < len; ++j) x[j] *= s;
        }
        break;
      case UK_EPI_SCALE_ROW: {
        const float s = ((const float*)op->data)[row * st];
        for (int64_t j = 0; j < len; ++j) x[j] *= s;
        break;
      }
      case UK_EPI_GELU_ERF:
        for (int64_t j = 0; j < len; ++j) {
          const float v = x[j];
          x[j] = 0.5f * v * (1.0f + UK_EPI_FN(uk_erf_f32_)(v * 0.70710678118654752f));
        }
        break;
      case UK_EPI_GELU_TANH:
        /* x/2 (1 + tanh u) = x * sigmoid(2u) = x / (1 + e^{-2u}): one exp, one division */
        for (int64_t j = 0; j < len; ++j) {
          const float v = x[j];
          const float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
          x[j] = v / (1.0f + UK_EPI_FN(uk_exp_f32_)(-2.0f * u));
        }
        break;
      case UK_EPI_SILU:
        for (int64_t j = 0; j < len; ++j) x[j] = x[j] * UK_EPI_FN(uk_sigmoid_f32_)(x[j]);
        break;
      case UK_EPI_SIGMOID:
        for (int64_t j = 0; j < len; ++j) x[j] = UK_EPI_FN(uk_sigmoid_f32_)(x[j]);
        break;
      case UK_EPI_TANH:
        for (int64_t j = 0; j < len; ++j) x[j] = UK_EPI_FN(uk_tanh_f32_)(x[j]);
        break;
      case UK_EPI_TO_FLOAT:
        for (int64_t j = 0; j < len; ++j) x[j] = (float)xi[j];
        break;
      case UK_EPI_REQUANTIZE: {
        const float zp = op->p1, qmin = op->p2, qmax = op->p3;
        const float* restrict s = op->data ? (const float*)op->data + col0 * st : 0;
        for (int64_t j = 0; j < len; ++j) {
          const float scale = s ? s[j * st] : op->p0;
          float v = rintf(x[j] * scale) + zp;
          v = v != v ? zp : v;
          v = v < qmin ? qmin : v;
          v = v > qmax ? qmax : v;
          xi[j] = (int32_t)v;
        }
        break;
      }
      default:
        break; /* rejected earlier by uk_epilogue_check */
    }
  }
}
