/* Epilogue kernels over one row segment, written as plain loops that the
 * compiler vectorises; this file is compiled once per ISA level (see
 * uk_epilogue*.c) with UK_EPI_SUFFIX naming the variant. */
#include <math.h>
#include <stdint.h>

#define UK_EPI_CAT2(a, b) a##b
#define UK_EPI_CAT(a, b) UK_EPI_CAT2(a, b)
#define UK_EPI_FN(name) UK_EPI_CAT(name, UK_EPI_SUFFIX)

/* erf(x) for float, rational approximation on [-4, 4] (the form used by
 * Eigen/XLA's fast erf); |error| < 2e-7 absolute; branch-free so it
 * vectorises.  NaN propagates: the clamps keep NaN (comparisons are false). */
static inline float UK_EPI_FN(uk_erf_f32_)(float x) {
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

void UK_EPI_FN(uk_epilogue_f32_)(const uk_epilogue_op_t* ops, int32_t num_ops,
                                 float* restrict x, int64_t len, int64_t row, int64_t col0) {
  (void)row;
  for (int32_t o = 0; o < num_ops; ++o) {
    const uk_epilogue_op_t* op = &ops[o];
    switch (op->kind) {
      case UK_EPI_BIAS_COLUMN: {
        const float* restrict b = (const float*)op->data + col0 * op->data_stride;
        if (op->data_stride == 1) {
          for (int64_t j = 0; j < len; ++j) x[j] += b[j];
        } else {
          for (int64_t j = 0; j < len; ++j) x[j] += b[j * op->data_stride];
        }
        break;
      }
      case UK_EPI_RELU:
        for (int64_t j = 0; j < len; ++j) x[j] = x[j] < 0.0f ? 0.0f : x[j];
        break;
      case UK_EPI_GELU_ERF:
        for (int64_t j = 0; j < len; ++j) {
          const float v = x[j];
          x[j] = 0.5f * v * (1.0f + UK_EPI_FN(uk_erf_f32_)(v * 0.70710678118654752f));
        }
        break;
      default:
        break; /* rejected earlier by uk_epilogue_check */
    }
  }
}

void UK_EPI_FN(uk_epilogue_s32_)(const uk_epilogue_op_t* ops, int32_t num_ops,
                                 int32_t* restrict x, int64_t len, int64_t row, int64_t col0) {
  (void)row;
  for (int32_t o = 0; o < num_ops; ++o) {
    const uk_epilogue_op_t* op = &ops[o];
    switch (op->kind) {
      case UK_EPI_BIAS_COLUMN: {
        /* wrap-around add (numpy int32 semantics) through uint32 */
        uint32_t* restrict u = (uint32_t*)x;
        const uint32_t* restrict b = (const uint32_t*)op->data + col0 * op->data_stride;
        for (int64_t j = 0; j < len; ++j) u[j] += b[j * op->data_stride];
        break;
      }
      case UK_EPI_RELU:
        for (int64_t j = 0; j < len; ++j) x[j] = x[j] < 0 ? 0 : x[j];
        break;
      default:
        break;
    }
  }
}
