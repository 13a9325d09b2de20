"""cffi builder for ``ukernels._native`` (API mode, out of line).

The cdef below mirrors ukernels/include/uk_api.h and csrc/uk_runtime.h; constants are
declared without values so their values come from the C headers.
"""
import os
import sys

from cffi import FFI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _build_config import COMMON_CFLAGS, INCLUDE_DIRS, PORTABLE_SOURCES  # noqa: E402

CDEF = r"""
static const int UK_STATUS_OK, UK_STATUS_UNSUPPORTED_TYPE, UK_STATUS_NO_TILE_FUNCTION,
                 UK_STATUS_BAD_ARGUMENT;
static const int UK_TYPE_F32F32F32, UK_TYPE_S8S8S32, UK_TYPE_F16F16F32, UK_TYPE_BF16BF16F32, UK_TYPE_S16S16S32,
                 UK_TYPE_U8S8S32, UK_TYPE_S8S4S32, UK_TYPE_MASK;
typedef struct uk_type_info_t { int32_t lhs_bits, rhs_bits, acc_bits; int32_t acc_is_float; } uk_type_info_t;
int uk_type_info(uint32_t type, uk_type_info_t* info);
static const int UK_FLAG_ACCUMULATE, UK_FLAG_ALLOW_GENERIC_FALLBACK, UK_FLAG_GROUP_SCALES, UK_FLAG_LHS_S8_SYMMETRIC, UK_FLAG_EPILOGUE_FUSED;
#define UK_CPU_X86_AVX2_FMA ...
#define UK_CPU_X86_F16C ...
#define UK_CPU_X86_AVX512_BASE ...
#define UK_CPU_X86_AVX512_VNNI ...
#define UK_CPU_X86_AVX512_BF16 ...
#define UK_CPU_ARM_NEON ...
#define UK_CPU_ARM_DOTPROD ...
#define UK_CPU_ARM_I8MM ...
#define UK_CPU_ARM_BF16 ...
#define UK_CPU_ARM_FP16 ...
#define UK_CPU_ARM_FHM ...
static const int UK_PACK_TYPE_F32, UK_PACK_TYPE_I8, UK_PACK_TYPE_X16, UK_PACK_TYPE_S4, UK_PACK_WIDEN_F16, UK_PACK_WIDEN_BF16, UK_PACK_NARROW_BF16,
                 UK_PACK_TRANSPOSE_INNER,
                 UK_PACK_TRANSPOSE_OUTER;
static const int UK_EPI_BIAS_COLUMN, UK_EPI_RELU, UK_EPI_GELU_ERF, UK_EPI_BIAS_ROW, UK_EPI_RESIDUAL,
                 UK_EPI_SCALE, UK_EPI_CLAMP, UK_EPI_RELU6, UK_EPI_GELU_TANH, UK_EPI_SILU, UK_EPI_SIGMOID,
                 UK_EPI_TANH, UK_EPI_TO_FLOAT, UK_EPI_REQUANTIZE, UK_EPI_SCALE_ROW;
static const int UK_OUT_F32, UK_OUT_S32, UK_OUT_S8, UK_OUT_U8, UK_OUT_F16, UK_OUT_BF16;

typedef struct uk_epilogue_op_t {
  int32_t kind; int32_t is_int; const void* data; int64_t data_stride; int64_t data_stride1;
  float p0, p1, p2, p3;
  int64_t data_batch_stride;
} uk_epilogue_op_t;
typedef struct uk_mmt4d_params_t {
  const void* lhs_buffer; int64_t lhs_offset; int64_t lhs_stride0;
  const void* rhs_buffer; int64_t rhs_offset; int64_t rhs_stride0;
  void* out_buffer; int64_t out_offset; int64_t out_stride0;
  int64_t M; int64_t N; int64_t K;
  int32_t M0, N0, K0;
  uint32_t flags;
  const uint64_t* cpu_data;
  int64_t rhs_stride1;
  const float* group_scales;
  int64_t group_scales_offset;
  int64_t group_scales_stride0;
  int64_t group_k;
  const uk_epilogue_op_t* epilogue_ops;
  int32_t epilogue_num_ops;
  int32_t final_type;
  void* final_out;
  int64_t final_stride0;
  int64_t row0, col0, rows, cols;
} uk_mmt4d_params_t;
typedef int (*uk_mmt4d_fn_t)(const uk_mmt4d_params_t* params);
int uk_mmt4d(const uk_mmt4d_params_t* params);
const char* uk_mmt4d_tile_name(uint32_t flags, int32_t M0, int32_t N0, int32_t K0,
                               const uint64_t* cpu_data);
typedef struct uk_mmt4d_tile_desc_t {
  uint32_t type; int32_t M0, N0, K0; uint64_t required_cpu; uint32_t required_flags;
  int32_t plan; int32_t generic, has_scaled, has_group, has_scaled_group; const char* name;
} uk_mmt4d_tile_desc_t;
int64_t uk_mmt4d_tile_count(void);
int uk_mmt4d_tile_desc(int64_t index, uk_mmt4d_tile_desc_t* out);

typedef struct uk_pack_params_t {
  const void* in_buffer; int64_t in_offset; int64_t in_stride0; int64_t in_stride1;
  void* out_buffer; int64_t out_offset; int64_t out_stride0;
  int64_t in_size0, in_size1; int64_t out_size0, out_size1;
  int32_t tile_size0, tile_size1;
  uint32_t flags;
  const uint64_t* cpu_data;
} uk_pack_params_t;
int uk_pack(const uk_pack_params_t* params);

void uk_cpu_detect(uint64_t* cpu_data);
void uk_cpu_model_name(char* buf, int64_t buf_size);

typedef struct uk_pool_t uk_pool_t;
uk_pool_t* uk_pool_create(int32_t num_threads, int64_t spin_ns);
void uk_pool_destroy(uk_pool_t* pool);
int32_t uk_pool_size(const uk_pool_t* pool);

int uk_epilogue_apply(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops,
                      void* x, int64_t len, int64_t row, int64_t col0,
                      const uint64_t* cpu_data);

typedef struct uk_matmul_desc_t {
  uint32_t type; int64_t M, N, K;
  const void* a; int64_t a_stride0, a_stride1;
  const void* b; int64_t b_stride0, b_stride1;
  void* out; int64_t out_stride0;
  int32_t M0, N0, K0;
  int64_t MC, NC, KC;
  void* lhs_packed; void* rhs_packed; int32_t rhs_prepacked; int32_t rhs_pack_in_tile;
  void* scratch; int64_t scratch_stride;
  uk_mmt4d_fn_t mmt4d; uint32_t mmt4d_flags;
  const uint64_t* cpu_data;
  const uk_epilogue_op_t* ops; int32_t num_ops;
  int32_t out_type;
  int32_t max_threads;
  int64_t pack_tasks_hint;
  uint32_t kernel_type;
  const volatile int32_t* cancel;
  int32_t rhs_direct;
  const float* rhs_group_scales;
  int64_t group_size;
  int64_t batch;
  int64_t a_batch_stride, b_batch_stride, out_batch_stride;
  int32_t lhs_pack_in_tile;
  int32_t epilogue_fused;
} uk_matmul_desc_t;
static const int UK_STATUS_CANCELLED;
int64_t uk_matmul_scratch_bytes(const uk_matmul_desc_t* desc);
int uk_interrupt_arm(void);
void uk_interrupt_disarm(void);
const volatile int32_t* uk_interrupt_flag(void);
int uk_epilogue_check(uint32_t acc_type, const uk_epilogue_op_t* ops, int32_t num_ops, int32_t out_type);
int uk_matmul_run(const uk_matmul_desc_t* desc, uk_pool_t* pool);
int uk_quantize_rows_s8(const float* x, int64_t M, int64_t K, int64_t x_stride0, int8_t* q, int64_t q_stride0,
                        float* scales, const uint64_t* cpu_data, uk_pool_t* pool, int32_t max_threads);
int uk_matmul_run_replay(const uk_matmul_desc_t* desc, const void* a, const void* b, void* out, void* work,
                         uk_pool_t* pool, const volatile int32_t* cancel);
int uk_matmul_pack_rhs(const uk_matmul_desc_t* desc, uk_pool_t* pool);
typedef struct uk_qlinear_desc_t {
  int64_t N, K; int32_t bits; int32_t group_size; const void* weight;
  const uk_epilogue_op_t* ops; int32_t num_ops; int32_t max_threads;
  int64_t parallel_min_bytes; const uint64_t* cpu_data; int32_t gated;
} uk_qlinear_desc_t;
#define UK_QLINEAR_MAX_M 16
int64_t uk_qlinear_weight_bytes(const uk_qlinear_desc_t* d);
int64_t uk_qlinear_work_bytes(const uk_qlinear_desc_t* d, int64_t M);
int uk_qlinear_run(const uk_qlinear_desc_t* d, const float* x, int64_t M, int64_t x_stride0, float* out,
                   int64_t out_stride0, void* work, uk_pool_t* pool);
const char* uk_qlinear_kernel_name(const uk_qlinear_desc_t* d);

int uk_bench_mmt4d_repeat(const uk_mmt4d_params_t* params, int64_t reps);
uint64_t uk_probe_read(const void* buf, int64_t bytes, int32_t streams);
float uk_probe_triad(float* a, const float* b, const float* c, float s, int64_t n);
double uk_probe_fma_peak_avx2(int64_t iterations);
double uk_probe_dot_peak_avx512(int32_t which, int64_t iterations);
const char* uk_build_compiler(void);
const char* uk_build_flags(void);
"""

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)

SOURCE = r"""
#include "uk_api.h"
#include "uk_runtime.h"
const char* uk_build_compiler(void) {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}
const char* uk_build_flags(void) { return UK_BUILD_FLAGS; }
int uk_bench_mmt4d_repeat(const uk_mmt4d_params_t* params, int64_t reps);
uint64_t uk_probe_read(const void* buf, int64_t bytes, int32_t streams);
float uk_probe_triad(float* a, const float* b, const float* c, float s, int64_t n);
#if defined(__x86_64__)
double uk_probe_fma_peak_avx2(int64_t iterations);
double uk_probe_dot_peak_avx512(int32_t which, int64_t iterations);
#else
static double uk_probe_fma_peak_avx2(int64_t iterations) { (void)iterations; return 0.0; }
static double uk_probe_dot_peak_avx512(int32_t which, int64_t iterations) { (void)which; (void)iterations; return 0.0; }
#endif
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "ukernels._native",
    SOURCE,
    sources=PORTABLE_SOURCES,
    include_dirs=INCLUDE_DIRS,
    extra_compile_args=COMMON_CFLAGS + ['-DUK_BUILD_FLAGS="%s"' % " ".join(COMMON_CFLAGS)],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
