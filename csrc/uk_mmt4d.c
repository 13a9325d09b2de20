/* uk_mmt4d: the shared outer loop over M x N tiles, and tile-function
 * selection from an ordered table (oldest ISA first; the last match wins). */
#include <stddef.h>

#include "uk_mmt4d_internal.h"

/* The ordered tile table (uk_mmt4d_internal.h): the ISA levels' X-macro rows, oldest first. */
#undef UK_NO_FN
#define UK_NO_FN NULL
#define UK_TILE(T, M0, N0, K0, CPU, FLAGS, PLAN, FN, SCALED_FN, GROUP_FN, SCALED_GROUP_FN) \
  {UK_TYPE_##T, M0, N0, K0, CPU, FLAGS, PLAN, FN, #FN, SCALED_FN, GROUP_FN, SCALED_GROUP_FN},
static const uk_mmt4d_tile_entry_t uk_mmt4d_tile_table[] = {
#if defined(UK_ARCH_X86_64)
#include "arch/x86_64/uk_mmt4d_x86_64_avx2_fma_tiles.inl"
#include "arch/x86_64/uk_mmt4d_x86_64_avx512_base_tiles.inl"
#include "arch/x86_64/uk_mmt4d_x86_64_avx512_vnni_tiles.inl"
#include "arch/x86_64/uk_mmt4d_x86_64_avx512_bf16_tiles.inl"
#elif defined(UK_ARCH_ARM_64)
#include "arch/arm_64/uk_mmt4d_arm_64_neon_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_fp16fml_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_dotprod_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_i8mm_tiles.inl"
#include "arch/arm_64/uk_mmt4d_arm_64_bf16_tiles.inl"
#endif
    {0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef UK_TILE

/* The portable tiles, one per triple (any shape; M0 x N0 x K0: the default register tile). */
#define UK_GENERIC(T, M0, N0, K0, FN) {UK_TYPE_##T, M0, N0, K0, 0, 0, 1, FN, #FN, NULL, NULL, NULL},
static const uk_mmt4d_tile_entry_t uk_mmt4d_generic_table[] = {
#include "uk_mmt4d_generic_tiles.inl"
    {0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
#undef UK_GENERIC

#define UK_TABLE_ROWS ((int64_t)(sizeof uk_mmt4d_tile_table / sizeof uk_mmt4d_tile_table[0]) - 1)
#define UK_GENERIC_ROWS ((int64_t)(sizeof uk_mmt4d_generic_table / sizeof uk_mmt4d_generic_table[0]) - 1)

int64_t uk_mmt4d_tile_count(void) { return UK_TABLE_ROWS + UK_GENERIC_ROWS; }

int uk_mmt4d_tile_desc(int64_t index, uk_mmt4d_tile_desc_t* out) {
  if (index < 0 || index >= uk_mmt4d_tile_count() || !out) return UK_STATUS_BAD_ARGUMENT;
  const int generic = index >= UK_TABLE_ROWS;
  const uk_mmt4d_tile_entry_t* e = generic ? &uk_mmt4d_generic_table[index - UK_TABLE_ROWS] : &uk_mmt4d_tile_table[index];
  out->type = e->type;
  out->M0 = e->M0;
  out->N0 = e->N0;
  out->K0 = e->K0;
  out->required_cpu = e->required_cpu;
  out->required_flags = e->required_flags;
  out->plan = e->plan;
  out->generic = generic;
  out->has_scaled = e->scaled_fn != NULL;
  out->has_group = e->group_fn != NULL;
  out->has_scaled_group = e->scaled_group_fn != NULL;
  out->name = e->name;
  return UK_STATUS_OK;
}

int uk_type_info(uint32_t type, uk_type_info_t* info) {
  /* lhs bytes, rhs bytes, acc bytes, acc is float */
  switch (type & UK_TYPE_MASK) {
    case UK_TYPE_F32F32F32: *info = (uk_type_info_t){32, 32, 32, 1}; return 1;
    case UK_TYPE_S8S8S32: *info = (uk_type_info_t){8, 8, 32, 0}; return 1;
    case UK_TYPE_F16F16F32: *info = (uk_type_info_t){16, 16, 32, 1}; return 1;
    case UK_TYPE_BF16BF16F32: *info = (uk_type_info_t){16, 16, 32, 1}; return 1;
    case UK_TYPE_S16S16S32: *info = (uk_type_info_t){16, 16, 32, 0}; return 1;
    case UK_TYPE_U8S8S32: *info = (uk_type_info_t){8, 8, 32, 0}; return 1;
    case UK_TYPE_S8S4S32: *info = (uk_type_info_t){8, 4, 32, 0}; return 1;
    default: *info = (uk_type_info_t){0, 0, 0, 0}; return 0;
  }
}

/* The row uk_mmt4d uses: the last matching table row (later, newer ISA rows override older
 * ones), else the triple's portable row if the flags allow the fallback, else NULL. */
static const uk_mmt4d_tile_entry_t* uk_mmt4d_select(uint32_t flags, int32_t M0, int32_t N0, int32_t K0,
                                                    const uint64_t* cpu_data) {
  const uint32_t type = flags & UK_TYPE_MASK;
  const uint64_t cpu = cpu_data ? cpu_data[0] : 0;
  const uk_mmt4d_tile_entry_t* best = NULL;
  for (const uk_mmt4d_tile_entry_t* e = uk_mmt4d_tile_table; e->fn; ++e) {
    if (e->type == type && e->M0 == M0 && e->N0 == N0 && e->K0 == K0 &&
        (cpu & e->required_cpu) == e->required_cpu && (flags & e->required_flags) == e->required_flags) {
      best = e;
    }
  }
  if (best || !(flags & UK_FLAG_ALLOW_GENERIC_FALLBACK)) return best;
  for (const uk_mmt4d_tile_entry_t* e = uk_mmt4d_generic_table; e->fn; ++e)
    if (e->type == type) return e;
  return NULL;
}

const char* uk_mmt4d_tile_name(uint32_t flags, int32_t M0, int32_t N0, int32_t K0,
                               const uint64_t* cpu_data) {
  const uk_mmt4d_tile_entry_t* e = uk_mmt4d_select(flags, M0, N0, K0, cpu_data);
  return e ? e->name : "none";
}

/* UK_FLAG_GROUP_SCALES: runs of UK_TILE_GROUP one-row tiles through the row's scaled group
 * variant, other tiles through its scaled variant (both keep the group loop in registers);
 * without them, per tile, each group of group_k K tiles through the integer tile function into
 * an int32 tile (exact), then converted and scaled into an f32 tile here. */
#define UK_GROUP_TILE_MAX 1024
static int uk_mmt4d_group_scaled(const uk_mmt4d_params_t* p, const uk_mmt4d_tile_entry_t* row,
                                 const uk_type_info_t* ti) {
  const int64_t M0 = p->M0, N0 = p->N0, tile = M0 * N0;
  if (ti->acc_is_float || !p->group_scales || p->group_k <= 0 || tile > UK_GROUP_TILE_MAX)
    return UK_STATUS_BAD_ARGUMENT;
  uk_mmt4d_params_t q = *p;
  q.flags = p->flags & ~(uint32_t)(UK_FLAG_ACCUMULATE | UK_FLAG_GROUP_SCALES);
  const int64_t lhs_k_bytes = M0 * p->K0 * ti->lhs_bits / 8, rhs_k_bytes = uk_rhs_k_stride(p) * ti->rhs_bits / 8;
  const char* lhs = (const char*)p->lhs_buffer + p->lhs_offset * ti->lhs_bits / 8;
  const char* rhs0 = (const char*)p->rhs_buffer + p->rhs_offset * ti->rhs_bits / 8;
  float* out0 = (float*)p->out_buffer + p->out_offset;
  int32_t dots[UK_GROUP_TILE_MAX];
  float acc[UK_GROUP_TILE_MAX];
  for (int64_t m = 0; m < p->M; ++m) {
    for (int64_t n = 0; n < p->N;) {
      const char* rhs = rhs0 + n * (p->rhs_stride0 * ti->rhs_bits / 8);
      float* out = out0 + m * p->out_stride0 + n * tile;
      const int run = row->scaled_group_fn && n + UK_TILE_GROUP <= p->N;
      if (run || row->scaled_fn) { /* the SIMD variants: the group loop in registers */
        uk_mmt4d_params_t r = *p;
        r.group_scales_offset = p->group_scales_offset + n * p->group_scales_stride0;
        (run ? row->scaled_group_fn : row->scaled_fn)(out, lhs, rhs, &r);
        n += run ? UK_TILE_GROUP : 1;
        continue;
      }
      const float* scales = p->group_scales + p->group_scales_offset + n * p->group_scales_stride0;
      for (int64_t e = 0; e < tile; ++e) acc[e] = 0.0f;
      for (int64_t k = 0, g = 0; k < p->K; k += p->group_k, ++g) {
        q.K = p->K - k < p->group_k ? p->K - k : p->group_k;
        row->fn(dots, lhs + k * lhs_k_bytes, rhs + k * rhs_k_bytes, &q);
        const float* s = scales + g * N0;
        for (int64_t i = 0; i < M0; ++i)
          for (int64_t j = 0; j < N0; ++j) acc[i * N0 + j] += (float)dots[i * N0 + j] * s[j];
      }
      for (int64_t e = 0; e < tile; ++e) out[e] = (p->flags & UK_FLAG_ACCUMULATE) ? out[e] + acc[e] : acc[e];
      ++n;
    }
    lhs += p->lhs_stride0 * ti->lhs_bits / 8;
  }
  return UK_STATUS_OK;
}

int uk_mmt4d(const uk_mmt4d_params_t* p) {
  const uint32_t type = p->flags & UK_TYPE_MASK;
  uk_type_info_t ti;
  if (!uk_type_info(type, &ti)) return UK_STATUS_UNSUPPORTED_TYPE;
  if (p->M < 0 || p->N < 0 || p->K < 0 || p->M0 <= 0 || p->N0 <= 0 || p->K0 <= 0)
    return UK_STATUS_BAD_ARGUMENT;
  /* the epilogue in registers is a generated kernel's (rendered for its op list); the
   * handwritten tiles leave it to the dispatch's tile-level epilogue */
  if (p->flags & UK_FLAG_EPILOGUE_FUSED) return UK_STATUS_BAD_ARGUMENT;
  const uk_mmt4d_tile_entry_t* row = uk_mmt4d_select(p->flags, p->M0, p->N0, p->K0, p->cpu_data);
  if (!row) return UK_STATUS_NO_TILE_FUNCTION;
  const uk_mmt4d_tile_fn_t fn = row->fn, group_fn = row->group_fn;
  if (p->M == 0 || p->N == 0) return UK_STATUS_OK;

  /* sub-byte rhs (int4): offsets and strides count elements and must land on bytes */
  if ((p->rhs_offset * ti.rhs_bits) % 8 || (p->rhs_stride0 * ti.rhs_bits) % 8 ||
      ((int64_t)p->N0 * p->K0 * ti.rhs_bits) % 8)
    return UK_STATUS_BAD_ARGUMENT;
  /* rhs panels read in place (rows of a row-major matrix): K0 == 1 tiles only */
  if (p->rhs_stride1 && p->rhs_stride1 != (int64_t)p->N0 * p->K0 && p->K0 != 1) return UK_STATUS_BAD_ARGUMENT;
  if ((p->rhs_stride1 * ti.rhs_bits) % 8) return UK_STATUS_BAD_ARGUMENT;
  if (p->flags & UK_FLAG_GROUP_SCALES) return uk_mmt4d_group_scaled(p, row, &ti);
  const int64_t out_size = ti.acc_bits / 8;
  const char* lhs = (const char*)p->lhs_buffer + p->lhs_offset * ti.lhs_bits / 8;
  const char* rhs0 = (const char*)p->rhs_buffer + p->rhs_offset * ti.rhs_bits / 8;
  char* out = (char*)p->out_buffer + p->out_offset * out_size;
  const int64_t lhs_step = p->lhs_stride0 * ti.lhs_bits / 8;
  const int64_t rhs_step = p->rhs_stride0 * ti.rhs_bits / 8;
  const int64_t out_step = p->out_stride0 * out_size;
  const int64_t out_tile_bytes = (int64_t)p->M0 * p->N0 * out_size;
  for (int64_t m = 0; m < p->M; ++m) {
    const char* rhs = rhs0;
    char* out_tile = out;
    int64_t n = 0;
    if (group_fn)
      for (; n + UK_TILE_GROUP <= p->N; n += UK_TILE_GROUP) {
        group_fn(out_tile, lhs, rhs, p);
        rhs += UK_TILE_GROUP * rhs_step;
        out_tile += UK_TILE_GROUP * out_tile_bytes;
      }
    for (; n < p->N; ++n) {
      fn(out_tile, lhs, rhs, p);
      rhs += rhs_step;
      out_tile += out_tile_bytes;
    }
    lhs += lhs_step;
    out += out_step;
  }
  return UK_STATUS_OK;
}
