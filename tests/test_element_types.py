"""Element types beyond f32/s8 (IREE's triples): f16f16f32, bf16bf16f32, s16s16s32,
u8s8s32 (kernels), f16f16f16 / bf16bf16bf16 (the same kernels, rounded once at
write-back), precision="bf16" on float32 inputs. Exact where the inputs make
exact results possible: small integers for the float triples, the full range
for the integer triples vs an int64 reference (wrapping like int32)."""
import ml_dtypes
import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from ukernels.abi import (BF16BF16F32, ELEMENT_TYPES, F16F16F32, S8S4S32, S16S16S32, U8S8S32, mmt4d,
                          tile_function_name)
from conftest import k_scaled_tol, skip_unless_cpu_has
from ukernels._lib import lib

BF16 = np.dtype(ml_dtypes.bfloat16)
INT4 = np.dtype(ml_dtypes.int4)
AVX2_F16C = lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_F16C
GENERATED = [F16F16F32, BF16BF16F32, S16S16S32, U8S8S32, S8S4S32]
NEW = GENERATED

# (types, M0, N0, K0, cpu bits, what they need, expected function suffix)
TILE_CASES = []
for _m0 in (1, 2, 4, 6):
    TILE_CASES += [(F16F16F32, _m0, 16, 1, AVX2_F16C, "AVX2+FMA+F16C", "avx2_fma"),
                   (BF16BF16F32, _m0, 16, 1, lib.UK_CPU_X86_AVX2_FMA, "AVX2+FMA", "avx2_fma")]
for _m0 in (1, 2, 4, 8):
    TILE_CASES += [(S16S16S32, _m0, 8, 2, lib.UK_CPU_X86_AVX2_FMA, "AVX2+FMA", "avx2_fma"),
                   (U8S8S32, _m0, 8, 2, lib.UK_CPU_X86_AVX2_FMA, "AVX2+FMA", "avx2_fma")]
_AVX512 = lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_F16C | lib.UK_CPU_X86_AVX512_BASE
for _m0 in (1, 2, 4, 8, 16):
    TILE_CASES += [(BF16BF16F32, _m0, 16, 2, _AVX512 | lib.UK_CPU_X86_AVX512_BF16, "AVX-512 BF16", "avx512_bf16"),
                   (S16S16S32, _m0, 16, 2, _AVX512 | lib.UK_CPU_X86_AVX512_VNNI, "AVX-512 VNNI", "avx512_vnni"),
                   (U8S8S32, _m0, 16, 4, _AVX512 | lib.UK_CPU_X86_AVX512_VNNI, "AVX-512 VNNI", "avx512_vnni")]
for _t in GENERATED[:4]:  # int4 tiles (nibble buffers) are tested at the ABI level in csrc/tests
    _k0 = 1 if _t.acc_is_float else 2
    TILE_CASES += [(_t, 8, 8, _k0, 0, "", "generic"), (_t, 3, 5, 3, 0, "", "generic")]


def _inputs(types, rng, shape_l, shape_r):
    if types is S16S16S32:
        return (rng.integers(-32768, 32768, shape_l).astype(np.int16),
                rng.integers(-32768, 32768, shape_r).astype(np.int16))
    if types is U8S8S32:
        return (rng.integers(0, 256, shape_l).astype(np.uint8), rng.integers(-128, 128, shape_r).astype(np.int8))
    if types is S8S4S32:
        return (rng.integers(-128, 128, shape_l).astype(np.int8), rng.integers(-8, 8, shape_r).astype(INT4))
    return rng.integers(-4, 5, shape_l).astype(types.lhs), rng.integers(-4, 5, shape_r).astype(types.rhs)


def _wide(x):
    return x.astype(np.float64).astype(np.int64) if x.dtype in (BF16, np.dtype(np.float16)) else x.astype(np.int64)


