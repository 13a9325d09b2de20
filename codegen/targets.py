"""Target descriptions for the codegen path: how each ISA spells the few
vector operations the templates use, its register budget, compiler flags,
and the CPU bits it needs at run time. Templates never concatenate ISA
strings themselves; they ask the target.
"""
import os
import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Tuple


def _header_path() -> str:
    """uk_api.h: ukernels/include/ beside this package when installed
    (ukernels/codegen/), or from the repository root (codegen/)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "include", "uk_api.h"),
                 os.path.join(here, "..", "ukernels", "include", "uk_api.h")):
        if os.path.exists(cand):
            return os.path.normpath(cand)
    raise FileNotFoundError("uk_api.h not found beside ukernels.codegen")


def _cpu_bits_from_header() -> Dict[str, int]:
    """The UK_CPU_* bits as the ABI header defines them (its single definition),
    read without the compiled extension so the generator also runs at build time."""
    with open(_header_path()) as f:
        text = f.read()
    return {m.group(1): 1 << int(m.group(2))
            for m in re.finditer(r"#define\s+(UK_CPU_\w+)\s+\(1ull\s*<<\s*(\d+)\)", text)}


class _Bits:
    def __init__(self, bits: Dict[str, int]):
        self.__dict__.update(bits)


lib = _Bits(_cpu_bits_from_header())


@dataclass(frozen=True)
class Target:
    """One code-generation target (an ISA level)."""

    name: str
    arch: str  # "x86_64", "aarch64" or "any"
    cflags: Tuple[str, ...]
    required_cpu: int  # UK_CPU_* bits the generated code needs
    vector_registers: int
    includes: Tuple[str, ...]
    # f32: vector type, lanes, and spellings ({0}, {1}, {2} are operands)
    f32_vec: str
    f32_lanes: int
    f32_load: str
    f32_store: str
    f32_zero: str  # used as is (not formatted)
    f32_bcast: str  # broadcast *({0}) (a float pointer)
    f32_fma: str  # {0} * {1} + {2}
    f32_add: str
    # s8 x s8 -> s32 with K0 = 2: accumulator vector of s32 lanes, rhs widened
    # to s16 pairs, lhs pair broadcast, and one multiply-add of pairs
    s32_vec: str = ""
    s32_lanes: int = 0
    s32_load: str = ""
    s32_store: str = ""
    s32_zero: str = ""  # used as is
    s16_vec: str = ""  # type of the rhs / lhs operand vectors of the s8 dot (widened s16, or raw s8)
    s8_k0: int = 2  # K0 of the s8 tiles (the dot's group size: 2 pairs, 4 for sdot)
    s8_rhs_widen: str = ""  # {0}: const int8_t* to 2*lanes bytes -> s16 pair vector
    s8_lhs_pair_bcast: str = ""  # {0}: const int8_t* to 2 bytes -> broadcast s16 pair
    s8_dot2: str = ""  # acc {2} += pairwise s16 dot of {0}, {1}
    preamble: str = ""  # helper definitions emitted once per file
    # rintf on the epilogue's float vector ({0}: a ukg_ef, codegen/templates/epilogue.c.j2);
    # empty: the portable form
    f32_rint: str = ""
    extra: Dict[str, str] = field(default_factory=dict)

    def fits(self, M0: int, N0: int, lanes: int) -> bool:
        """Whether an M0 x N0 tile's accumulators + operands fit in registers."""
        if N0 % lanes:
            return False
        acc = M0 * (N0 // lanes)
        return acc + (N0 // lanes) + 1 <= self.vector_registers


# Portable C with GCC/Clang vector extensions, 16-byte vectors (the baseline
# width on x86-64 and aarch64).
_GENERIC_PREAMBLE = r"""
typedef float ukg_v4f __attribute__((vector_size(16)));
static inline ukg_v4f ukg_load4(const float* p) { ukg_v4f v; memcpy(&v, p, sizeof v); return v; }
static inline void ukg_store4(float* p, ukg_v4f v) { memcpy(p, &v, sizeof v); }
"""

_X86_S8_PREAMBLE_AVX2 = r"""
static inline __m256i ukg_widen16_avx2(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)p));
}
static inline __m256i ukg_pair_bcast_avx2(const int8_t* p) {
  int16_t v; memcpy(&v, p, 2); return _mm256_cvtepi8_epi16(_mm_set1_epi16(v));
}
"""

_X86_S8_PREAMBLE_AVX512 = r"""
static inline __m512i ukg_widen32_avx512(const int8_t* p) {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i*)p));
}
static inline __m512i ukg_pair_bcast_avx512(const int8_t* p) {
  int16_t v; memcpy(&v, p, 2); return _mm512_cvtepi8_epi16(_mm256_set1_epi16(v));
}
"""

GENERIC = Target(
    name="generic", arch="any", cflags=("-O3",), required_cpu=0, vector_registers=16,
    includes=("string.h", "stdint.h"),
    f32_vec="ukg_v4f", f32_lanes=4, f32_load="ukg_load4({0})", f32_store="ukg_store4({0}, {1})",
    f32_zero="((ukg_v4f){0})", f32_bcast="((ukg_v4f){{0}} + *({0}))", f32_fma="({0} * {1} + {2})",
    f32_add="({0} + {1})",
    preamble=_GENERIC_PREAMBLE,
)

AVX2 = Target(
    name="avx2", arch="x86_64", cflags=("-O3", "-mavx", "-mavx2", "-mfma", "-mf16c"),
    required_cpu=lib.UK_CPU_X86_AVX2_FMA, vector_registers=16,
    includes=("immintrin.h", "string.h", "stdint.h"),
    f32_vec="__m256", f32_lanes=8, f32_load="_mm256_loadu_ps({0})", f32_store="_mm256_storeu_ps({0}, {1})",
    f32_zero="_mm256_setzero_ps()", f32_bcast="_mm256_broadcast_ss({0})", f32_fma="_mm256_fmadd_ps({0}, {1}, {2})",
    f32_add="_mm256_add_ps({0}, {1})",
    s32_vec="__m256i", s32_lanes=8, s32_load="_mm256_loadu_si256((const __m256i*)({0}))",
    s32_store="_mm256_storeu_si256((__m256i*)({0}), {1})", s32_zero="_mm256_setzero_si256()",
    s8_rhs_widen="ukg_widen16_avx2({0})", s8_lhs_pair_bcast="ukg_pair_bcast_avx2({0})",
    s8_dot2="_mm256_add_epi32({2}, _mm256_madd_epi16({0}, {1}))", s16_vec="__m256i",
    preamble=_X86_S8_PREAMBLE_AVX2,
    f32_rint="(ukg_ef)_mm256_round_ps((__m256)({0}), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)",
)

_AVX512_FLAGS = ("-O3", "-mavx", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512dq",
                 "-mavx512vl", "-mavx512cd")

AVX512 = Target(
    name="avx512", arch="x86_64", cflags=_AVX512_FLAGS,
    required_cpu=lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_AVX512_BASE,
    vector_registers=32, includes=("immintrin.h", "string.h", "stdint.h"),
    f32_vec="__m512", f32_lanes=16, f32_load="_mm512_loadu_ps({0})", f32_store="_mm512_storeu_ps({0}, {1})",
    f32_zero="_mm512_setzero_ps()", f32_bcast="_mm512_set1_ps(*({0}))", f32_fma="_mm512_fmadd_ps({0}, {1}, {2})",
    f32_add="_mm512_add_ps({0}, {1})",
    s32_vec="__m512i", s32_lanes=16, s32_load="_mm512_loadu_si512((const void*)({0}))",
    s32_store="_mm512_storeu_si512((void*)({0}), {1})", s32_zero="_mm512_setzero_si512()",
    s8_rhs_widen="ukg_widen32_avx512({0})", s8_lhs_pair_bcast="ukg_pair_bcast_avx512({0})",
    s8_dot2="_mm512_add_epi32({2}, _mm512_madd_epi16({0}, {1}))", s16_vec="__m512i",
    preamble=_X86_S8_PREAMBLE_AVX512,
    f32_rint="(ukg_ef)_mm512_roundscale_ps((__m512)({0}), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)",
)

AVX512_VNNI = replace(
    AVX512, name="avx512_vnni", cflags=_AVX512_FLAGS + ("-mavx512vnni",),
    required_cpu=AVX512.required_cpu | lib.UK_CPU_X86_AVX512_VNNI,
    s8_dot2="_mm512_dpwssd_epi32({2}, {0}, {1})",
)

_NEON_PREAMBLE = r"""
static inline int16x8_t ukg_pair_bcast_neon(const int8_t* p) {
  const int16_t pair[2] = {p[0], p[1]};
  int32_t v; memcpy(&v, pair, 4); return vreinterpretq_s16_s32(vdupq_n_s32(v));
}
"""

# aarch64 Advanced SIMD (baseline on aarch64). s8 with K0 = 2: rhs pairs of 4
# columns widened to s16x8, lhs pair broadcast, widening multiplies of each
# half and a pairwise add give the 4 column sums.
NEON = Target(
    name="neon", arch="aarch64", cflags=("-O3",), required_cpu=lib.UK_CPU_ARM_NEON, vector_registers=32,
    includes=("arm_neon.h", "string.h", "stdint.h"),
    f32_vec="float32x4_t", f32_lanes=4, f32_load="vld1q_f32({0})", f32_store="vst1q_f32({0}, {1})",
    f32_zero="vdupq_n_f32(0.0f)", f32_bcast="vld1q_dup_f32({0})", f32_fma="vfmaq_f32({2}, {0}, {1})",
    f32_add="vaddq_f32({0}, {1})",
    s32_vec="int32x4_t", s32_lanes=4, s32_load="vld1q_s32({0})", s32_store="vst1q_s32({0}, {1})",
    s32_zero="vdupq_n_s32(0)", s16_vec="int16x8_t",
    s8_rhs_widen="vmovl_s8(vld1_s8({0}))", s8_lhs_pair_bcast="ukg_pair_bcast_neon({0})",
    s8_dot2="vaddq_s32({2}, vpaddq_s32(vmull_s16(vget_low_s16({0}), vget_low_s16({1})), vmull_high_s16({0}, {1})))",
    preamble=_NEON_PREAMBLE, f32_rint="(ukg_ef)vrndnq_f32((float32x4_t)({0}))",
)

_NEON_DOTPROD_PREAMBLE = r"""
static inline int8x16_t ukg_quad_bcast_neon(const int8_t* p) {
  int32_t v; memcpy(&v, p, 4); return vreinterpretq_s8_s32(vdupq_n_s32(v));
}
"""

# aarch64 with the dot-product extension: s8 tiles with K0 = 4, one sdot per
# accumulator (4 columns x 4 k of int8 against a broadcast lhs quad).
NEON_DOTPROD = replace(
    NEON, name="neon_dotprod", cflags=("-O3", "-march=armv8.2-a+dotprod"),
    required_cpu=NEON.required_cpu | lib.UK_CPU_ARM_DOTPROD, s16_vec="int8x16_t", s8_k0=4,
    s8_rhs_widen="vld1q_s8({0})", s8_lhs_pair_bcast="ukg_quad_bcast_neon({0})",
    s8_dot2="vdotq_s32({2}, {1}, {0})", preamble=_NEON_DOTPROD_PREAMBLE,
)

TARGETS: Dict[str, Target] = {t.name: t for t in (GENERIC, AVX2, AVX512, AVX512_VNNI, NEON, NEON_DOTPROD)}


# Codegen targets usable at each ISA level, oldest first.
_ISA_TARGETS = {
    "generic": ("generic",),
    "avx2": ("generic", "avx2"),
    "avx512": ("generic", "avx2", "avx512", "avx512_vnni"),
    "neon": ("generic", "neon", "neon_dotprod"),
}


def target_for_isa(isa: str, types: str = "f32f32f32") -> str:
    """The newest codegen target usable at ISA level ``isa`` on this CPU for
    ``types`` (f32 kernels never need VNNI, so they stay on "avx512")."""
    from ukernels import cpu  # run time only (needs the built extension)
    bits = cpu.isa_cpu_bits(isa)
    best = "generic"
    for name in _ISA_TARGETS.get(isa, ("generic",)):
        if name == "neon_dotprod" and types != "s8s8s32":
            continue  # sdot groups are int8 only
        if name == "avx512_vnni" and ELEMENT_TYPES.get(types, ELEMENT_TYPES["f32f32f32"]).family != "int":
            continue  # differs from avx512 only for integer dots
        if spelling(TARGETS[name], types) is None:
            continue
        if (bits & TARGETS[name].required_cpu) == TARGETS[name].required_cpu:
            best = name
    return best


def target(name: str) -> Target:
    """The target called ``name``; ValueError listing the known ones otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown codegen target {name!r}; known: {sorted(TARGETS)}") from None


def host_targets() -> List[str]:
    """Targets whose generated code this CPU can run."""
    from ukernels import cpu  # run time only (needs the built extension)
    bits = cpu.cpu_bits()
    import platform
    machine = platform.machine().lower()
    out = []
    for t in TARGETS.values():
        arch_ok = (t.arch == "any" or (t.arch == "x86_64" and machine in ("x86_64", "amd64"))
                   or (t.arch == "aarch64" and machine in ("aarch64", "arm64")))
        if arch_ok and (bits & t.required_cpu) == t.required_cpu:
            out.append(t.name)
    return out


# ---- element types as data ---------------------------------------------------------------------
# The templates are one per accumulator family ("float": f32 accumulators, K0 = 1;
# "int": s32 accumulators over K0-element groups); what differs between the element
# types of a family is only how an operand is read into registers. Those spellings
# live here, per (target, types); f32 and s8 are read off the target's own fields.


@dataclass(frozen=True)
class ElementTypes:
    """Target-independent facts of a triple for the generator."""

    family: str  # "float" or "int"
    lhs_ctype: str
    rhs_ctype: str
    uk_type: str  # the UK_TYPE_* constant of uk_api.h
    rhs_per_byte: int = 1  # 2 for int4: rhs offsets in the template are elements / 2


ELEMENT_TYPES: Dict[str, ElementTypes] = {
    "f32f32f32": ElementTypes("float", "float", "float", "UK_TYPE_F32F32F32"),
    "f16f16f32": ElementTypes("float", "uint16_t", "uint16_t", "UK_TYPE_F16F16F32"),
    "bf16bf16f32": ElementTypes("float", "uint16_t", "uint16_t", "UK_TYPE_BF16BF16F32"),
    "s8s8s32": ElementTypes("int", "int8_t", "int8_t", "UK_TYPE_S8S8S32"),
    "s16s16s32": ElementTypes("int", "int16_t", "int16_t", "UK_TYPE_S16S16S32"),
    "u8s8s32": ElementTypes("int", "uint8_t", "int8_t", "UK_TYPE_U8S8S32"),
    "s8s4s32": ElementTypes("int", "int8_t", "uint8_t", "UK_TYPE_S8S4S32", rhs_per_byte=2),
}


@dataclass(frozen=True)
class Spelling:
    """How one target reads one triple's operands. Float family: ``rhs`` loads one
    vector of lanes converted to f32 ({0}: pointer), ``lhs`` broadcasts one element as
    f32. Int family: ``rhs`` loads K0-groups of a vector of columns, ``lhs`` broadcasts
    one row's K0-group, ``dot`` is acc {2} += group dot of {0}, {1}; ``k0`` the group."""

    rhs: str
    lhs: str
    dot: str = ""
    k0: int = 1
    preamble: str = ""


# the runtime's own scalar conversions (ukernels/include/uk_convert.h, shipped beside uk_api.h)
_H16_SCALAR = r"""
#include "uk_convert.h"
"""

_GENERIC_H16 = _H16_SCALAR + r"""
static inline ukg_v4f ukg_load4_f16(const uint16_t* p) {
  ukg_v4f v = {uk_f16_to_f32(p[0]), uk_f16_to_f32(p[1]), uk_f16_to_f32(p[2]), uk_f16_to_f32(p[3])}; return v;
}
static inline ukg_v4f ukg_load4_bf16(const uint16_t* p) {
  ukg_v4f v = {uk_bf16_to_f32(p[0]), uk_bf16_to_f32(p[1]), uk_bf16_to_f32(p[2]), uk_bf16_to_f32(p[3])}; return v;
}
"""

_AVX2_U8_PAIR = r"""
static inline __m256i ukg_pair_bcast_u8_avx2(const uint8_t* p) {
  int16_t v; memcpy(&v, p, 2); return _mm256_cvtepu8_epi16(_mm_set1_epi16(v));
}
static inline int32_t ukg_pair32(const void* p) { int32_t v; memcpy(&v, p, 4); return v; }
"""

_AVX2_S4_PAIRS = r"""
static inline __m256i ukg_s4_pairs_avx2(const uint8_t* p) {  /* 8 bytes: (k0 low, k1 high) nibbles of 8 columns */
  const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)p));
  const __m128i lo = _mm_srai_epi16(_mm_slli_epi16(w, 12), 12), hi = _mm_srai_epi16(_mm_slli_epi16(w, 8), 12);
  return _mm256_set_m128i(_mm_unpackhi_epi16(lo, hi), _mm_unpacklo_epi16(lo, hi));
}
static inline __m256i ukg_pair_bcast_s8_avx2(const int8_t* p) {
  int16_t v; memcpy(&v, p, 2); return _mm256_cvtepi8_epi16(_mm_set1_epi16(v));
}
"""

_AVX512_U8_PAIR = r"""
static inline __m512i ukg_pair_bcast_u8_avx512(const uint8_t* p) {
  int16_t v; memcpy(&v, p, 2); return _mm512_cvtepu8_epi16(_mm256_set1_epi16(v));
}
static inline int32_t ukg_pair32(const void* p) { int32_t v; memcpy(&v, p, 4); return v; }
"""

_SPELLINGS: Dict[Tuple[str, str], Spelling] = {
    ("generic", "f16f16f32"): Spelling("ukg_load4_f16({0})", "((ukg_v4f){{0}} + uk_f16_to_f32(*({0})))",
                                       preamble=_GENERIC_H16),
    ("generic", "bf16bf16f32"): Spelling("ukg_load4_bf16({0})", "((ukg_v4f){{0}} + uk_bf16_to_f32(*({0})))",
                                         preamble=_GENERIC_H16),
    ("avx2", "f16f16f32"): Spelling("_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)({0})))",
                                    "_mm256_set1_ps(uk_f16_to_f32(*({0})))", preamble=_H16_SCALAR),
    ("avx2", "bf16bf16f32"): Spelling(
        "_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)({0}))), 16))",
        "_mm256_set1_ps(uk_bf16_to_f32(*({0})))", preamble=_H16_SCALAR),
    ("avx512", "f16f16f32"): Spelling("_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)({0})))",
                                      "_mm512_set1_ps(uk_f16_to_f32(*({0})))", preamble=_H16_SCALAR),
    ("avx512", "bf16bf16f32"): Spelling(
        "_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)({0}))), 16))",
        "_mm512_set1_ps(uk_bf16_to_f32(*({0})))", preamble=_H16_SCALAR),
    ("avx2", "s16s16s32"): Spelling("_mm256_loadu_si256((const __m256i*)({0}))", "_mm256_set1_epi32(ukg_pair32({0}))",
                                    "_mm256_add_epi32({2}, _mm256_madd_epi16({0}, {1}))", 2, _AVX2_U8_PAIR),
    ("avx2", "u8s8s32"): Spelling("ukg_widen16_avx2({0})", "ukg_pair_bcast_u8_avx2({0})",
                                  "_mm256_add_epi32({2}, _mm256_madd_epi16({0}, {1}))", 2, _AVX2_U8_PAIR),
    ("avx512", "s16s16s32"): Spelling("_mm512_loadu_si512((const void*)({0}))", "_mm512_set1_epi32(ukg_pair32({0}))",
                                      "_mm512_add_epi32({2}, _mm512_madd_epi16({0}, {1}))", 2, _AVX512_U8_PAIR),
    ("avx512", "u8s8s32"): Spelling("ukg_widen32_avx512({0})", "ukg_pair_bcast_u8_avx512({0})",
                                    "_mm512_add_epi32({2}, _mm512_madd_epi16({0}, {1}))", 2, _AVX512_U8_PAIR),
}
_SPELLINGS[("avx2", "s8s4s32")] = Spelling("ukg_s4_pairs_avx2({0})", "ukg_pair_bcast_s8_avx2({0})",
                                          "_mm256_add_epi32({2}, _mm256_madd_epi16({0}, {1}))", 2, _AVX2_S4_PAIRS)
# VNNI: the same reads, one vpdpwssd per accumulator instead of vpmaddwd + vpaddd.
for _types in ("s16s16s32", "u8s8s32"):
    _SPELLINGS[("avx512_vnni", _types)] = replace(_SPELLINGS[("avx512", _types)], dot="_mm512_dpwssd_epi32({2}, {0}, {1})")
for _types in ("f16f16f32", "bf16bf16f32"):
    _SPELLINGS[("avx512_vnni", _types)] = _SPELLINGS[("avx512", _types)]


def spelling(t: Target, types: str) -> Optional[Spelling]:
    """How target ``t`` reads the operands of ``types`` (None: it cannot generate them).
    ``dot`` empty for the int family means portable C (the generic target)."""
    if types == "f32f32f32":
        return Spelling(t.f32_load, t.f32_bcast)
    if types == "s8s8s32":
        return Spelling(t.s8_rhs_widen, t.s8_lhs_pair_bcast, t.s8_dot2, t.s8_k0)
    hit = _SPELLINGS.get((t.name, types))
    if hit is None and t.name == "generic" and types in ELEMENT_TYPES and ELEMENT_TYPES[types].family == "int":
        return Spelling("", "", "", 2)  # portable C loop over the element types
    return hit
