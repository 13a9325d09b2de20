/* C-level tests of the ukernels and the C runtime, run plain and under
 * -fsanitize=address,undefined (csrc/tests/run_c_tests.py).
 *
 * - every tile-table entry the CPU supports (and the generic fallback):
 *   exact results on small-integer inputs vs a naive reference, ACCUMULATE
 *   on/off, padded strides and offsets, shapes incl. zeros;
 * - uk_pack vs a naive reference under every flag combination;
 * - uk_matmul_run on the thread pool (bias + relu epilogue) vs a reference,
 *   including two threads dispatching on one pool at the same time. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uk_api.h"
#include "../uk_mmt4d_internal.h" /* the 16-bit float conversions */
#include "../uk_runtime.h"

static int g_failures = 0, g_checks = 0; /* test-program state only; the library has no globals */
#define CHECK(cond, ...)                                   \
  do {                                                     \
    ++g_checks;                                            \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
      ++g_failures;                                        \
    }                                                      \
  } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static int64_t rnd(int64_t lo, int64_t hi) { /* inclusive */
  rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
  return lo + (int64_t)(rng_state % (uint64_t)(hi - lo + 1));
}

typedef struct { uint32_t type; int32_t M0, N0, K0; uint64_t bits; uint32_t flags; } tile_case_t;

/* Element access by type and side (0: lhs, 1: rhs), so one harness serves every triple. */
static int64_t elem_bytes(uint32_t type, int side) {
  uk_type_info_t ti;
  uk_type_info(type, &ti);
  return (side ? ti.rhs_bits : ti.lhs_bits) == 4 ? 1 : (side ? ti.rhs_bits : ti.lhs_bits) / 8; /* int4: a byte
                                                                                 per element bought, half used */
}
static void value_range(uint32_t type, int side, int64_t* lo, int64_t* hi) {
  if ((type & UK_FLAG_LHS_S8_SYMMETRIC) && !side) { *lo = -127; *hi = 127; return; } /* the promise kept */
  switch (type & UK_TYPE_MASK) {
    case UK_TYPE_S8S8S32: *lo = -128; *hi = 127; return;
    case UK_TYPE_S16S16S32: *lo = -32768; *hi = 32767; return;
    case UK_TYPE_U8S8S32: *lo = side ? -128 : 0; *hi = side ? 127 : 255; return;
    case UK_TYPE_S8S4S32: *lo = side ? -8 : -128; *hi = side ? 7 : 127; return;
    default: *lo = -4; *hi = 4; return; /* small integers: exact in f32, f16 and bf16 */
  }
}
static void set_elem(uint32_t type, int side, void* buf, int64_t i, int64_t v) {
  switch (type) {
    case UK_TYPE_F32F32F32: ((float*)buf)[i] = (float)v; return;
    case UK_TYPE_F16F16F32: ((uint16_t*)buf)[i] = uk_f32_to_f16((float)v); return;
    case UK_TYPE_BF16BF16F32: ((uint16_t*)buf)[i] = uk_f32_to_bf16((float)v); return;
    case UK_TYPE_S16S16S32: ((int16_t*)buf)[i] = (int16_t)v; return;
    case UK_TYPE_U8S8S32: if (side) ((int8_t*)buf)[i] = (int8_t)v; else ((uint8_t*)buf)[i] = (uint8_t)v; return;
    case UK_TYPE_S8S4S32:
      if (!side) { ((int8_t*)buf)[i] = (int8_t)v; return; }
      ((uint8_t*)buf)[i / 2] = (uint8_t)((i & 1) ? ((((uint8_t*)buf)[i / 2] & 0x0F) | ((v & 0xF) << 4))
                                                  : ((((uint8_t*)buf)[i / 2] & 0xF0) | (v & 0xF)));
      return;
    default: ((int8_t*)buf)[i] = (int8_t)v; return;
  }
}
static int64_t get_elem(uint32_t type, int side, const void* buf, int64_t i) {
  switch (type) {
    case UK_TYPE_F32F32F32: return (int64_t)((const float*)buf)[i];
    case UK_TYPE_F16F16F32: return (int64_t)uk_f16_to_f32(((const uint16_t*)buf)[i]);
    case UK_TYPE_BF16BF16F32: return (int64_t)uk_bf16_to_f32(((const uint16_t*)buf)[i]);
    case UK_TYPE_S16S16S32: return ((const int16_t*)buf)[i];
    case UK_TYPE_U8S8S32: return side ? ((const int8_t*)buf)[i] : ((const uint8_t*)buf)[i];
    case UK_TYPE_S8S4S32: {
      if (!side) return ((const int8_t*)buf)[i];
      const uint8_t b = ((const uint8_t*)buf)[i / 2];
      const int v = (i & 1) ? b >> 4 : b & 0xF;
      return v >= 8 ? v - 16 : v;
    }
    default: return ((const int8_t*)buf)[i];
  }
}

static int test_mmt4d_case(const tile_case_t* tc, int64_t M, int64_t N, int64_t K, int accumulate, int padded) {
  uk_type_info_t ti;
  uk_type_info(tc->type, &ti);
  const int is_float = ti.acc_is_float;
  const int64_t M0 = tc->M0, N0 = tc->N0, K0 = tc->K0;
  const int64_t even = ti.rhs_bits == 4; /* int4 rhs: offsets and strides on whole bytes */
  const int64_t lo = padded ? rnd(0, 9) : 0, ro = (padded ? rnd(0, 9) : 0) & ~even, oo = padded ? rnd(0, 9) : 0;
  const int64_t ls = K * M0 * K0 + (padded ? rnd(0, 5) : 0), rs = (K * N0 * K0 + (padded ? rnd(0, 5) : 0) + even) & ~even;
  const int64_t os = N * M0 * N0 + (padded ? rnd(0, 5) : 0);
  const int64_t ln = lo + (M ? M : 1) * ls, rn = ro + (N ? N : 1) * rs, on = oo + (M ? M : 1) * os;
  char* lhs = malloc((size_t)(ln * elem_bytes(tc->type, 0))); char* rhs = calloc((size_t)rn, (size_t)elem_bytes(tc->type, 1));
  int32_t* out = malloc((size_t)(on * 4)); int64_t* ref = malloc((size_t)(on * 8));
  int64_t vlo, vhi;
  value_range(tc->type | tc->flags, 0, &vlo, &vhi);
  for (int64_t i = 0; i < ln; ++i) set_elem(tc->type, 0, lhs, i, rnd(vlo, vhi));
  value_range(tc->type, 1, &vlo, &vhi);
  for (int64_t i = 0; i < rn; ++i) set_elem(tc->type, 1, rhs, i, rnd(vlo, vhi));
  for (int64_t i = 0; i < on; ++i) {
    const int64_t v = rnd(-50, 50);
    if (is_float) ((float*)out)[i] = (float)v; else out[i] = (int32_t)v;
    ref[i] = v;
  }
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < M0; ++i)
        for (int64_t j = 0; j < N0; ++j) {
          int64_t s = accumulate ? ref[oo + m * os + n * M0 * N0 + i * N0 + j] : 0;
          for (int64_t k = 0; k < K; ++k)
            for (int64_t q = 0; q < K0; ++q) {
              const int64_t li = lo + m * ls + k * M0 * K0 + i * K0 + q, ri = ro + n * rs + k * N0 * K0 + j * K0 + q;
              s += get_elem(tc->type, 0, lhs, li) * get_elem(tc->type, 1, rhs, ri);
            }
          ref[oo + m * os + n * M0 * N0 + i * N0 + j] = is_float ? s : (int64_t)(int32_t)(uint32_t)s; /* wraps */
        }
  uk_mmt4d_params_t p;
  memset(&p, 0, sizeof p);
  p.lhs_buffer = lhs; p.lhs_offset = lo; p.lhs_stride0 = ls;
  p.rhs_buffer = rhs; p.rhs_offset = ro; p.rhs_stride0 = rs;
  p.out_buffer = out; p.out_offset = oo; p.out_stride0 = os;
  p.M = M; p.N = N; p.K = K; p.M0 = tc->M0; p.N0 = tc->N0; p.K0 = tc->K0;
  p.flags = tc->type | tc->flags | (accumulate ? UK_FLAG_ACCUMULATE : 0) | UK_FLAG_ALLOW_GENERIC_FALLBACK;
  p.cpu_data = &tc->bits;
  int bad = 0;
  CHECK(uk_mmt4d(&p) == UK_STATUS_OK, "uk_mmt4d status");
  for (int64_t i = 0; i < on && !bad; ++i) {
    const int64_t got = is_float ? (int64_t)((float*)out)[i] : out[i];
    if (got != ref[i]) {
      bad = 1;
      CHECK(0, "%s M0=%d N0=%d K0=%d MNK=%lld,%lld,%lld acc=%d pad=%d: elem %lld got %lld want %lld",
            uk_mmt4d_tile_name(p.flags, tc->M0, tc->N0, tc->K0, &tc->bits), tc->M0, tc->N0, tc->K0,
            (long long)M, (long long)N, (long long)K, accumulate, padded, (long long)i, (long long)got, (long long)ref[i]);
    }
  }
  free(lhs); free(rhs); free(out); free(ref);
  return bad;
}