@pytest.mark.parametrize("case", TILE_CASES, ids=lambda c: f"{c[0].name}-{c[1]}x{c[2]}x{c[3]}-{c[6]}")
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 2, 5), (2, 3, 300), (0, 2, 3), (2, 2, 0)])
def test_tile_functions_exact(case, accumulate, shape):
    types, M0, N0, K0, bits, what, suffix = case
    if bits:
        skip_unless_cpu_has(bits, what)
    M, N, K = shape
    rng = np.random.default_rng(M0 * 1000 + N0 * 10 + K0 + K)
    lhs, rhs = _inputs(types, rng, max(M, 1) * K * M0 * K0, max(N, 1) * K * N0 * K0)
    out = rng.integers(-50, 51, max(M, 1) * N * M0 * N0 + 1).astype(types.acc)
    init = out.copy()
    name = tile_function_name(types, M0, N0, K0, cpu_bits_isa(bits))
    assert name.endswith(suffix), name
    mmt4d(lhs, rhs, out, types=types, M=M, N=N, K=K, M0=M0, N0=N0, K0=K0, accumulate=accumulate,
          cpu_bits=bits)
    l4 = _wide(lhs[:M * K * M0 * K0]).reshape(M, K, M0, K0)
    r4 = _wide(rhs[:N * K * N0 * K0]).reshape(N, K, N0, K0)
    ref = np.einsum("mkiq,nkjq->mnij", l4, r4).reshape(-1)
    if accumulate:
        ref = ref + init[:ref.size].astype(np.int64)
    got = out[:ref.size]
    if types.acc_is_float:
        np.testing.assert_array_equal(got, ref.astype(np.float32))
    else:
        np.testing.assert_array_equal(got, ref.astype(np.int64).astype(np.uint32).view(np.int32))  # wraps
    assert out[ref.size:].tolist() == init[ref.size:].tolist()  # nothing past the tiles written


def cpu_bits_isa(bits):
    """The ISA level whose CPU bits include ``bits`` (for naming the tile function)."""
    return "generic" if not bits else "avx512" if bits & lib.UK_CPU_X86_AVX512_BASE else "avx2"


def _extremes_s16(rng, shape):
    x = rng.integers(-32768, 32768, shape).astype(np.int16)
    x.flat[::7] = -32768  # -32768 * -32768 * 2 is vpmaddwd's one wrapping case
    return x


@pytest.mark.parametrize("types", NEW, ids=lambda t: t.name)
@pytest.mark.parametrize("shape", [(1, 1, 1), (37, 29, 45), (6, 16, 300), (64, 33, 130)])
def test_matmul_exact_every_isa(isa, types, shape):
    M, K, N = shape
    rng = np.random.default_rng(M * N + K)
    a, b = _inputs(types, rng, (M, K), (K, N))
    if types is S16S16S32:
        a, b = _extremes_s16(rng, (M, K)), _extremes_s16(rng, (K, N))
    if types is U8S8S32:
        a.flat[::5], b.flat[::3] = 255, -128  # 255 x -128 at the edges of the range
    if types is S8S4S32:
        a.flat[::5], b.flat[::3] = -128, -8  # -128 x -8 at the edges of the ranges
    out = ukernels.matmul(a, b)
    ref = _wide(a) @ _wide(b)
    assert out.dtype == types.acc
    if types.acc_is_float:
        np.testing.assert_array_equal(out, ref.astype(np.float32))
    else:
        np.testing.assert_array_equal(out, (ref % (1 << 32)).astype(np.uint32).view(np.int32))  # wraps


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
def test_random_floats_within_the_k_scaled_bound(isa, dtype):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((70, 300)).astype(dtype)
    b = rng.standard_normal((300, 50)).astype(dtype)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)  # exact widening: products are exact in f32
    out = ukernels.matmul(a, b, bias=np.ones(50, np.float32), activation="relu")
    ref = np.maximum(a32.astype(np.float64) @ b32.astype(np.float64) + 1, 0)
    assert np.all(np.abs(out - ref) <= k_scaled_tol(a32, b32) + 1e-6)


