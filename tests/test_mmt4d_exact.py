"""IREE-style exact tests of every tile function the host can run, at the
ukernel ABI (ukernels.abi.mmt4d -> uk_mmt4d): small-integer inputs so every
result is exact, compared bit for bit with a numpy reference; narrow M0;
ACCUMULATE on and off; padded outer strides and offsets (with a check that
nothing outside the output tiles is written); M/N/K = 0; the generic
fallback on odd tiles."""
import numpy as np
import pytest

from ukernels import cpu
from ukernels._lib import lib
from ukernels.abi import F32F32F32, S8S8S32, UkernelError, mmt4d, tile_function_name

from conftest import skip_unless_cpu_has

AVX2 = lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_F16C
AVX512 = AVX2 | lib.UK_CPU_X86_AVX512_BASE
VNNI = AVX512 | lib.UK_CPU_X86_AVX512_VNNI
NEON = lib.UK_CPU_ARM_NEON
DOTPROD = NEON | lib.UK_CPU_ARM_DOTPROD
I8MM = DOTPROD | lib.UK_CPU_ARM_I8MM
LEVEL_OF_BITS = {0: "generic", AVX2: "avx2", AVX512: "avx512", VNNI: "avx512",
                 NEON: "neon", DOTPROD: "neon_dotprod", I8MM: "neon_i8mm"}

# (types, M0, N0, K0, cpu bits to run with, what those bits need, expected function suffix)
CASES = []
for m0 in (1, 2, 4, 8):
    CASES.append((F32F32F32, m0, 8, 1, AVX2, "AVX2+FMA", "avx2_fma"))
    CASES.append((S8S8S32, m0, 8, 2, AVX2, "AVX2+FMA", "avx2_fma"))
for m0 in (1, 2, 4, 6):
    CASES.append((F32F32F32, m0, 16, 1, AVX2, "AVX2+FMA", "avx2_fma"))
for m0 in (1, 2, 4, 8, 16):
    CASES.append((F32F32F32, m0, 16, 1, AVX512, "AVX-512 F/BW/DQ/VL", "avx512_base"))
    CASES.append((S8S8S32, m0, 16, 2, AVX512, "AVX-512 F/BW/DQ/VL", "avx512_base"))
    CASES.append((S8S8S32, m0, 16, 2, VNNI, "AVX-512 VNNI", "avx512_vnni"))
for m0 in (1, 2, 4, 8):  # aarch64 (run natively there, or under qemu: tests/test_aarch64_python.py)
    CASES.append((F32F32F32, m0, 8, 1, NEON, "NEON", "arm_64_neon"))
    CASES.append((S8S8S32, m0, 8, 4, DOTPROD, "NEON dotprod (asimddp)", "arm_64_dotprod"))
    CASES.append((S8S8S32, m0, 8, 8, I8MM, "NEON i8mm", "arm_64_i8mm"))
for tile in ((8, 8, 1), (1, 8, 1), (3, 5, 7), (16, 16, 1)):
    CASES.append((F32F32F32, *tile, 0, "", "generic"))
for tile in ((8, 8, 2), (2, 8, 2), (3, 5, 7), (16, 16, 2)):
    CASES.append((S8S8S32, *tile, 0, "", "generic"))

SHAPES = [(1, 1, 1), (1, 1, 1000), (2, 2, 2), (5, 7, 13), (9, 9, 9), (6, 13, 3), (81, 19, 41),
          (0, 3, 4), (3, 0, 4), (3, 4, 0)]


def _case_id(c):
    return f"{c[0].name}-{c[1]}x{c[2]}x{c[3]}-{c[6]}"


def _reference(lhs4, rhs4, init, accumulate, types):
    wide = np.int64 if types is S8S8S32 else np.float64
    prod = np.einsum("mkiq,nkjq->mnij", lhs4.astype(wide), rhs4.astype(wide), optimize=True)
    if accumulate:
        prod = prod + init.astype(wide)
    if types is S8S8S32:
        return prod.astype(np.int64).astype(np.int32)  # wraps like int32 arithmetic
    return prod.astype(np.float32)