static void test_all_tiles(uint64_t host) {
  tile_case_t cases[256];
  int n = 0;
  /* every row of the tile table (uk_mmt4d_tile_desc: the table itself, so a new row is tested
   * with no list here to update), with the flags it requires; then the generic fallback */
  for (int64_t i = 0; i < uk_mmt4d_tile_count() && n < 200; ++i) {
    uk_mmt4d_tile_desc_t t;
    CHECK(uk_mmt4d_tile_desc(i, &t) == UK_STATUS_OK, "uk_mmt4d_tile_desc(%lld)", (long long)i);
    if (t.generic) continue;
    cases[n++] = (tile_case_t){t.type, t.M0, t.N0, t.K0, t.required_cpu, t.required_flags};
    /* with exactly its CPU bits and flags, the row is the one selected (no later row shadows it) */
    CHECK(strcmp(uk_mmt4d_tile_name(t.type | t.required_flags, t.M0, t.N0, t.K0, &t.required_cpu), t.name) == 0,
          "row %lld (%s) is shadowed", (long long)i, t.name);
  }
  CHECK(uk_mmt4d_tile_desc(uk_mmt4d_tile_count(), &(uk_mmt4d_tile_desc_t){0}) == UK_STATUS_BAD_ARGUMENT,
        "tile_desc past the end");
  const uint32_t new_types[] = {UK_TYPE_F16F16F32, UK_TYPE_BF16BF16F32, UK_TYPE_S16S16S32, UK_TYPE_U8S8S32,
                                UK_TYPE_S8S4S32};
  for (int i = 0; i < 5; ++i) { /* the generic fallback, including an odd tile (even for int4) */
    cases[n++] = (tile_case_t){new_types[i], 8, 8, new_types[i] == UK_TYPE_F16F16F32 || new_types[i] == UK_TYPE_BF16BF16F32 ? 1 : 2, 0, 0};
    cases[n++] = (tile_case_t){new_types[i], 3, 5, new_types[i] == UK_TYPE_S8S4S32 ? 4 : 3, 0, 0};
  }
  cases[n++] = (tile_case_t){UK_TYPE_F32F32F32, 8, 8, 1, 0, 0};
  cases[n++] = (tile_case_t){UK_TYPE_F32F32F32, 3, 5, 7, 0, 0};
  cases[n++] = (tile_case_t){UK_TYPE_S8S8S32, 8, 8, 2, 0, 0};
  cases[n++] = (tile_case_t){UK_TYPE_S8S8S32, 3, 5, 7, 0, 0};
  /* a symmetric-lhs row without the flag: not chosen (the generic tile answers, exactly, even
   * with -128 in the lhs) */
  cases[n++] = (tile_case_t){UK_TYPE_S8S8S32, 8, 8, 4, UK_CPU_X86_AVX2_FMA, 0};
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 1, 1000}, {2, 2, 2}, {5, 7, 13}, {9, 9, 9}, {6, 13, 3},
                               {0, 3, 4}, {3, 0, 4}, {3, 4, 0}, {2, 5, 17}, {1, 9, 4096}};
  int run = 0, skipped = 0;
  for (int c = 0; c < n; ++c) {
    if ((host & cases[c].bits) != cases[c].bits) { ++skipped; continue; }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s)
      for (int acc = 0; acc < 2; ++acc)
        for (int pad = 0; pad < 2; ++pad) {
          test_mmt4d_case(&cases[c], shapes[s][0], shapes[s][1], shapes[s][2], acc, pad);
          ++run;
        }
  }
  printf("mmt4d: %d cases run, %d tile functions skipped (CPU lacks the feature)\n", run, skipped);
}

/* 16-bit packs into K0 = 2 tiles: f32 narrowed to bf16 (UK_PACK_NARROW_BF16, precision="bf16")
 * and 16-bit elements as they are, lhs walk and rhs walk, SIMD (where the host has it) and
 * portable, against uk_f32_to_bf16 element by element. Normal values only: the SIMD narrowing
 * flushes subnormals (as the vdpbf16ps tiles it feeds do). */
static void test_pack_16bit_pairs(uint64_t host) {
  int run = 0;
  const int tiles[][2] = {{16, 2}, {8, 2}, {1, 2}, {3, 2}, {16, 1}};
  for (int t = 0; t < 5; ++t)
    for (int rhs = 0; rhs < 2; ++rhs)
      for (int narrow = 0; narrow < 2; ++narrow)
        for (int simd = 0; simd < 2; ++simd)
          for (int rep = 0; rep < 3; ++rep) {
            const int64_t R = rnd(0, 70), C = rnd(0, 70), s0 = C + rnd(0, 3);
            const int64_t T0 = tiles[t][0], T1 = tiles[t][1];
            const int64_t TR = rhs ? T1 : T0, TC = rhs ? T0 : T1;
            const int64_t oR = (R + TR - 1) / TR, oC = (C + TC - 1) / TC;
            const int64_t o0 = rhs ? oC : oR, o1 = rhs ? oR : oC;
            const int64_t in_n = R * s0 + 1, out_n = o0 * o1 * T0 * T1 + 1;
            float* in = malloc((size_t)in_n * 4);
            uint16_t* in16 = malloc((size_t)in_n * 2);
            uint16_t* out = malloc((size_t)out_n * 2);
            for (int64_t i = 0; i < in_n; ++i) {
              in[i] = (float)rnd(-1000, 1000) / 3.0f + (rnd(0, 1) ? 1.0e-3f : -1.0e-3f);
              in16[i] = (uint16_t)rnd(0, 65535);
            }
            uk_pack_params_t p;
            memset(&p, 0, sizeof p);
            p.in_buffer = narrow ? (void*)in : (void*)in16;
            p.in_stride0 = s0; p.in_stride1 = 1;
            p.out_buffer = out; p.out_stride0 = o1 * T0 * T1;
            p.in_size0 = R; p.in_size1 = C; p.out_size0 = o0; p.out_size1 = o1;
            p.tile_size0 = (int32_t)T0; p.tile_size1 = (int32_t)T1;
            p.flags = UK_PACK_TYPE_X16 | (narrow ? UK_PACK_NARROW_BF16 : 0) |
                      (rhs ? UK_PACK_TRANSPOSE_INNER | UK_PACK_TRANSPOSE_OUTER : 0);
            p.cpu_data = simd ? &host : NULL;
            CHECK(uk_pack(&p) == UK_STATUS_OK, "uk_pack status (16-bit pairs)");
            for (int64_t a = 0; a < o0; ++a)
              for (int64_t b = 0; b < o1; ++b)
                for (int64_t i = 0; i < T0; ++i)
                  for (int64_t j = 0; j < T1; ++j) {
                    const int64_t orr = rhs ? b : a, occ = rhs ? a : b;
                    const int64_t r = orr * TR + (rhs ? j : i), c = occ * TC + (rhs ? i : j);
                    const int64_t idx = ((a * o1 + b) * T0 + i) * T1 + j;
                    const uint16_t want = (r < R && c < C) ? (narrow ? uk_f32_to_bf16(in[r * s0 + c]) : in16[r * s0 + c]) : 0;
                    if (out[idx] != want) {
                      CHECK(0, "16-bit pair pack mismatch T=%lldx%lld rhs=%d narrow=%d simd=%d", (long long)T0,
                            (long long)T1, rhs, narrow, simd);
                      goto next;
                    }
                  }
          next:
            free(in); free(in16); free(out);
            ++run;
          }
  printf("16-bit pair packs: %d cases run\n", run);
}

