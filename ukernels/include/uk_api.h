/* ukernels C ABI.
 *
 * One entry point per op in the style of IREE's iree_uk_mmt4d: buffers with
 * element offsets and outer strides, sizes counted in tiles, a flags word and
 * the CPU feature bits passed in as an argument.  Nothing here uses globals,
 * allocates, or keeps state: every function is re-entrant and may be called
 * from many threads at once.
 *
 * Layouts (IREE mmt4d):
 *   lhs  [M][K][M0][K0]   outer stride lhs_stride0 (elements), inner tile row-major
 *   rhs  [N][K][N0][K0]   outer stride rhs_stride0 (elements), transposed tile
 *   out  [M][N][M0][N0]   outer stride out_stride0 (elements), inner tile row-major
 */
#ifndef UK_API_H
#define UK_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------ */
enum {
  UK_STATUS_OK = 0,
  UK_STATUS_UNSUPPORTED_TYPE = 1,  /* element-type triple not implemented      */
  UK_STATUS_NO_TILE_FUNCTION = 2,  /* no tile fn and generic fallback disabled  */
  UK_STATUS_BAD_ARGUMENT = 3,      /* negative sizes, zero tile sizes, ...      */
};

/* ---- flags word: element-type triple in the low byte, bits above -------- */
enum {
  UK_TYPE_NONE = 0x00,
  UK_TYPE_F32F32F32 = 0x01,
  UK_TYPE_S8S8S32 = 0x02,
  UK_TYPE_F16F16F32 = 0x03,   /* IEEE half inputs, f32 accumulator                      */
  UK_TYPE_F16F16F16 = 0x04,   /* reserved: the dispatch serves f16 outputs with the
                                 f16f16f32 tiles and a rounding write-back (UK_OUT_F16)   */
  UK_TYPE_BF16BF16F32 = 0x05, /* bfloat16 inputs, f32 accumulator                        */
  UK_TYPE_BF16BF16BF16 = 0x06,/* reserved: bf16bf16f32 tiles + UK_OUT_BF16 write-back    */
  UK_TYPE_S16S16S32 = 0x07,   /* int16 inputs, int32 accumulator (wrapping)              */
  UK_TYPE_S8S4S32 = 0x08,     /* int8 lhs, int4 rhs (two per byte: element 2i in the low
                                 nibble, 2i+1 in the high nibble; rhs offsets and strides
                                 count nibbles and must be even), int32 accumulator        */
  UK_TYPE_U8S8S32 = 0x09,     /* uint8 lhs, int8 rhs, int32 accumulator (wrapping)       */
  UK_TYPE_MASK = 0xFF,
};

/* Element sizes and accumulator kind of a type triple (one place for the
 * per-type facts the outer loop, pack, dispatch and epilogue read).  All
 * implemented triples accumulate in 32 bits.  uk_type_info returns 0 for a
 * triple that is not implemented. */
typedef struct uk_type_info_t {
  int32_t lhs_bits, rhs_bits, acc_bits; /* element sizes in bits (rhs: 4 for int4) */
  int32_t acc_is_float;                 /* 1: f32 accumulator, 0: int32 */
} uk_type_info_t;
int uk_type_info(uint32_t type, uk_type_info_t* info);

enum {
  UK_FLAG_ACCUMULATE = 1u << 8,             /* out += lhs*rhs^T, else out = lhs*rhs^T */
  UK_FLAG_ALLOW_GENERIC_FALLBACK = 1u << 9, /* use portable C when no tile fn matches */
  UK_FLAG_GROUP_SCALES = 1u << 10,          /* integer types: per-group scaled f32 output
                                               (uk_mmt4d_params_t.group_scales) */
  UK_FLAG_LHS_S8_SYMMETRIC = 1u << 11,      /* s8 lhs: the caller promises no -128 (every value
                                               in [-127, 127], as a symmetric quantizer makes):
                                               enables tiles exact only then (AVX2 vpmaddubsw) */
  UK_FLAG_EPILOGUE_FUSED = 1u << 12,        /* the call computes the last K block of its tiles:
                                               apply the epilogue (uk_mmt4d_params_t.epilogue_*)
                                               to the sums in registers and store the final values
                                               into final_out. Only generated kernels rendered for
                                               that op list accept it; uk_mmt4d refuses it */
};