def test_narrow_outputs_round_once_to_nearest_even():
    """out_dtype float16/bfloat16: identity @ b returns b exactly in f32, so the write-back
    must equal numpy's/ml_dtypes' own rounding of b for every value class: normal, subnormal,
    ties, overflow to Inf, Inf, NaN, signed zero."""
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 1 << 32, 4096, dtype=np.uint64).astype(np.uint32)
    special = np.array([0.0, -0.0, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26,
                        6.1e-5, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8,
                        np.inf, -np.inf, np.nan, 3.4e38], np.float32)
    vals = np.concatenate([bits.view(np.float32), special, rng.standard_normal(512).astype(np.float32) * 1e-5])
    b = vals.reshape(1, -1)
    eye = np.ones((1, 1), np.float32)
    for dt in (np.dtype(np.float16), BF16):
        with np.errstate(over="ignore", invalid="ignore"):
            want = b.astype(dt)
        got = ukernels.matmul(eye, b, out_dtype=dt)
        assert got.dtype == dt
        w, g = want.astype(np.float32), got.astype(np.float32)
        same = (w == g) | (np.isnan(w) & np.isnan(g))
        assert same.all(), (dt, b[~same][:5], w[~same][:5], g[~same][:5])
        nonzero = ~np.isnan(w) & (w != 0)  # (a sum from +0 turns -0 inputs into +0, as in f32)
        assert (np.signbit(w) == np.signbit(g))[nonzero].all()


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16f16f16", "bf16bf16bf16"])
def test_narrow_output_triples_with_epilogue(dtype):
    rng = np.random.default_rng(9)
    a = rng.integers(-4, 5, (33, 40)).astype(dtype)
    b = rng.integers(-4, 5, (40, 21)).astype(dtype)
    bias = rng.standard_normal(21).astype(np.float32)
    out = ukernels.matmul(a, b, bias=bias, epilogue=[O.Gelu("tanh")], out_dtype=dtype)
    f32 = ukernels.matmul(a, b, bias=bias, epilogue=[O.Gelu("tanh")])
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, f32.astype(dtype))


@pytest.mark.parametrize("shape", [(16, 16, 2), (64, 48, 96), (37, 70, 33), (9, 100, 17), (200, 16, 1)],
                         ids=lambda s: "x".join(map(str, s)))
def test_precision_bf16_rounds_to_nearest_even_while_packing(isa, shape):
    """precision="bf16" on float32 operands: where the CPU has vdpbf16ps the packs round (no
    rounded copies; the SIMD packs do full tiles, the portable code the edges). Values at and
    beside the rounding ties of bf16 (8 significand bits), times an identity or small integers:
    the result is exactly what rounding with ml_dtypes first gives."""
    M, N, K = shape
    rng = np.random.default_rng(M * N + K)
    ulp = 2.0 ** -7  # of bf16 in [1, 2)
    # ties (half an ulp: round to even), just under and over them, exact values; signs; powers of two
    frac = rng.choice([0.5, 1.5, 0.5 - 2 ** -12, 0.5 + 2 ** -12, 1.0, 3.0, 0.25, 0.75], (M, K)) * ulp
    a = ((1 + rng.integers(0, 120, (M, K)) * ulp + frac) * rng.choice([-1, 1], (M, K))
         * 2.0 ** rng.integers(-3, 4, (M, K))).astype(np.float32)
    b = rng.integers(-3, 4, (K, N)).astype(np.float32)
    want = a.astype(BF16).astype(np.float64) @ b.astype(np.float64)  # exact in f32: few terms, short significands
    np.testing.assert_array_equal(ukernels.matmul(a, b, precision="bf16"), want.astype(np.float32))
    eye = np.eye(K, N, dtype=np.float32)
    np.testing.assert_array_equal(ukernels.matmul(a, eye, precision="bf16"),
                                  (a.astype(BF16).astype(np.float64) @ eye).astype(np.float32))
    np.testing.assert_array_equal(ukernels.matmul(b.T.copy(), a.T, precision="bf16"), want.T.astype(np.float32))