static void test_pack(uint64_t host) {
  int run = 0;
  const int tiles[][2] = {{8, 1}, {16, 2}, {3, 5}, {1, 1}, {6, 1}, {16, 1}, {16, 4}};
  for (int t = 0; t < 7; ++t)
    for (uint32_t fl = 0; fl < 4; ++fl)
      for (int is8 = 0; is8 < 2; ++is8)
        for (int simd = 0; simd < 2; ++simd) {
        const int64_t R = rnd(0, 60), C = rnd(0, 40), s1 = rnd(1, 2), s0 = C * s1 + rnd(0, 3);
        const int tin = fl & 1, tout = (fl >> 1) & 1;
        const int64_t T0 = tiles[t][0], T1 = tiles[t][1];
        const int64_t TR = tin ? T1 : T0, TC = tin ? T0 : T1;
        const int64_t oR = (R + TR - 1) / TR, oC = (C + TC - 1) / TC;
        const int64_t o0 = tout ? oC : oR, o1 = tout ? oR : oC;
        const int64_t in_n = R * s0 + 1, out_n = o0 * o1 * T0 * T1 + 1;
        float* in = malloc((size_t)in_n * 4); float* out = malloc((size_t)out_n * 4);
        for (int64_t i = 0; i < in_n; ++i) in[i] = (float)rnd(-100, 100);
        uk_pack_params_t p;
        memset(&p, 0, sizeof p);
        p.in_buffer = in; p.in_stride0 = s0; p.in_stride1 = s1;
        p.out_buffer = out; p.out_stride0 = o1 * T0 * T1;
        p.in_size0 = R; p.in_size1 = C; p.out_size0 = o0; p.out_size1 = o1;
        p.tile_size0 = (int32_t)T0; p.tile_size1 = (int32_t)T1;
        p.flags = (is8 ? UK_PACK_TYPE_I8 : UK_PACK_TYPE_F32) | (tin ? UK_PACK_TRANSPOSE_INNER : 0) |
                  (tout ? UK_PACK_TRANSPOSE_OUTER : 0);
        p.cpu_data = simd ? &host : NULL;
        if (simd) p.in_stride1 = 1; /* the SIMD packs need unit column stride */
        if (is8) for (int64_t i = 0; i < in_n; ++i) ((int8_t*)in)[i] = (int8_t)rnd(-100, 100);
        CHECK(uk_pack(&p) == UK_STATUS_OK, "uk_pack status");
        for (int64_t a = 0; a < o0; ++a)
          for (int64_t b = 0; b < o1; ++b)
            for (int64_t i = 0; i < T0; ++i)
              for (int64_t j = 0; j < T1; ++j) {
                const int64_t orr = tout ? b : a, occ = tout ? a : b;
                const int64_t r = orr * TR + (tin ? j : i), c = occ * TC + (tin ? i : j);
                const int64_t idx = ((a * o1 + b) * T0 + i) * T1 + j;
                const int64_t sc = p.in_stride1;
                const float want = (r < R && c < C) ? (is8 ? (float)((int8_t*)in)[r * s0 + c * sc] : in[r * s0 + c * sc]) : 0.0f;
                const float got = is8 ? (float)((int8_t*)out)[idx] : out[idx];
                if (got != want) { CHECK(0, "pack mismatch T=%lldx%lld flags=%u", (long long)T0, (long long)T1, fl); goto next; }
              }
      next:
        free(in); free(out);
        ++run;
        }
  printf("pack: %d cases run\n", run);
}

typedef struct { uk_pool_t* pool; uint64_t bits; int seed; int failures; } matmul_job_t;

static void* run_matmul_job(void* arg) {
  matmul_job_t* job = (matmul_job_t*)arg;
  const int64_t M = 37 + job->seed, N = 53, K = 29 + 3 * job->seed;
  const int32_t M0 = 8, N0 = 8, K0 = 1;
  float* a = malloc((size_t)(M * K) * 4); float* b = malloc((size_t)(K * N) * 4);
  float* bias = malloc((size_t)N * 4); float* out = malloc((size_t)(M * N) * 4);
  for (int64_t i = 0; i < M * K; ++i) a[i] = (float)((i * 7 + job->seed) % 9 - 4);
  for (int64_t i = 0; i < K * N; ++i) b[i] = (float)((i * 5) % 7 - 3);
  for (int64_t i = 0; i < N; ++i) bias[i] = (float)(i % 5 - 2);
  const int64_t M1 = (M + M0 - 1) / M0, N1 = (N + N0 - 1) / N0, K1 = K;
  const int64_t MC = 16, NC = 16, KC = 8;
  void* lhs = malloc((size_t)(M1 * K1 * M0 * K0) * 4); void* rhs = malloc((size_t)(N1 * K1 * N0 * K0) * 4);
  void* scratch = NULL;
  uk_epilogue_op_t ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].kind = UK_EPI_BIAS_COLUMN; ops[0].data = bias; ops[0].data_stride = 1;
  ops[1].kind = UK_EPI_RELU;
  uk_matmul_desc_t d;
  memset(&d, 0, sizeof d);
  d.type = UK_TYPE_F32F32F32; d.M = M; d.N = N; d.K = K;
  d.a = a; d.a_stride0 = K; d.a_stride1 = 1; d.b = b; d.b_stride0 = N; d.b_stride1 = 1;
  d.out = out; d.out_stride0 = N; d.M0 = M0; d.N0 = N0; d.K0 = K0; d.MC = MC; d.NC = NC; d.KC = KC;
  d.lhs_packed = lhs; d.rhs_packed = rhs;
  /* jobs 0-3: each combination of packing the lhs / rhs blocks in tile (per workgroup, right
   * before use; valid for any blocking, the planner uses them for one workgroup column / row) */
  d.lhs_pack_in_tile = job->seed & 1;
  d.rhs_pack_in_tile = (job->seed >> 1) & 1;
  if (d.lhs_pack_in_tile) d.lhs_packed = NULL; /* unused: a read of it would fault */
  d.scratch_stride = uk_matmul_scratch_bytes(&d);
  d.scratch = scratch = malloc((size_t)(d.scratch_stride * 2));
  d.mmt4d = uk_mmt4d; d.mmt4d_flags = UK_FLAG_ALLOW_GENERIC_FALLBACK; d.cpu_data = &job->bits;
  d.ops = ops; d.num_ops = 2; d.out_type = UK_OUT_F32; d.max_threads = 2; d.pack_tasks_hint = 4;
  for (int rep = 0; rep < 20; ++rep) {
    memset(out, 0xFF, (size_t)(M * N) * 4);
    if (uk_matmul_run(&d, job->pool) != UK_STATUS_OK) { job->failures++; break; }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float s = bias[j];
        for (int64_t k = 0; k < K; ++k) s += a[i * K + k] * b[k * N + j];
        if (s < 0) s = 0;
        if (out[i * N + j] != s) { job->failures++; goto done; }
      }
  }
done:
  free(a); free(b); free(bias); free(out); free(lhs); free(rhs); free(scratch);
  return NULL;
}