/* ---- CPU feature bits (word 0 of cpu_data) ------------------------------ */
/* x86-64.  Each bit implies the OS saves the register state it needs. */
#define UK_CPU_X86_AVX2_FMA      (1ull << 0)  /* AVX, AVX2, FMA3, OS ymm state        */
#define UK_CPU_X86_F16C          (1ull << 1)
#define UK_CPU_X86_AVX512_BASE   (1ull << 2)  /* F, BW, DQ, VL, CD, OS zmm/opmask state */
#define UK_CPU_X86_AVX512_VNNI   (1ull << 3)
#define UK_CPU_X86_AVX512_BF16   (1ull << 4)
/* aarch64 (getauxval: HWCAP_ASIMD, HWCAP_ASIMDDP, HWCAP2_I8MM, HWCAP2_BF16, HWCAP_FPHP and
 * HWCAP_ASIMDHP together, HWCAP_ASIMDFHM). */
#define UK_CPU_ARM_NEON          (1ull << 32)
#define UK_CPU_ARM_DOTPROD       (1ull << 33)
#define UK_CPU_ARM_I8MM          (1ull << 34)
#define UK_CPU_ARM_BF16          (1ull << 35)
#define UK_CPU_ARM_FP16          (1ull << 36)  /* half-precision arithmetic, scalar and vector */
#define UK_CPU_ARM_FHM           (1ull << 37)  /* fmlal/fmlsl: f16 x f16 widened into f32      */

/* ---- epilogue op list ----------------------------------------------------- */
/* Read by the dispatch's tile-level epilogue (csrc/uk_epilogue*.c) and by generated kernels
 * that apply it in registers (UK_FLAG_EPILOGUE_FUSED), so it is part of the ABI. */
/* Ops run in order on one row segment of the accumulator tile.  The segment
 * is int32 until a float op (the caller inserts UK_EPI_TO_FLOAT first), and
 * float after it until UK_EPI_REQUANTIZE, which leaves saturated integers. */
enum {
  UK_EPI_BIAS_COLUMN = 1, /* x[i][j] += data[j]        (int32 or f32, as the segment)       */
  UK_EPI_RELU = 2,        /* max(x, 0); NaN propagates                                    */
  UK_EPI_GELU_ERF = 3,    /* x/2 (1 + erf(x/sqrt 2))                                    f */
  UK_EPI_BIAS_ROW = 4,    /* x[i][j] += data[i]                                            */
  UK_EPI_RESIDUAL = 5,    /* x[i][j] += data[i*data_stride + j*data_stride1]               */
  UK_EPI_SCALE = 6,       /* x *= p0, or x[i][j] *= data[j] when data != NULL             f */
  UK_EPI_CLAMP = 7,       /* min(max(x, p0), p1); int32: bounds only where p2 / p3 != 0; NaN kept */
  UK_EPI_RELU6 = 8,       /* min(max(x, 0), 6)                                             */
  UK_EPI_GELU_TANH = 9,   /* x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))              f */
  UK_EPI_SILU = 10,       /* x * sigmoid(x)                                              f */
  UK_EPI_SIGMOID = 11,    /* 1 / (1 + exp(-x))                                           f */
  UK_EPI_TANH = 12,       /* tanh(x)                                                     f */
  UK_EPI_TO_FLOAT = 13,   /* int32 -> float (round to nearest even, like numpy astype)     */
  UK_EPI_REQUANTIZE = 14, /* q = clamp(rint(x * s) + p1, p2, p3), s = data ? data[j] : p0; f -> int32;
                             NaN -> p1 (the zero point)                                     */
  UK_EPI_SCALE_ROW = 15,  /* x[i][j] *= data[i] (e.g. per-row activation scales)              f */
};