def test_precision_bf16_rounds_float32_inputs():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((50, 64)).astype(np.float32)
    b = rng.standard_normal((64, 30)).astype(np.float32)
    got = ukernels.matmul(a, b, precision="bf16")
    np.testing.assert_array_equal(got, ukernels.matmul(a.astype(BF16), b.astype(BF16)))
    assert got.dtype == np.float32
    rel = np.abs(got - a.astype(np.float64) @ b) / (np.abs(a) @ np.abs(b))
    assert rel.max() < 2 * 2.0 ** -8  # two bf16 roundings per product
    lin = ukernels.Linear(b, layout="kn", precision="bf16")
    np.testing.assert_array_equal(lin(a), got)
    np.testing.assert_array_equal(ukernels.matmul(a.astype(np.float64), b.astype(np.float64), precision="f32"),
                                  ukernels.matmul(a, b))
    with pytest.raises(TypeError, match="precision='bf16' applies to floating-point inputs"):
        ukernels.matmul(a.astype(np.int8), b.astype(np.int8), precision="bf16")
    with pytest.raises(ValueError, match="precision must be one of"):
        ukernels.matmul(a, b, precision="fp8")


@pytest.mark.parametrize("wdtype", [np.float16, BF16, np.int16, np.int8, INT4], ids=["f16", "bf16", "s16", "s8", "s4"])
def test_linear_with_every_weight_type(wdtype, tmp_path):
    rng = np.random.default_rng(13)
    types = [t for t in ELEMENT_TYPES.values() if t.rhs == np.dtype(wdtype)]
    lo, hi = (-4, 5) if np.dtype(wdtype) in (np.dtype(np.float16), BF16) else (-8, 8) if wdtype == INT4 else (-100, 100)
    w = rng.integers(lo, hi, (24, 40)).astype(wdtype)
    acc = np.float32 if np.dtype(wdtype) in (np.dtype(np.float16), BF16) else np.int32
    lin = ukernels.Linear(w, bias=rng.integers(-9, 9, 24).astype(acc))
    for t in types:  # int8 weights take int8 and uint8 activations
        x = rng.integers(0 if t.lhs == np.uint8 else lo, hi, (5, 7, 40)).astype(t.lhs)
        ref = _wide(x) @ _wide(w).T + lin._shorthand[0].astype(np.int64)
        out = lin(x)
        assert out.shape == (5, 7, 24)
        np.testing.assert_array_equal(out, ref.astype(acc))
    lin.save(tmp_path / "l.ukl")
    back = ukernels.Linear.load(tmp_path / "l.ukl")
    x = rng.integers(lo, hi, (3, 40)).astype(types[0].lhs)
    np.testing.assert_array_equal(back(x), lin(x))
    with pytest.raises(TypeError, match="x must have dtype"):
        lin(x.astype(np.float64))


def test_unsupported_combinations_list_the_supported_ones():
    f = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match=r"supported: float32 x float32 -> float32.*uint8 x int8 -> int32"):
        ukernels.matmul(f.astype(np.int32), np.ones((3, 2), np.int32))
    with pytest.raises(TypeError, match=r"same dtype.*precision='f32'"):
        ukernels.matmul(f, np.ones((3, 2), np.float16))