static void test_matmul_on_pool(uint64_t host) {
  uk_pool_t* pool = uk_pool_create(2, 200000);
  CHECK(pool && uk_pool_size(pool) == 2, "pool creation");
  matmul_job_t jobs[3] = {{pool, host, 0, 0}, {pool, host, 1, 0}, {pool, 0, 2, 0}};
  pthread_t th[3];
  for (int i = 0; i < 3; ++i) pthread_create(&th[i], NULL, run_matmul_job, &jobs[i]);
  for (int i = 0; i < 3; ++i) pthread_join(th[i], NULL);
  for (int i = 0; i < 3; ++i) CHECK(jobs[i].failures == 0, "matmul job %d failed", i);
  matmul_job_t solo = {NULL, host, 3, 0};
  run_matmul_job(&solo);
  CHECK(solo.failures == 0, "single-threaded matmul failed");
  uk_pool_destroy(pool);
  printf("matmul dispatch: 3 concurrent callers on one pool + 1 without a pool (lhs/rhs packed in tile or not)\n");
}

/* UK_FLAG_GROUP_SCALES: s8s8 and s8s4 tiles (one-row tiles in groups of UK_TILE_GROUP and
 * singly, and a 2-row tile) over full-range values, K in 3 groups plus a partial one, with
 * and without ACCUMULATE, against a double reference of sum_g s[g][j] * dot_g. */
static void test_group_scaled(uint64_t host) {
  int run = 0;
  /* (type, N0, K0, flags): the AVX2 vpmaddwd (K0 = 2) and vpmaddubsw (K0 = 4) tiles, the
   * AVX-512 VNNI vpdpbusd ones (N0 = 16); each runs where the CPU has it, else the generic tile */
  const struct { uint32_t type; int32_t N0, K0; uint32_t flags; } cases[] = {
      {UK_TYPE_S8S8S32, 8, 2, 0}, {UK_TYPE_S8S4S32, 8, 2, 0}, {UK_TYPE_S8S8S32, 8, 4, UK_FLAG_LHS_S8_SYMMETRIC},
      {UK_TYPE_S8S4S32, 8, 4, 0}, {UK_TYPE_S8S8S32, 16, 4, 0}, {UK_TYPE_S8S4S32, 16, 4, 0},
      {UK_TYPE_U8S8S32, 16, 4, 0}};
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; ++t)
    for (int32_t M0 = 1; M0 <= 4; M0 *= 2)
      for (int accumulate = 0; accumulate < 2; ++accumulate) {
        const int32_t N0 = cases[t].N0, K0 = cases[t].K0;
        const uint32_t sym = cases[t].flags, type = cases[t].type;
        const int64_t M = 2, N = 6, K = 3 * 16 + 5, gk = 16, G = (K + gk - 1) / gk;
        const int s4 = type == UK_TYPE_S8S4S32, u8 = type == UK_TYPE_U8S8S32;
        int8_t* lhs = malloc((size_t)(M * K * M0 * K0));
        int8_t* rhs_vals = malloc((size_t)(N * K * N0 * K0));
        uint8_t* rhs = malloc((size_t)(N * K * N0 * K0));
        float* scales = malloc((size_t)(N * G * N0) * 4);
        float* out = malloc((size_t)(M * N * M0 * N0) * 4);
        for (int64_t i = 0; i < M * K * M0 * K0; ++i) lhs[i] = (int8_t)rnd(sym ? -127 : u8 ? 0 : -128, u8 ? 255 : 127);
        for (int64_t i = 0; i < N * K * N0 * K0; ++i) rhs_vals[i] = (int8_t)(s4 ? rnd(-8, 7) : rnd(-128, 127));
        lhs[0] = (int8_t)(sym ? -127 : u8 ? 255 : -128); rhs_vals[0] = s4 ? -8 : -128;
        for (int64_t i = 0; i < N * K * N0 * K0; ++i) {
          if (!s4) { rhs[i] = (uint8_t)rhs_vals[i]; continue; }
          if (i % 2 == 0) rhs[i / 2] = (uint8_t)(rhs_vals[i] & 0x0F);
          else rhs[i / 2] |= (uint8_t)((rhs_vals[i] & 0x0F) << 4);
        }
        for (int64_t i = 0; i < N * G * N0; ++i) scales[i] = (float)rnd(1, 8) * 0.125f;
        for (int64_t i = 0; i < M * N * M0 * N0; ++i) out[i] = accumulate ? (float)rnd(-9, 9) : 0.0f;
        float* before = malloc((size_t)(M * N * M0 * N0) * 4);
        memcpy(before, out, (size_t)(M * N * M0 * N0) * 4);
        uk_mmt4d_params_t p;
        memset(&p, 0, sizeof p);
        p.lhs_buffer = lhs; p.lhs_stride0 = K * M0 * K0;
        p.rhs_buffer = rhs; p.rhs_stride0 = K * N0 * K0;
        p.out_buffer = out; p.out_stride0 = N * M0 * N0;
        p.M = M; p.N = N; p.K = K; p.M0 = M0; p.N0 = N0; p.K0 = K0;
        p.flags = type | sym | UK_FLAG_GROUP_SCALES | UK_FLAG_ALLOW_GENERIC_FALLBACK |
                  (accumulate ? UK_FLAG_ACCUMULATE : 0);
        p.cpu_data = &host;
        p.group_scales = scales; p.group_scales_stride0 = G * N0; p.group_k = gk;
        const int status = uk_mmt4d(&p);
        CHECK(status == UK_STATUS_OK, "group scaled status %d", status);
        int bad = 0;
        for (int64_t m = 0; m < M && !status; ++m)
          for (int64_t n = 0; n < N; ++n)
            for (int32_t i = 0; i < M0; ++i)
              for (int32_t j = 0; j < N0; ++j) {
                double want = before[((m * N + n) * M0 + i) * N0 + j];
                for (int64_t g = 0; g < G; ++g) {
                  int64_t dot = 0;
                  for (int64_t k = g * gk; k < K && k < (g + 1) * gk; ++k)
                    for (int32_t kk = 0; kk < K0; ++kk)
                      dot += (int64_t)(u8 ? (uint8_t)lhs[((m * K + k) * M0 + i) * K0 + kk]
                                          : lhs[((m * K + k) * M0 + i) * K0 + kk]) *
                             rhs_vals[((n * K + k) * N0 + j) * K0 + kk];
                  want += (double)scales[(n * G + g) * N0 + j] * (double)dot;
                }
                const double got = out[((m * N + n) * M0 + i) * N0 + j];
                bad += fabs(got - want) > 1e-5 * (fabs(want) + 1.0);
              }
        CHECK(bad == 0, "group scaled type %u N0 %d K0 %d M0 %d acc %d: %d wrong", type, N0, K0, M0, accumulate, bad);
        p.flags = UK_TYPE_F32F32F32 | UK_FLAG_GROUP_SCALES | UK_FLAG_ALLOW_GENERIC_FALLBACK;
        p.K0 = 1;
        CHECK(uk_mmt4d(&p) == UK_STATUS_BAD_ARGUMENT, "group scales accepted for a float type");
        free(lhs); free(rhs_vals); free(rhs); free(scales); free(out); free(before);
        ++run;
      }
  printf("group-scaled mmt4d: %d cases\n", run);
}

/* Small-M dispatch reading b in place (rhs_direct): a partial last column tile,
 * K past one accumulation group (UK_DIRECT_GROUP x KC), padded and negative row
 * strides, with and without the pool; exact on small integers. */