typedef struct uk_epilogue_op_t {
  int32_t kind;
  int32_t is_int;       /* 1: the segment (and operand) is int32 when the op runs */
  const void* data;     /* operand (NULL for unary ops / per-tensor scale)     */
  int64_t data_stride;  /* elements between consecutive operand entries (rows for RESIDUAL) */
  int64_t data_stride1; /* RESIDUAL: elements between columns                              */
  float p0, p1, p2, p3; /* scalar parameters (see the kinds)                               */
  int64_t data_batch_stride; /* batched calls: elements between consecutive items' operands (0: shared) */
} uk_epilogue_op_t;

/* Output element types of the write-back (what the segment is converted to). */
/* F16/BF16: the f32 segment rounded once to nearest even (NaN stays NaN, overflow -> Inf). */
enum { UK_OUT_F32 = 1, UK_OUT_S32 = 2, UK_OUT_S8 = 3, UK_OUT_U8 = 4, UK_OUT_F16 = 5, UK_OUT_BF16 = 6 };

/* ---- mmt4d -------------------------------------------------------------- */
typedef struct uk_mmt4d_params_t {
  const void* lhs_buffer;
  int64_t lhs_offset;   /* elements */
  int64_t lhs_stride0;  /* elements between consecutive M tiles */
  const void* rhs_buffer;
  int64_t rhs_offset;
  int64_t rhs_stride0;
  void* out_buffer;
  int64_t out_offset;
  int64_t out_stride0;
  int64_t M;            /* in tiles */
  int64_t N;            /* in tiles */
  int64_t K;            /* in tiles */
  int32_t M0, N0, K0;
  uint32_t flags;
  const uint64_t* cpu_data; /* may be NULL: no SIMD */
  /* Elements between consecutive K tiles of one rhs panel; 0 means N0*K0 (the packed
   * layout).  Only tiles with K0 == 1 accept another value: then the panel may be
   * rows of a row-major [K][N] matrix read in place (rhs_stride1 = its row stride,
   * rhs_stride0 = N0), which the dispatch does for small-M calls. */
  int64_t rhs_stride1;
  /* UK_FLAG_GROUP_SCALES (integer triples; weight-quantized layers): the K range is split
   * into groups of group_k K tiles; each group's dot products are summed exactly in int32,
   * converted to f32 and multiplied by the group's per-column scale, and the out tile is
   * f32: out (+)= sum_g float(dot_g[i][j]) * scale_g[j]. The N0 scales of group g of rhs
   * tile n are at group_scales[group_scales_offset + n * group_scales_stride0 + g * N0]. */
  const float* group_scales;
  int64_t group_scales_offset;
  int64_t group_scales_stride0;
  int64_t group_k;
  /* UK_FLAG_EPILOGUE_FUSED (a generated kernel rendered with an op list, on the last K block):
   * for each tile the K-block sum (plus out's partial sum with ACCUMULATE) goes through
   * epilogue_ops in registers and is stored as final_type (UK_OUT_*) into the row-major
   * final_out, final_stride0 elements between rows; out_buffer is only read. Tile (m, n) of the
   * call is the result's elements from row row0 + m*M0, column col0 + n*N0; only rows < row0 +
   * rows and columns < col0 + cols are stored (edge tiles), and operands are read only there.
   * Operand addressing as the tile-level epilogue's (uk_epilogue_op_t), with unit column
   * strides. */
  const uk_epilogue_op_t* epilogue_ops;
  int32_t epilogue_num_ops;
  int32_t final_type;
  void* final_out;
  int64_t final_stride0;
  int64_t row0, col0, rows, cols;
} uk_mmt4d_params_t;

/* The entry point.  Handwritten and generated kernels share this type. */
typedef int (*uk_mmt4d_fn_t)(const uk_mmt4d_params_t* params);

int uk_mmt4d(const uk_mmt4d_params_t* params);

/* Name of the tile function uk_mmt4d would use (a static string, never NULL:
 * "generic" for the portable fallback, "none" when nothing applies). */
const char* uk_mmt4d_tile_name(uint32_t flags, int32_t M0, int32_t N0, int32_t K0,
                               const uint64_t* cpu_data);