def test_info_and_explain_list_every_triple():
    tiles = ukernels.info()["tiles"]
    for name in ("f32f32f32", "s8s8s32", "f16f16f32", "f16f16f16", "bf16bf16f32", "bf16bf16bf16", "s16s16s32",
                 "u8s8s32"):
        assert name in tiles and tiles[name]["function"].startswith("uk_mmt4d_tile_")
    assert ukernels.explain(16, 64, 64, dtype="u8s8s32", backend="ukernel")["types"] == "u8s8s32"
    assert ukernels.explain(16, 64, 64, dtype="bfloat16")["types"] == "bf16bf16f32"


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
def test_every_16_bit_value_widens_exactly(isa, dtype):
    """All 65536 bit patterns as lhs and as rhs, times one: the packs that widen 16-bit
    floats to f32 (and the 16-bit tiles) must reproduce numpy's exact conversion,
    subnormals, signed zeros, Inf and NaN included."""
    vals = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    one = np.ones((1, 1), dtype)
    want = vals.astype(np.float32)
    eye8 = np.eye(8, dtype=dtype)
    finite_rows = np.repeat(np.isfinite(want.reshape(-1, 8)).all(axis=1), 8)  # Inf/NaN x 0 spoils a row
    finite_cols = np.tile(np.isfinite(want.reshape(8, -1)).all(axis=0), 8)  # ... or a column
    # vdpbf16ps (AVX512_BF16) and aarch64's bfdot/bfmmla (without FEAT_EBF16) flush subnormal
    # inputs to zero, as the README states: where a call runs such a tile (explain / info name
    # it), the subnormals are expected as zeros.
    flushed = np.where(np.abs(want) < np.finfo(np.float32).tiny, np.float32(0), want)

    def expect(M, N, K, prepacked=False):
        if dtype != BF16:
            return want
        fn = (ukernels.info()["tiles"]["bf16bf16f32"]["function"] if prepacked
              else ukernels.explain(M, N, K, dtype="bfloat16")["function"])
        return flushed if ("avx512_bf16" in fn or "arm_64_bf16" in fn) else want

    n = vals.size
    cases = [(ukernels.matmul(one, vals.reshape(1, -1)).reshape(-1), None, expect(1, n, 1)),
             (ukernels.matmul(vals.reshape(-1, 1), one).reshape(-1), None, expect(n, 1, 1)),
             # prepacked: 16-bit tiles
             (ukernels.Linear(vals.reshape(-1, 1))(one).reshape(-1), None, expect(1, n, 1, prepacked=True)),
             # K = 8: SIMD lhs pack; then the SIMD rhs pack
             (ukernels.matmul(vals.reshape(-1, 8), eye8).reshape(-1), finite_rows, expect(n // 8, 8, 8)),
             (ukernels.matmul(eye8, vals.reshape(8, -1)).reshape(-1), finite_cols, expect(8, n // 8, 8))]
    for got, rows, expected in cases:
        w = expected if rows is None else expected[rows]
        g = got if rows is None else got[rows]
        nan = np.isnan(w)
        assert np.array_equal(np.isnan(g), nan)
        np.testing.assert_array_equal(g[~nan], w[~nan])
        nonzero = ~nan & (w != 0)
        assert (np.signbit(g) == np.signbit(w))[nonzero].all()


# ---- the codegen path for the same triples (element types as data in codegen/targets.py) ----

def _codegen_cases(int4: bool = True):
    """(types, M0, N0, target) for every target with spellings; ``int4=False`` leaves out
    s8s4s32, whose nibble buffers the ABI-level helper cannot build (the matmul-level
    bitwise test covers the generated int4 kernels)."""
    from ukernels.codegen import targets
    out = []
    for types in ("f16f16f32", "bf16bf16f32", "s16s16s32", "u8s8s32") + (("s8s4s32",) if int4 else ()):
        for target in ("generic", "avx2", "avx512", "avx512_vnni"):
            t = targets.target(target)
            if targets.spelling(t, types) is None:
                continue
            lanes = t.f32_lanes if targets.ELEMENT_TYPES[types].family == "float" else (t.s32_lanes or 4)
            for M0, nv in ((1, 1), (3, 2), (6 if lanes == 8 else 4, 2)):
                out.append((types, M0, nv * lanes, target))
    return out


@pytest.mark.parametrize("static_k", [None, 9])
@pytest.mark.parametrize("case", _codegen_cases(int4=False), ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-{c[3]}")
def test_generated_kernels_exact(case, static_k):
    from ukernels.codegen import cache, targets
    from ukernels.codegen.render import KernelSpec
    types_name, M0, N0, target = case
    spec = KernelSpec(types_name, M0, N0, target, static_k)
    if target not in targets.host_targets():
        pytest.skip(f"this CPU cannot run codegen target {target!r} (needs CPU bits "
                    f"{targets.target(target).required_cpu:#x}); compiled in test_generated_kernels_compile_everywhere")
    k = cache.get_kernel(spec)
    types = ELEMENT_TYPES[types_name]
    K0 = spec.K0
    rng = np.random.default_rng(M0 * N0)
    for (M, N, K) in ((2, 3, 9), (1, 1, 1), (3, 2, 40)):
        for accumulate in (False, True):
            lhs, rhs = _inputs(types, rng, M * K * M0 * K0, N * K * N0 * K0)
            out = rng.integers(-50, 51, M * N * M0 * N0).astype(types.acc)
            init = out.copy()
            mmt4d(lhs, rhs, out, types=types, M=M, N=N, K=K, M0=M0, N0=N0, K0=K0, accumulate=accumulate, fn=k.fn)
            ref = np.einsum("mkiq,nkjq->mnij", _wide(lhs).reshape(M, K, M0, K0),
                            _wide(rhs).reshape(N, K, N0, K0)).reshape(-1)
            if accumulate:
                ref = ref + init.astype(np.int64)
            want = ref.astype(np.float32) if types.acc_is_float else (ref % (1 << 32)).astype(np.uint32).view(np.int32)
            np.testing.assert_array_equal(out, want)


def test_generated_kernels_compile_everywhere(tmp_path):
    """Targets this CPU cannot run are still rendered and compiled (a compiler error in
    a template shows here, whatever the host)."""
    from ukernels.codegen import compiler, targets
    from ukernels.codegen.render import KernelSpec, render
    for types_name, M0, N0, target in _codegen_cases():
        t = targets.target(target)
        if t.arch not in ("any", "x86_64") or not __import__("platform").machine().lower() in ("x86_64", "amd64"):
            continue
        spec = KernelSpec(types_name, M0, N0, target, 9)
        compiler.compile_object(render(spec), str(tmp_path / f"{spec.name}.o"), t, str(tmp_path / "logs"))


@pytest.mark.parametrize("types", GENERATED, ids=lambda t: t.name)
def test_codegen_equals_ukernel_bitwise(isa, types):
    rng = np.random.default_rng(17)
    for (M, K, N) in ((37, 29, 45), (1, 300, 20), (64, 130, 33)):
        a, b = _inputs(types, rng, (M, K), (K, N))
        hand = ukernels.matmul(a, b, backend="ukernel")
        gen = ukernels.matmul(a, b, backend="codegen")
        np.testing.assert_array_equal(gen, hand)
        lin = ukernels.Linear(b, layout="kn", backend="codegen")
        np.testing.assert_array_equal(lin(a), hand)


@pytest.mark.parametrize("types", [t for t in ELEMENT_TYPES.values() if not t.acc_is_float], ids=lambda t: t.name)
def test_integer_triples_with_bias_relu_and_requantize(types):
    """The epilogue is shared by every triple: int32 ops stay integer, Requantize ends in int8/uint8."""
    rng = np.random.default_rng(23)
    a, b = _inputs(types, rng, (19, 70), (70, 23))
    acc = _wide(a) @ _wide(b)
    bias = rng.integers(-1000, 1000, 23).astype(np.int32)
    wrapped = ((acc + bias) % (1 << 32)).astype(np.uint32).view(np.int32)  # int32 arithmetic wraps (s16 sums do)
    out = ukernels.matmul(a, b, bias=bias, activation="relu")
    np.testing.assert_array_equal(out, np.maximum(wrapped, 0))
    scale = (rng.integers(1, 50, 23) / 1e5).astype(np.float32)
    q = ukernels.matmul(a, b, bias=bias, epilogue=[O.Requantize(scale, 3, np.int8)])
    ref = np.clip(np.rint(wrapped.astype(np.float32) * scale) + 3, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(q, ref)