static void test_matmul_rhs_direct(uint64_t host) {
  uk_pool_t* pool = uk_pool_create(2, 0);
  int run = 0;
  for (int variant = 0; variant < 8; ++variant) {
    const int64_t M = (variant & 1) ? 5 : 1, N = 53, K = 700, row = (variant & 2) ? N + 3 : N;
    const int reversed = (variant & 4) != 0;
    const int32_t M0 = 8, N0 = 8, K0 = 1;
    float* a = malloc((size_t)(M * K) * 4); float* bbuf = malloc((size_t)(K * row) * 4);
    float* out = malloc((size_t)(M * N) * 4);
    for (int64_t i = 0; i < M * K; ++i) a[i] = (float)((i * 7 + variant) % 9 - 4);
    for (int64_t i = 0; i < K * row; ++i) bbuf[i] = (float)((i * 5) % 7 - 3);
    uk_matmul_desc_t d;
    memset(&d, 0, sizeof d);
    d.type = UK_TYPE_F32F32F32; d.M = M; d.N = N; d.K = K;
    d.a = a; d.a_stride0 = K; d.a_stride1 = 1;
    d.b = reversed ? bbuf + (K - 1) * row : bbuf; d.b_stride0 = reversed ? -row : row; d.b_stride1 = 1;
    d.out = out; d.out_stride0 = N; d.M0 = M0; d.N0 = N0; d.K0 = K0; d.MC = 8; d.NC = 24; d.KC = 8;
    d.lhs_packed = malloc((size_t)(K * M0) * 4);
    d.rhs_pack_in_tile = 1; d.rhs_direct = 1;
    d.scratch_stride = uk_matmul_scratch_bytes(&d);
    d.scratch = malloc((size_t)(d.scratch_stride * 2));
    d.mmt4d = uk_mmt4d; d.mmt4d_flags = UK_FLAG_ALLOW_GENERIC_FALLBACK; d.cpu_data = &host;
    d.out_type = UK_OUT_F32; d.max_threads = 2; d.pack_tasks_hint = 4;
    const int status = uk_matmul_run(&d, pool);
    CHECK(status == UK_STATUS_OK, "rhs_direct variant %d: status %d", variant, status);
    int bad = 0;
    for (int64_t i = 0; i < M && !status; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += (double)a[i * K + k] * ((const float*)d.b)[k * d.b_stride0 + j];
        bad += out[i * N + j] != (float)s;
      }
    CHECK(bad == 0, "rhs_direct variant %d: %d wrong outputs", variant, bad);
    d.K0 = 2; /* in-place reads need K0 == 1 */
    CHECK(uk_matmul_run(&d, pool) == UK_STATUS_BAD_ARGUMENT, "rhs_direct with K0 = 2 accepted");
    free(a); free(bbuf); free(out); free(d.lhs_packed); free(d.scratch);
    ++run;
  }
  uk_pool_destroy(pool);
  printf("matmul rhs read in place: %d variants\n", run);
}

/* Every epilogue kind on a row segment, for each ISA variant the CPU has,
 * against scalar double-precision references (tolerance 2e-6 (|x|+1)), and
 * the integer paths exactly; then a matmul whose output is requantized to s8
 * and u8 through the typed store. */
static double ref_op(int kind, double x, double operand, const float* p) {
  switch (kind) {
    case UK_EPI_BIAS_COLUMN: case UK_EPI_BIAS_ROW: case UK_EPI_RESIDUAL: return x + operand;
    case UK_EPI_RELU: return x < 0 ? 0 : x;
    case UK_EPI_RELU6: return x < 0 ? 0 : (x > 6 ? 6 : x);
    case UK_EPI_CLAMP: return x < p[0] ? p[0] : (x > p[1] ? p[1] : x);
    case UK_EPI_SCALE: return x * operand;
    case UK_EPI_GELU_ERF: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case UK_EPI_GELU_TANH: return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case UK_EPI_SILU: return x / (1 + exp(-x));
    case UK_EPI_SIGMOID: return 1 / (1 + exp(-x));
    case UK_EPI_TANH: return tanh(x);
    default: return x;
  }
}

static void test_epilogue_ops(uint64_t host) {
  const int kinds[] = {UK_EPI_BIAS_COLUMN, UK_EPI_BIAS_ROW, UK_EPI_RESIDUAL, UK_EPI_RELU, UK_EPI_RELU6,
                       UK_EPI_CLAMP, UK_EPI_SCALE, UK_EPI_GELU_ERF, UK_EPI_GELU_TANH, UK_EPI_SILU,
                       UK_EPI_SIGMOID, UK_EPI_TANH};
  const uint64_t variants[] = {0, UK_CPU_X86_AVX2_FMA, UK_CPU_X86_AVX2_FMA | UK_CPU_X86_AVX512_BASE};
  enum { LEN = 37, ROWS = 3 };
  float operand[ROWS * 2 * LEN];
  for (int i = 0; i < ROWS * 2 * LEN; ++i) operand[i] = (float)rnd(-3000, 3000) / 1000.0f;
  int run = 0;
  for (unsigned v = 0; v < 3; ++v) {
    const uint64_t cpu = variants[v];
    if ((host & cpu) != cpu) continue;
    for (unsigned k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
      const int64_t row = 1, col0 = 5;
      float x[LEN];
      double want[LEN];
      uk_epilogue_op_t op;
      memset(&op, 0, sizeof op);
      op.kind = kinds[k];
      op.p0 = -0.5f; op.p1 = 0.75f; /* clamp bounds */
      if (kinds[k] == UK_EPI_BIAS_COLUMN || kinds[k] == UK_EPI_SCALE) { op.data = operand; op.data_stride = 2; }
      if (kinds[k] == UK_EPI_BIAS_ROW) { op.data = operand; op.data_stride = 3; }
      if (kinds[k] == UK_EPI_RESIDUAL) { op.data = operand; op.data_stride = 2 * LEN - 3; op.data_stride1 = 1; }
      for (int j = 0; j < LEN; ++j) {
        x[j] = (float)rnd(-8000, 8000) / 1000.0f;
        double operand_j = 0;
        if (kinds[k] == UK_EPI_BIAS_COLUMN || kinds[k] == UK_EPI_SCALE) operand_j = operand[(col0 + j) * 2];
        if (kinds[k] == UK_EPI_BIAS_ROW) operand_j = operand[row * 3];
        if (kinds[k] == UK_EPI_RESIDUAL) operand_j = operand[row * (2 * LEN - 3) + col0 + j];
        want[j] = ref_op(kinds[k], x[j], operand_j, &op.p0);
      }
      CHECK(uk_epilogue_check(UK_TYPE_F32F32F32, &op, 1, UK_OUT_F32) == UK_STATUS_OK, "check kind %d", kinds[k]);
      uk_epilogue_apply(UK_TYPE_F32F32F32, &op, 1, x, LEN, row, col0, &cpu);
      for (int j = 0; j < LEN; ++j) {
        const double err = fabs((double)x[j] - want[j]), tol = 2e-6 * (fabs(want[j]) + 1);
        if (err > tol) { CHECK(0, "epilogue kind %d cpu %llx: x[%d] = %g, want %g", kinds[k], (unsigned long long)cpu, j, x[j], want[j]); break; }
      }
      ++run;
    }
    /* int32 domain: bias (wrapping), clamp with one bound, relu; then to float + requantize */
    {
      int32_t xi[LEN], bias[LEN];
      int64_t want[LEN];
      for (int j = 0; j < LEN; ++j) { xi[j] = (int32_t)rnd(-100000, 100000); bias[j] = (int32_t)rnd(-5000, 5000); }
      xi[0] = INT32_MAX; bias[0] = 1; /* wraps like numpy int32 */
      uk_epilogue_op_t ops[5];
      memset(ops, 0, sizeof ops);
      ops[0].kind = UK_EPI_BIAS_COLUMN; ops[0].is_int = 1; ops[0].data = bias; ops[0].data_stride = 1;
      ops[1].kind = UK_EPI_CLAMP; ops[1].is_int = 1; ops[1].p1 = 90000.0f; ops[1].p3 = 1.0f; /* hi only */
      ops[2].kind = UK_EPI_RELU; ops[2].is_int = 1;
      ops[3].kind = UK_EPI_TO_FLOAT; ops[3].is_int = 1;
      ops[4].kind = UK_EPI_REQUANTIZE; ops[4].p0 = 0.002f; ops[4].p1 = -7.0f; ops[4].p2 = -128.0f; ops[4].p3 = 127.0f;
      for (int j = 0; j < LEN; ++j) {
        int64_t t = (int64_t)(int32_t)((uint32_t)xi[j] + (uint32_t)bias[j]);
        t = t > 90000 ? 90000 : t;
        t = t < 0 ? 0 : t;
        float q = rintf((float)t * 0.002f) + -7.0f;
        q = q < -128 ? -128 : (q > 127 ? 127 : q);
        want[j] = (int64_t)q;
      }
      CHECK(uk_epilogue_check(UK_TYPE_S8S8S32, ops, 5, UK_OUT_S8) == UK_STATUS_OK, "int chain check");
      CHECK(uk_epilogue_check(UK_TYPE_S8S8S32, ops, 5, UK_OUT_F32) != UK_STATUS_OK, "int chain must not store f32");
      uk_epilogue_apply(UK_TYPE_S8S8S32, ops, 5, xi, LEN, 0, 0, &cpu);
      int8_t stored[LEN];
      uk_epilogue_store(UK_OUT_S8, xi, stored, LEN);
      for (int j = 0; j < LEN; ++j)
        if (stored[j] != want[j]) { CHECK(0, "int chain cpu %llx: [%d] = %d, want %lld", (unsigned long long)cpu, j, stored[j], (long long)want[j]); break; }
      ++run;
    }
  }
  /* inconsistent sequences are rejected */
  uk_epilogue_op_t bad;
  memset(&bad, 0, sizeof bad);
  bad.kind = UK_EPI_GELU_ERF; bad.is_int = 1;
  CHECK(uk_epilogue_check(UK_TYPE_S8S8S32, &bad, 1, UK_OUT_S32) != UK_STATUS_OK, "float op in int domain");
  bad.kind = 99;
  CHECK(uk_epilogue_check(UK_TYPE_F32F32F32, &bad, 1, UK_OUT_F32) != UK_STATUS_OK, "unknown kind");
  printf("epilogue: %d op/variant cases run\n", run);
}