def _run_case(case, shape, accumulate, padded, seed=0):
    types, M0, N0, K0, bits, what, suffix = case
    skip_unless_cpu_has(bits, what)
    M, N, K = shape
    rng = np.random.default_rng(hash((M0, N0, K0, shape, accumulate, padded, types.name)) % 2**32)
    lo, hi = (-128, 127) if types is S8S8S32 else (-4, 4)
    pad = (lambda: int(rng.integers(1, 17))) if padded else (lambda: 0)
    lhs_off, rhs_off, out_off = (pad(), pad(), pad())
    lhs_s, rhs_s, out_s = K * M0 * K0 + pad(), K * N0 * K0 + pad(), N * M0 * N0 + pad()
    lhs = rng.integers(lo, hi + 1, lhs_off + max(M, 1) * lhs_s).astype(types.lhs)
    rhs = rng.integers(lo, hi + 1, rhs_off + max(N, 1) * rhs_s).astype(types.rhs)
    sentinel = 12345
    out = np.full(out_off + max(M, 1) * out_s + 3, sentinel, dtype=types.acc)
    # logical views of the tiles inside the padded buffers
    def view(buf, off, stride, outer, inner):
        return np.lib.stride_tricks.as_strided(buf[off:], shape=(outer,) + inner,
                                               strides=(stride * buf.itemsize,) + tuple(
                                                   int(np.prod(inner[i + 1:])) * buf.itemsize
                                                   for i in range(len(inner))))
    lhs4 = view(lhs, lhs_off, lhs_s, M, (K, M0, K0)).copy()
    rhs4 = view(rhs, rhs_off, rhs_s, N, (K, N0, K0)).copy()
    out4 = view(out, out_off, out_s, M, (N, M0, N0))
    init = rng.integers(-50, 51, out4.shape).astype(types.acc)
    out4[...] = init
    before = out.copy()
    isa = LEVEL_OF_BITS[bits]
    expected_name = tile_function_name(types, M0, N0, K0, isa)
    if bits != VNNI and isa == "avx512" and cpu.cpu_bits() & lib.UK_CPU_X86_AVX512_VNNI and types is S8S8S32:
        # the base AVX-512 s8 kernel is selected only when VNNI is masked off
        from ukernels import abi
        bits_used = bits
        cpu_data = abi.ffi.new("uint64_t[1]", [cpu.cpu_bits() & bits_used])
        expected_name = abi.ffi.string(lib.uk_mmt4d_tile_name(
            types.uk_type | lib.UK_FLAG_ALLOW_GENERIC_FALLBACK, M0, N0, K0, cpu_data)).decode()
    assert suffix in expected_name, expected_name
    mmt4d(lhs, rhs, out, types=types, M=M, N=N, K=K, M0=M0, N0=N0, K0=K0,
          lhs_offset=lhs_off, lhs_stride0=lhs_s, rhs_offset=rhs_off, rhs_stride0=rhs_s,
          out_offset=out_off, out_stride0=out_s, accumulate=accumulate,
          cpu_bits=cpu.cpu_bits() & bits)
    expected = _reference(lhs4, rhs4, init, accumulate, types)
    got = view(out, out_off, out_s, M, (N, M0, N0))
    np.testing.assert_array_equal(got, expected)
    # nothing outside the tiles was written
    mask = np.ones(out.shape, bool)
    for m in range(M):
        s = out_off + m * out_s
        mask[s:s + N * M0 * N0] = False
    np.testing.assert_array_equal(out[mask], before[mask])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_tile_function_exact_tight(case, shape):
    _run_case(case, shape, accumulate=False, padded=False)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_tile_function_exact_accumulate_padded(case, shape):
    _run_case(case, shape, accumulate=True, padded=True)


def test_int32_accumulation_wraps_like_numpy():
    # 2*127*127*K overflows int32 for large K: all paths wrap (two's complement).
    types = S8S8S32
    M0, N0, K0, K = 1, 8, 2, 70000
    lhs = np.full(K * M0 * K0, 127, np.int8)
    rhs = np.full(K * N0 * K0, 127, np.int8)
    expected = np.int64(127 * 127 * 2 * K)
    wrapped = ((expected + 2**31) % 2**32) - 2**31
    for bits in (0, cpu.cpu_bits()):
        out = np.zeros(M0 * N0, np.int32)
        mmt4d(lhs, rhs, out, types=types, M=1, N=1, K=K, M0=M0, N0=N0, K0=K0, cpu_bits=bits)
        assert (out == wrapped).all()


def test_no_generic_fallback_reports_missing_tile_function():
    lhs = np.zeros(7 * 3, np.float32)
    with pytest.raises(UkernelError, match="no tile function"):
        mmt4d(lhs, lhs, np.zeros(3 * 3, np.float32), types=F32F32F32, M=1, N=1, K=1, M0=3, N0=3,
              K0=7, allow_generic_fallback=False)


def test_bounds_are_checked_before_calling_c():
    with pytest.raises(ValueError, match="lhs has 3 elements"):
        mmt4d(np.zeros(3, np.float32), np.zeros(64, np.float32), np.zeros(64, np.float32),
              types=F32F32F32, M=1, N=1, K=1, M0=8, N0=8, K0=1)