/* The tile table, for introspection (Python's planner reads its register tiles from it):
 * rows 0 .. uk_mmt4d_tile_count()-1, the ISA rows in selection order (the last matching row
 * wins), then the portable ones (generic = 1: any shape; their M0/N0/K0 is the default
 * register tile).  Strings are static. */
typedef struct uk_mmt4d_tile_desc_t {
  uint32_t type;            /* UK_TYPE_* */
  int32_t M0, N0, K0;
  uint64_t required_cpu;    /* UK_CPU_* bits that must all be present */
  uint32_t required_flags;  /* uk_mmt4d flags the call must carry (e.g. UK_FLAG_LHS_S8_SYMMETRIC) */
  int32_t plan;             /* 1: the planner's register tile for this type where the row applies */
  int32_t generic, has_scaled, has_group, has_scaled_group;
  const char* name;
} uk_mmt4d_tile_desc_t;
int64_t uk_mmt4d_tile_count(void);
int uk_mmt4d_tile_desc(int64_t index, uk_mmt4d_tile_desc_t* out);

/* ---- pack --------------------------------------------------------------- */
enum {
  UK_PACK_TYPE_F32 = 0x01, /* low byte: element size: 32-bit    */
  UK_PACK_TYPE_I8 = 0x02,  /* 8-bit                             */
  UK_PACK_TYPE_X16 = 0x03, /* 16-bit (f16, bf16, s16)           */
  UK_PACK_TYPE_S4 = 0x04,  /* int8 input holding [-8, 7] (or ml_dtypes int4: the value in
                              the low nibble), written as nibbles two per byte, element 2i
                              low, 2i+1 high; the tile's T1 and the out offset/stride even */
  UK_PACK_TRANSPOSE_INNER = 1u << 8,
  UK_PACK_TRANSPOSE_OUTER = 1u << 9,
  /* Widening packs (low byte UK_PACK_TYPE_F32: the output is f32): the input
   * elements are IEEE half / bfloat16, converted exactly. Offsets and strides
   * of in are in input elements, of out in output elements. */
  UK_PACK_WIDEN_F16 = 1u << 10,
  UK_PACK_WIDEN_BF16 = 1u << 11,
  /* Narrowing pack (low byte UK_PACK_TYPE_X16: the output is bf16): f32 input rounded to
   * nearest even (NaN stays NaN, quieted), for precision="bf16" on float32 operands. */
  UK_PACK_NARROW_BF16 = 1u << 12,
};

/* out[o0][o1][t0][t1] = in[r][c] or 0 past the input's edge, where
 *   (or_, oc) = TRANSPOSE_OUTER ? (o1, o0) : (o0, o1)
 *   (ir, ic, TR, TC) = TRANSPOSE_INNER ? (t1, t0, T1, T0) : (t0, t1, T0, T1)
 *   r = or_*TR + ir,  c = oc*TC + ic
 * in strides are in elements and may be anything (negative, zero, padded). */
typedef struct uk_pack_params_t {
  const void* in_buffer;
  int64_t in_offset;
  int64_t in_stride0;
  int64_t in_stride1;
  void* out_buffer;
  int64_t out_offset;
  int64_t out_stride0;   /* elements between consecutive o0 */
  int64_t in_size0, in_size1;   /* elements */
  int64_t out_size0, out_size1; /* tiles */
  int32_t tile_size0, tile_size1; /* T0, T1: the inner dims of out */
  uint32_t flags;
  const uint64_t* cpu_data; /* may be NULL: portable code only */
} uk_pack_params_t;

int uk_pack(const uk_pack_params_t* params);

/* ---- CPU detection ------------------------------------------------------ */
/* Fills cpu_data[0] with the UK_CPU_* bits of this CPU + OS. */
void uk_cpu_detect(uint64_t* cpu_data);
/* Human-readable model string into buf (NUL-terminated). */
void uk_cpu_model_name(char* buf, int64_t buf_size);

#ifdef __cplusplus
}
#endif
#endif /* UK_API_H */