static void test_requantized_matmul(uint64_t host) {
  const int64_t M = 19, N = 23, K = 31;
  int8_t a[19 * 31], b[31 * 23];
  for (int i = 0; i < M * K; ++i) a[i] = (int8_t)rnd(-128, 127);
  for (int i = 0; i < K * N; ++i) b[i] = (int8_t)rnd(-128, 127);
  float scale[23];
  for (int j = 0; j < N; ++j) scale[j] = (float)rnd(5, 60) / 10000.0f;
  for (int out_kind = 0; out_kind < 2; ++out_kind) {
    const int32_t out_type = out_kind ? UK_OUT_U8 : UK_OUT_S8;
    const float zp = out_kind ? 128.0f : -3.0f, qmin = out_kind ? 0.0f : -128.0f, qmax = out_kind ? 255.0f : 127.0f;
    uk_epilogue_op_t ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].kind = UK_EPI_TO_FLOAT; ops[0].is_int = 1;
    ops[1].kind = UK_EPI_REQUANTIZE; ops[1].data = scale; ops[1].data_stride = 1;
    ops[1].p1 = zp; ops[1].p2 = qmin; ops[1].p3 = qmax;
    const int32_t M0 = 8, N0 = 8, K0 = 2;
    const int64_t M1 = (M + M0 - 1) / M0, N1 = (N + N0 - 1) / N0, K1 = (K + K0 - 1) / K0;
    int8_t* lhs = malloc((size_t)(M1 * K1 * M0 * K0));
    int8_t* rhs = malloc((size_t)(N1 * K1 * N0 * K0));
    const int64_t MC = 8, NC = 16, KC = 8;
    void* scratch = NULL;
    uint8_t out[19 * 23];
    uk_matmul_desc_t d;
    memset(&d, 0, sizeof d);
    d.type = UK_TYPE_S8S8S32; d.M = M; d.N = N; d.K = K;
    d.a = a; d.a_stride0 = K; d.a_stride1 = 1; d.b = b; d.b_stride0 = N; d.b_stride1 = 1;
    d.out = out; d.out_stride0 = N; d.M0 = M0; d.N0 = N0; d.K0 = K0; d.MC = MC; d.NC = NC; d.KC = KC;
    d.lhs_packed = lhs; d.rhs_packed = rhs;
    d.scratch_stride = uk_matmul_scratch_bytes(&d);
    d.scratch = scratch = malloc((size_t)d.scratch_stride);
    d.mmt4d = uk_mmt4d; d.mmt4d_flags = UK_FLAG_ALLOW_GENERIC_FALLBACK; d.cpu_data = &host;
    d.ops = ops; d.num_ops = 2; d.out_type = out_type; d.max_threads = 1; d.pack_tasks_hint = 1;
    CHECK(uk_matmul_run(&d, NULL) == UK_STATUS_OK, "requantized matmul status");
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        int32_t acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += (int32_t)a[i * K + k] * (int32_t)b[k * N + j];
        float q = rintf((float)acc * scale[j]) + zp;
        q = q < qmin ? qmin : (q > qmax ? qmax : q);
        const int got = out_kind ? (int)out[i * N + j] : (int)((int8_t*)out)[i * N + j];
        if (got != (int)q) { CHECK(0, "requantized matmul out %d [%lld,%lld] = %d, want %d", out_kind, (long long)i, (long long)j, got, (int)q); goto next; }
      }
  next:
    free(lhs); free(rhs); free(scratch);
  }
  printf("requantized matmul: s8 and u8 outputs\n");
}

/* uk_quantize_rows_s8: against a scalar reference (division, rintf), generic and SIMD, one
 * thread and split over a pool, with ties, an all-zero row and a strided x; NaN/Inf rejected. */
static void test_quantize_rows(uint64_t host) {
  const int64_t M = 37, K = 8000, xs = K + 5; /* 296000 elements: 4 pool tasks of 10, 10, 10, 7 rows */
  float* x = malloc((size_t)(M * xs) * sizeof(float));
  int8_t* q = malloc((size_t)(M * K));
  float* s = malloc((size_t)M * sizeof(float));
  for (int64_t i = 0; i < M * xs; ++i) x[i] = (float)rnd(-100000, 100000) / 997.0f;
  for (int64_t k = 0; k < K; ++k) x[k] = 0.0f;                       /* row 0: all zero */
  for (int64_t k = 0; k < K; ++k) x[xs + k] = (float)(k % 255) - 127.0f; /* row 1: exact, max 127 */
  for (int64_t k = 0; k < K; ++k) x[2 * xs + k] = (float)(k % 509) * 0.5f - 127.0f; /* row 2: ties .5 */
  uk_pool_t* pool = uk_pool_create(3, 0);
  const uint64_t cpus[2] = {0, host};
  for (int c = 0; c < 2; ++c)
    for (int threads = 1; threads <= 3; threads += 2) {
      memset(q, 0x55, (size_t)(M * K));
      CHECK(uk_quantize_rows_s8(x, M, K, xs, q, K, s, &cpus[c], threads > 1 ? pool : NULL, threads) == UK_STATUS_OK,
            "quantize status");
      int bad = 0;
      for (int64_t i = 0; i < M; ++i) {
        float amax = 0.0f;
        for (int64_t k = 0; k < K; ++k) amax = fabsf(x[i * xs + k]) > amax ? fabsf(x[i * xs + k]) : amax;
        const float sx = amax / 127.0f, d = sx > 0.0f ? sx : 1.0f;
        bad += s[i] != sx;
        for (int64_t k = 0; k < K; ++k) {
          float v = rintf(x[i * xs + k] / d);
          v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
          bad += q[i * K + k] != (int8_t)v;
        }
      }
      CHECK(bad == 0, "quantize rows (cpu %d, %d threads): %d wrong", c, threads, bad);
    }
  x[5 * xs + 17] = NAN;
  CHECK(uk_quantize_rows_s8(x, M, K, xs, q, K, s, &host, pool, 3) == UK_STATUS_BAD_ARGUMENT, "NaN accepted");
  x[5 * xs + 17] = INFINITY;
  CHECK(uk_quantize_rows_s8(x, M, K, xs, q, K, s, &host, NULL, 1) == UK_STATUS_BAD_ARGUMENT, "Inf accepted");
  CHECK(uk_quantize_rows_s8(x, -1, K, xs, q, K, s, &host, NULL, 1) == UK_STATUS_BAD_ARGUMENT, "M < 0 accepted");
  CHECK(uk_quantize_rows_s8(x, 0, K, xs, q, K, s, &host, pool, 3) == UK_STATUS_OK, "M = 0");
  uk_pool_destroy(pool);
  free(x); free(q); free(s);
  printf("quantize rows: generic and SIMD, 1 and 3 threads\n");
}

