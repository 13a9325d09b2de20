/* Epilogue: the portable variant, the per-ISA dispatch, validation and the
 * typed store of a finished row segment. */
#include "uk_runtime.h"
#include "uk_mmt4d_internal.h" /* the 16-bit float conversions */

#define UK_EPI_SUFFIX generic
#include "uk_epilogue_impl.inl"

#if defined(__x86_64__)
void uk_epilogue_ops_avx2(const uk_epilogue_op_t*, int32_t, void*, int64_t, int64_t, int64_t);
void uk_epilogue_ops_avx512(const uk_epilogue_op_t*, int32_t, void*, int64_t, int64_t, int64_t);
#endif

static int uk_epi_float_only(int32_t kind) {
  switch (kind) {
    case UK_EPI_GELU_ERF: case UK_EPI_GELU_TANH: case UK_EPI_SILU: case UK_EPI_SIGMOID:
    case UK_EPI_TANH: case UK_EPI_SCALE: case UK_EPI_REQUANTIZE: case UK_EPI_SCALE_ROW:
      return 1;
    default:
      return 0;
  }
}

int uk_epilogue_check(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops, int32_t out_type) {
  uk_type_info_t ti;
  if (!uk_type_info(acc_type, &ti)) return UK_STATUS_UNSUPPORTED_TYPE;
  int is_int = !ti.acc_is_float;
  for (int32_t i = 0; i < num_ops; ++i) {
    const uk_epilogue_op_t* op = &ops[i];
    if (op->kind < UK_EPI_BIAS_COLUMN || op->kind > UK_EPI_SCALE_ROW) return UK_STATUS_BAD_ARGUMENT;
    if (op->kind == UK_EPI_TO_FLOAT) {
      if (!is_int) return UK_STATUS_BAD_ARGUMENT;
      is_int = 0;
      continue;
    }
    if (op->is_int != is_int) return UK_STATUS_BAD_ARGUMENT;          /* domain mismatch */
    if (is_int && uk_epi_float_only(op->kind)) return UK_STATUS_BAD_ARGUMENT;
    if ((op->kind == UK_EPI_BIAS_COLUMN || op->kind == UK_EPI_BIAS_ROW || op->kind == UK_EPI_RESIDUAL ||
         op->kind == UK_EPI_SCALE_ROW) && !op->data)
      return UK_STATUS_BAD_ARGUMENT;
    if (op->kind == UK_EPI_REQUANTIZE) is_int = 1;
  }
  if (out_type == UK_OUT_F32 || out_type == UK_OUT_F16 || out_type == UK_OUT_BF16)
    return is_int ? UK_STATUS_BAD_ARGUMENT : UK_STATUS_OK;
  if (out_type == UK_OUT_S32 || out_type == UK_OUT_S8 || out_type == UK_OUT_U8)
    return is_int ? UK_STATUS_OK : UK_STATUS_BAD_ARGUMENT;
  return UK_STATUS_BAD_ARGUMENT;
}

int uk_epilogue_apply(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops,
                      void* x, int64_t len, int64_t row, int64_t col0,
                      const uint64_t* cpu_data) {
  (void)acc_type;
  if (num_ops <= 0 || len <= 0) return UK_STATUS_OK;
  const uint64_t cpu = cpu_data ? cpu_data[0] : 0;
  (void)cpu;
#if defined(__x86_64__)
  if (cpu & UK_CPU_X86_AVX512_BASE) { uk_epilogue_ops_avx512(ops, num_ops, x, len, row, col0); return 0; }
  if (cpu & UK_CPU_X86_AVX2_FMA) { uk_epilogue_ops_avx2(ops, num_ops, x, len, row, col0); return 0; }
#endif
  uk_epilogue_ops_generic(ops, num_ops, x, len, row, col0);
  return UK_STATUS_OK;
}

int32_t uk_out_bytes(int32_t out_type) {
  switch (out_type) {
    case UK_OUT_F32: case UK_OUT_S32: return 4;
    case UK_OUT_F16: case UK_OUT_BF16: return 2;
    case UK_OUT_S8: case UK_OUT_U8: return 1;
    default: return 0;
  }
}

void uk_epilogue_store(int32_t out_type, const void* x, void* dst, int64_t len) {
  switch (out_type) {
    case UK_OUT_F16: {
      const float* restrict v = (const float*)x;
      uint16_t* restrict d = (uint16_t*)dst;
      for (int64_t j = 0; j < len; ++j) d[j] = uk_f32_to_f16(v[j]);
      break;
    }
    case UK_OUT_BF16: {
      const float* restrict v = (const float*)x;
      uint16_t* restrict d = (uint16_t*)dst;
      for (int64_t j = 0; j < len; ++j) d[j] = uk_f32_to_bf16(v[j]);
      break;
    }
    case UK_OUT_S8: {
      const int32_t* restrict v = (const int32_t*)x;
      int8_t* restrict d = (int8_t*)dst;
      for (int64_t j = 0; j < len; ++j) d[j] = (int8_t)v[j]; /* in range after REQUANTIZE */
      break;
    }
    case UK_OUT_U8: {
      const int32_t* restrict v = (const int32_t*)x;
      uint8_t* restrict d = (uint8_t*)dst;
      for (int64_t j = 0; j < len; ++j) d[j] = (uint8_t)v[j];
      break;
    }
    default: /* f32 or s32: 4-byte copy */
      memcpy(dst, x, (size_t)len * 4);
      break;
  }
}
