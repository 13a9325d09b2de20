/* Epilogue: the portable variant, the per-ISA dispatch and validation. */
#include "uk_runtime.h"

#define UK_EPI_SUFFIX generic
#include "uk_epilogue_impl.inl"

#if defined(__x86_64__)
void uk_epilogue_f32_avx2(const uk_epilogue_op_t*, int32_t, float*, int64_t, int64_t, int64_t);
void uk_epilogue_s32_avx2(const uk_epilogue_op_t*, int32_t, int32_t*, int64_t, int64_t, int64_t);
void uk_epilogue_f32_avx512(const uk_epilogue_op_t*, int32_t, float*, int64_t, int64_t, int64_t);
void uk_epilogue_s32_avx512(const uk_epilogue_op_t*, int32_t, int32_t*, int64_t, int64_t, int64_t);
#endif

int uk_epilogue_check(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops) {
  if (acc_type != UK_TYPE_F32F32F32 && acc_type != UK_TYPE_S8S8S32) return UK_STATUS_UNSUPPORTED_TYPE;
  for (int32_t i = 0; i < num_ops; ++i) {
    switch (ops[i].kind) {
      case UK_EPI_BIAS_COLUMN:
        if (!ops[i].data) return UK_STATUS_BAD_ARGUMENT;
        break;
      case UK_EPI_RELU: break;
      case UK_EPI_GELU_ERF:
        if (acc_type != UK_TYPE_F32F32F32) return UK_STATUS_UNSUPPORTED_TYPE;
        break;
      default: return UK_STATUS_BAD_ARGUMENT;
    }
  }
  return UK_STATUS_OK;
}

int uk_epilogue_apply(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops,
                      void* x, int64_t len, int64_t row, int64_t col0,
                      const uint64_t* cpu_data) {
  if (num_ops <= 0 || len <= 0) return UK_STATUS_OK;
  const uint64_t cpu = cpu_data ? cpu_data[0] : 0;
  (void)cpu;
  if (acc_type == UK_TYPE_F32F32F32) {
#if defined(__x86_64__)
    if (cpu & UK_CPU_X86_AVX512_BASE) { uk_epilogue_f32_avx512(ops, num_ops, (float*)x, len, row, col0); return 0; }
    if (cpu & UK_CPU_X86_AVX2_FMA) { uk_epilogue_f32_avx2(ops, num_ops, (float*)x, len, row, col0); return 0; }
#endif
    uk_epilogue_f32_generic(ops, num_ops, (float*)x, len, row, col0);
    return UK_STATUS_OK;
  }
  if (acc_type == UK_TYPE_S8S8S32) {
#if defined(__x86_64__)
    if (cpu & UK_CPU_X86_AVX512_BASE) { uk_epilogue_s32_avx512(ops, num_ops, (int32_t*)x, len, row, col0); return 0; }
    if (cpu & UK_CPU_X86_AVX2_FMA) { uk_epilogue_s32_avx2(ops, num_ops, (int32_t*)x, len, row, col0); return 0; }
#endif
    uk_epilogue_s32_generic(ops, num_ops, (int32_t*)x, len, row, col0);
    return UK_STATUS_OK;
  }
  return UK_STATUS_UNSUPPORTED_TYPE;
}