/* uk_qlinear_run (the few-row quantized Linear): the layout written here from its documentation
 * (uk_runtime.h), small-integer weights and x rows whose max |x| is 127 (so the quantized x is
 * x itself and its scale 1) and power-of-two scales: every result is exact. Every CPU level
 * (portable, AVX2, the host), one thread and a pool splitting the panels, int8 and int4, per
 * channel (K off the 4 and 8 steps) and per group, N off the 64-column panels, M = 1..40, a bias
 * op; then the arguments it must refuse. */
static void ql_layout(uint8_t* lay, const int8_t* q, const float* s, int64_t N, int64_t K, int bits, int64_t group) {
  const int64_t step = bits == 8 ? 4 : 8, Kp = (K + step - 1) / step * step, gk = group ? group : Kp;
  const int64_t G = group ? K / group : 1, steps = gk / step, chunk = steps * 256 + 256 + (bits == 8 ? 256 : 0);
  const int64_t P = (N + 63) / 64;
  memset(lay, 0, (size_t)(P * G * chunk));
  if (bits == 4) /* zero weights are nibble 8 (w + 8) */
    for (int64_t p = 0; p < P; ++p)
      for (int64_t g = 0; g < G; ++g) memset(lay + (p * G + g) * chunk, 0x88, (size_t)(steps * 256));
  for (int64_t n = 0; n < N; ++n) {
    const int64_t p = n / 64, u = (n % 64) / 16, j = n % 16;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t g = k / gk, kk = k % gk;
      uint8_t* c = lay + (p * G + g) * chunk;
      const int8_t w = q[n * K + k];
      if (bits == 8) {
        c[(kk / 4) * 256 + u * 64 + 4 * j + kk % 4] = (uint8_t)w;
      } else {
        uint8_t* b = &c[(kk / 8) * 256 + u * 64 + 4 * j + kk % 4];
        *b = (kk % 8) < 4 ? (uint8_t)((*b & 0xF0) | (w + 8)) : (uint8_t)((*b & 0x0F) | ((w + 8) << 4));
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      uint8_t* c = lay + (p * G + g) * chunk + steps * 256;
      memcpy(c + 4 * (16 * u + j), &s[n * G + g], 4);
      if (bits == 8) {
        int32_t sum = 0;
        for (int64_t k = g * gk; k < (g + 1) * gk && k < K; ++k) sum += q[n * K + k];
        sum *= 128;
        memcpy(c + 256 + 4 * (16 * u + j), &sum, 4);
      }
    }
  }
}

static void test_qlinear(uint64_t host) {
  uk_pool_t* pool = uk_pool_create(2, 0);
  const uint64_t cpus[3] = {0, host & (UK_CPU_X86_AVX2_FMA | UK_CPU_ARM_NEON), host}; /* portable, middle, best */
  const struct { int bits; int64_t group, N, K; } cases[] = {
      {8, 0, 5, 3}, {8, 0, 70, 37}, {8, 32, 130, 64}, {8, 0, 64, 1024}, {4, 0, 17, 13}, {4, 0, 200, 100},
      {4, 32, 65, 96}, {4, 128, 129, 256}, {8, 0, 1, 1}};
  int bad = 0, calls = 0;
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ++ci) {
    const int bits = cases[ci].bits;
    const int64_t group = cases[ci].group, N = cases[ci].N, K = cases[ci].K, G = group ? K / group : 1;
    int8_t* q = malloc((size_t)(N * K));
    float* sc = malloc((size_t)(N * G) * sizeof(float));
    float* bias = malloc((size_t)N * sizeof(float));
    for (int64_t i = 0; i < N * K; ++i) q[i] = (int8_t)(bits == 8 ? rnd(-128, 127) : rnd(-8, 7));
    for (int64_t i = 0; i < N * G; ++i) sc[i] = ldexpf(1.0f, (int)rnd(-6, 0));
    for (int64_t n = 0; n < N; ++n) bias[n] = (float)rnd(-8, 8);
    uk_qlinear_desc_t d;
    memset(&d, 0, sizeof d);
    d.N = N; d.K = K; d.bits = bits; d.group_size = (int32_t)group;
    const int64_t lay_bytes = (uk_qlinear_weight_bytes(&d) + 63) / 64 * 64;
    uint8_t* lay = aligned_alloc(64, (size_t)lay_bytes);
    ql_layout(lay, q, sc, N, K, bits, group);
    d.weight = lay;
    uk_epilogue_op_t op;
    memset(&op, 0, sizeof op);
    op.kind = UK_EPI_BIAS_COLUMN;
    op.data = bias;
    op.data_stride = 1;
    const int64_t Mmax = 40, os = N + 3; /* rows: decode sizes, 8-row blocks and their remainders; padded rows */
    float* x = malloc((size_t)(Mmax * (K + 1)) * sizeof(float));
    float* out = malloc((size_t)(Mmax * os) * sizeof(float));
    const int64_t wb = (uk_qlinear_work_bytes(&d, Mmax) + 63) / 64 * 64;
    void* work = aligned_alloc(64, (size_t)wb);
    for (int64_t M = 1; M <= Mmax; M += (M < 9 ? 1 : 7)) {
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t k = 0; k < K; ++k) x[i * (K + 1) + k] = (float)rnd(-127, 127);
        x[i * (K + 1) + rnd(0, K - 1)] = (i & 1) ? -127.0f : 127.0f; /* max |x| = 127: scale 1 */
      }
      for (int c = 0; c < 3; ++c)
        for (int with_ops = 0; with_ops < 2; ++with_ops)
          for (int threads = 1; threads <= 2; ++threads) {
            d.cpu_data = &cpus[c];
            d.ops = with_ops ? &op : NULL;
            d.num_ops = with_ops;
            d.max_threads = threads;
            d.parallel_min_bytes = 0;
            for (int64_t i = 0; i < Mmax * os; ++i) out[i] = -999.0f;
            const int st = uk_qlinear_run(&d, x, M, K + 1, out, os, work, threads > 1 ? pool : NULL);
            ++calls;
            if (st != UK_STATUS_OK) { CHECK(0, "qlinear status %d", st); continue; }
            for (int64_t i = 0; i < M; ++i) {
              for (int64_t n = 0; n < N; ++n) {
                double want = 0.0;
                for (int64_t g = 0; g < G; ++g) {
                  int64_t dot = 0;
                  const int64_t k0 = group ? g * group : 0, k1 = group ? k0 + group : K;
                  for (int64_t k = k0; k < k1; ++k) dot += (int64_t)q[n * K + k] * (int64_t)x[i * (K + 1) + k];
                  want += (double)dot * sc[n * G + g];
                }
                if (with_ops) want += bias[n];
                bad += out[i * os + n] != (float)want;
              }
              for (int64_t n = N; n < os; ++n) bad += out[i * os + n] != -999.0f; /* nothing past N */
            }
            for (int64_t i = M * os; i < Mmax * os; ++i) bad += out[i] != -999.0f; /* nothing past M */
          }
    }
    CHECK(bad == 0, "qlinear bits %d group %lld N %lld K %lld: %d wrong", bits, (long long)group, (long long)N,
          (long long)K, bad);
    bad = 0;
    /* refused: too many rows, a misaligned work area, a group not dividing K, a float-only op
     * list with an int operand, NaN in x */
    d.cpu_data = &host;
    d.ops = NULL;
    d.num_ops = 0;
    CHECK(uk_qlinear_run(&d, x, -1, K + 1, out, os, work, NULL) == UK_STATUS_BAD_ARGUMENT, "M < 0 accepted");
    CHECK(uk_qlinear_run(&d, x, 1, K + 1, out, os, (char*)work + 8, NULL) == UK_STATUS_BAD_ARGUMENT,
          "misaligned work accepted");
    CHECK(uk_qlinear_run(&d, x, 1, K - 1, out, os, work, NULL) == UK_STATUS_BAD_ARGUMENT, "x stride < K accepted");
    uk_qlinear_desc_t e = d;
    e.group_size = 12;
    CHECK(uk_qlinear_run(&e, x, 1, K + 1, out, os, work, NULL) == UK_STATUS_BAD_ARGUMENT, "group 12 accepted");
    e = d;
    e.weight = lay + 4;
    CHECK(uk_qlinear_run(&e, x, 1, K + 1, out, os, work, NULL) == UK_STATUS_BAD_ARGUMENT, "misaligned weight accepted");
    x[0] = NAN;
    CHECK(uk_qlinear_run(&d, x, 1, K + 1, out, os, work, NULL) == UK_STATUS_BAD_ARGUMENT, "NaN accepted");
    free(q); free(sc); free(bias); free(lay); free(x); free(out); free(work);
  }
  uk_pool_destroy(pool);
  printf("qlinear: %d calls, int8/int4, per channel and per group, every CPU level, 1 and 2 threads\n", calls);
}

/* The dispatch's side of UK_FLAG_EPILOGUE_FUSED, with a stand-in for a generated fused kernel:
 * it computes its tiles through uk_mmt4d (flag removed) and, on the flagged call, writes
 * relu(sum + bias) of the valid region into final_out itself (checking the fields it gets). The
 * dispatch must pass the flag on each workgroup's last K block only, skip its own write-back,
 * and leave everything outside the result untouched (edges in M and N, several K blocks). */
static _Atomic int g_fused_calls, g_fused_bad; /* the pool's threads call the kernel */
static int fake_fused_kernel(const uk_mmt4d_params_t* p) {
  uk_mmt4d_params_t q = *p;
  q.flags &= ~(uint32_t)UK_FLAG_EPILOGUE_FUSED;
  const int status = uk_mmt4d(&q);
  if (status != UK_STATUS_OK || !(p->flags & UK_FLAG_EPILOGUE_FUSED)) return status;
  ++g_fused_calls;
  if (p->epilogue_num_ops != 2 || p->epilogue_ops[0].kind != UK_EPI_BIAS_COLUMN || p->final_type != UK_OUT_F32 ||
      p->rows <= 0 || p->cols <= 0 || p->row0 % p->M0 || p->col0 % p->N0) {
    ++g_fused_bad;
    return UK_STATUS_BAD_ARGUMENT;
  }
  const float* bias = (const float*)p->epilogue_ops[0].data;
  const float* acc = (const float*)p->out_buffer + p->out_offset;
  float* fin = (float*)p->final_out;
  for (int64_t m = 0; m < p->M; ++m)
    for (int64_t n = 0; n < p->N; ++n)
      for (int64_t i = 0; i < p->M0; ++i)
        for (int64_t j = 0; j < p->N0; ++j) {
          const int64_t r = m * p->M0 + i, c = n * p->N0 + j;
          if (r >= p->rows || c >= p->cols) continue;
          const float v = acc[m * p->out_stride0 + n * p->M0 * p->N0 + i * p->N0 + j] + bias[p->col0 + c];
          fin[(p->row0 + r) * p->final_stride0 + p->col0 + c] = v < 0 ? 0 : v;
        }
  return UK_STATUS_OK;
}

static void test_fused_epilogue_dispatch(uint64_t host, uk_pool_t* pool) {
  const int64_t M = 29, N = 21, K = 37, ld = N + 3; /* out rows padded: the pad must stay */
  const int32_t M0 = 8, N0 = 8;
  float *a = malloc((size_t)(M * K) * 4), *b = malloc((size_t)(K * N) * 4), *bias = malloc((size_t)N * 4);
  float* out = malloc((size_t)(M * ld) * 4);
  for (int64_t i = 0; i < M * K; ++i) a[i] = (float)((i * 7) % 9 - 4);
  for (int64_t i = 0; i < K * N; ++i) b[i] = (float)((i * 5) % 7 - 3);
  for (int64_t i = 0; i < N; ++i) bias[i] = (float)(i % 5 - 2);
  uk_epilogue_op_t ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].kind = UK_EPI_BIAS_COLUMN; ops[0].data = bias; ops[0].data_stride = 1;
  ops[1].kind = UK_EPI_RELU;
  const int64_t M1 = (M + M0 - 1) / M0, N1 = (N + N0 - 1) / N0;
  void* lhs = malloc((size_t)(M1 * K * M0) * 4);
  void* rhs = malloc((size_t)(N1 * K * N0) * 4);
  uk_matmul_desc_t d;
  memset(&d, 0, sizeof d);
  d.type = UK_TYPE_F32F32F32; d.M = M; d.N = N; d.K = K;
  d.a = a; d.a_stride0 = K; d.a_stride1 = 1; d.b = b; d.b_stride0 = N; d.b_stride1 = 1;
  d.out = out; d.out_stride0 = ld; d.M0 = M0; d.N0 = N0; d.K0 = 1; d.MC = 16; d.NC = 16; d.KC = 8;
  d.lhs_packed = lhs; d.rhs_packed = rhs;
  d.scratch_stride = uk_matmul_scratch_bytes(&d);
  void* scratch = malloc((size_t)(d.scratch_stride * 2));
  d.scratch = scratch;
  d.mmt4d = fake_fused_kernel; d.mmt4d_flags = UK_FLAG_ALLOW_GENERIC_FALLBACK; d.cpu_data = &host;
  d.ops = ops; d.num_ops = 2; d.out_type = UK_OUT_F32; d.max_threads = 2; d.pack_tasks_hint = 2;
  d.epilogue_fused = 1;
  for (int64_t i = 0; i < M * ld; ++i) out[i] = -7.0f;
  g_fused_calls = g_fused_bad = 0;
  CHECK(uk_matmul_run(&d, pool) == UK_STATUS_OK, "fused dispatch status");
  CHECK(g_fused_bad == 0, "fused kernel got wrong fields");
  /* one flagged call per workgroup: ceil(29/16) x ceil(21/16) */
  CHECK(g_fused_calls == 2 * 2, "fused calls %d, want 4 (one per workgroup, its last K block)", (int)g_fused_calls);
  int bad = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ld; ++j) {
      float s = -7.0f;
      if (j < N) {
        s = bias[j];
        for (int64_t k = 0; k < K; ++k) s += a[i * K + k] * b[k * N + j];
        if (s < 0) s = 0;
      }
      bad += out[i * ld + j] != s;
    }
  CHECK(bad == 0, "fused dispatch: %d wrong or overwritten elements", bad);
  d.rhs_direct = 1; d.rhs_pack_in_tile = 1; /* the in-place rhs groups K blocks: not with fusion */
  CHECK(uk_matmul_run(&d, pool) == UK_STATUS_BAD_ARGUMENT, "fused epilogue with rhs_direct accepted");
  free(a); free(b); free(bias); free(out); free(lhs); free(rhs); free(scratch);
}

int main(void) {
  uint64_t host = 0;
  uk_cpu_detect(&host);
  char model[64];
  uk_cpu_model_name(model, sizeof model);
  printf("cpu: %s, feature bits 0x%llx\n", model, (unsigned long long)host);
  test_all_tiles(host);
  test_pack(host);
  test_pack_16bit_pairs(host);
  test_matmul_on_pool(host);
  test_matmul_rhs_direct(host);
  test_matmul_rhs_direct(0);
  test_group_scaled(host);
  test_group_scaled(0);
  test_epilogue_ops(host);
  test_requantized_matmul(host);
  test_quantize_rows(host);
  test_qlinear(host);
  {
    uk_pool_t* pool = uk_pool_create(2, 0);
    test_fused_epilogue_dispatch(host, pool);
    test_fused_epilogue_dispatch(host, NULL);
    uk_pool_destroy(pool);
  }
  printf("%d passed, %d failed\n", g_checks - g_failures, g_failures);
  return g_failures ? 1 : 0;
}
