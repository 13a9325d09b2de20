"""Small-M calls read a row-major rhs in place (no packing of b): the ukernel ABI's
``rhs_stride1`` for K0 = 1 tiles, exact against numpy and bit for bit against the
packed layout (handwritten and generated), and ``matmul`` through the dispatch's
in-place mode (runtime/plan.py: ``rhs_direct``) on every float type and ISA level
the host runs, with partial column tiles, padded, reversed and strided rows."""
import ml_dtypes
import numpy as np
import pytest

import ukernels
from ukernels._lib import lib
from ukernels.abi import BF16BF16F32, F16F16F32, F32F32F32, S8S8S32, UkernelError, element_types_for, mmt4d
from ukernels.runtime.plan import DIRECT_MAX_M, NATIVE_DOT_DIRECT_MAX_M, native_16bit_float_dot, plan_matmul

from conftest import skip_unless_cpu_has

AVX2 = lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_F16C
AVX512 = AVX2 | lib.UK_CPU_X86_AVX512_BASE

# (types, M0, N0, cpu bits, what they need); K0 = 1 throughout
TILE_CASES = [(F32F32F32, m0, 8, AVX2, "AVX2+FMA") for m0 in (1, 2, 4, 8)]
TILE_CASES += [(t, m0, 16, AVX2, "AVX2+FMA+F16C") for t in (F32F32F32, F16F16F32, BF16BF16F32) for m0 in (1, 2, 4, 6)]
TILE_CASES += [(F32F32F32, m0, 16, AVX512, "AVX-512 F/BW/DQ/VL") for m0 in (1, 2, 4, 8, 16)]
TILE_CASES += [(t, m0, n0, 0, "") for t in (F32F32F32, F16F16F32, BF16BF16F32) for m0, n0 in ((1, 8), (3, 5), (8, 8))]


def _tile_operands(types, M0, N0, M, N, K, pad, seed):
    rng = np.random.default_rng(seed)
    lhs = rng.integers(-4, 5, M * K * M0).astype(types.lhs)
    row = N * N0 + pad  # b [K][row]: the panels are column blocks of N0, rows row apart
    b = rng.integers(-4, 5, pad + K * row).astype(types.rhs)
    rows = b[pad:].reshape(K, row)[:, :N * N0]
    packed = np.ascontiguousarray(rows.reshape(K, N, N0).transpose(1, 0, 2)).reshape(-1)
    return lhs, b, row, packed


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 9), (3, 5, 40), (1, 4, 1000), (2, 2, 0)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("case", TILE_CASES, ids=lambda c: f"{c[0].name}-{c[1]}x{c[2]}x1-{'generic' if not c[3] else hex(c[3])}")
def test_tile_reads_row_major_rhs_in_place_exactly(case, shape):
    types, M0, N0, bits, what = case
    skip_unless_cpu_has(bits, what)
    M, N, K = shape
    lhs, b, row, packed = _tile_operands(types, M0, N0, M, N, K, pad=5, seed=M0 * 100 + N0 + K)
    init = np.random.default_rng(K).integers(-50, 51, M * N * M0 * N0).astype(np.float32)
    kw = dict(types=types, M=M, N=N, K=K, M0=M0, N0=N0, K0=1, cpu_bits=bits)
    for accumulate in (False, True):
        direct, ref = init.copy(), init.copy()
        mmt4d(lhs, b, direct, rhs_offset=5, rhs_stride0=N0, rhs_stride1=row, accumulate=accumulate, **kw)
        mmt4d(lhs, packed, ref, accumulate=accumulate, **kw)
        np.testing.assert_array_equal(direct, ref)  # same sums, same order: bit for bit
        lhs4 = lhs.reshape(M, K, M0).astype(np.float64)
        rhs4 = packed.reshape(N, K, N0).astype(np.float64)
        want = np.einsum("mki,nkj->mnij", lhs4, rhs4).reshape(-1) + (init if accumulate else 0)
        np.testing.assert_array_equal(direct, want.astype(np.float32))


def test_rhs_stride1_is_refused_for_k0_above_one():
    lhs = np.zeros(8 * 2, np.int8)
    rhs = np.zeros(64, np.int8)
    with pytest.raises(UkernelError, match="invalid argument"):
        mmt4d(lhs, rhs, np.zeros(64, np.int32), types=S8S8S32, M=1, N=1, K=1, M0=8, N0=8, K0=2, rhs_stride1=32)


def test_rhs_stride1_bounds_are_checked_before_calling_c():
    with pytest.raises(ValueError, match="rhs has 64 elements"):
        mmt4d(np.zeros(8, np.float32), np.zeros(64, np.float32), np.zeros(64, np.float32), types=F32F32F32,
              M=1, N=1, K=8, M0=1, N0=8, K0=1, rhs_stride1=16)


def test_generated_kernel_reads_rhs_in_place_bit_for_bit():
    from ukernels.codegen import cache, targets
    from ukernels.codegen.render import KernelSpec
    from ukernels import cpu
    target = targets.target_for_isa(cpu.active_isa(), "f32f32f32")
    M0, N0 = (2, 16) if target != "generic" else (2, 8)
    for static_k in (None, 9):
        kernel = cache.get_kernel(KernelSpec("f32f32f32", M0, N0, target, static_k))
        M, N, K = 2, 3, 9
        lhs, b, row, packed = _tile_operands(F32F32F32, M0, N0, M, N, K, pad=3, seed=7)
        kw = dict(types=F32F32F32, M=M, N=N, K=K, M0=M0, N0=N0, K0=1)
        got, want = np.zeros(M * N * M0 * N0, np.float32), np.zeros(M * N * M0 * N0, np.float32)
        mmt4d(lhs, b, got, rhs_offset=3, rhs_stride0=N0, rhs_stride1=row, fn=kernel.fn, **kw)
        mmt4d(lhs, packed, want, **kw)
        np.testing.assert_array_equal(got, want)


FLOAT_DTYPES = [np.float32, np.float16, ml_dtypes.bfloat16]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("M", [1, 3, 16, 32])
@pytest.mark.parametrize("N,K", [(1, 1), (15, 7), (16, 300), (33, 2100), (100, 64)])
def test_matmul_small_m_reads_b_in_place_exactly(isa, dtype, M, N, K):
    rng = np.random.default_rng(M * 7 + N * 3 + K)
    a = rng.integers(-3, 4, (M, K)).astype(dtype)
    b = rng.integers(-3, 4, (K, N)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)  # |sums| <= 9 * 2100: exact in f32
    np.testing.assert_array_equal(ukernels.matmul(a, b), want.astype(np.float32))
    p = ukernels.explain(M, N, K, dtype=np.dtype(dtype).name, backend="ukernel")
    types = element_types_for(np.dtype(dtype), np.dtype(dtype))
    if native_16bit_float_dot(types, isa) and M > NATIVE_DOT_DIRECT_MAX_M:
        # the dot-product tile (vdpbf16ps, K0 = 2) outruns reading b in place here
        assert p["rhs_packing"].startswith("in-tile") and p["ukernel_tile"].endswith("x2"), p
    elif isa != "generic" or np.dtype(dtype) == np.float32:
        assert p["rhs_packing"].startswith("none"), p


@pytest.mark.parametrize("layout", ["padded_rows", "reversed_rows", "strided_columns", "fortran"])
def test_matmul_in_place_with_any_row_stride(isa, layout):
    rng = np.random.default_rng(1)
    M, N, K = 3, 37, 500
    a = rng.integers(-3, 4, (M, K)).astype(np.float32)
    full = rng.integers(-3, 4, (K, 2 * N + 5)).astype(np.float32)
    b = {"padded_rows": full[:, 3:N + 3], "reversed_rows": full[::-1, :N], "strided_columns": full[:, ::2][:, :N],
         "fortran": np.asfortranarray(full[:, :N])}[layout]
    want = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(ukernels.matmul(a, b), want)
    np.testing.assert_array_equal(ukernels.matmul(a, b, bias=np.ones(N, np.float32), activation="relu"),
                                  np.maximum(want + 1, 0))


def test_matmul_in_place_epilogue_threads_and_codegen(isa):
    rng = np.random.default_rng(2)
    a = rng.integers(-3, 4, (5, 4000)).astype(np.float32)
    b = rng.integers(-3, 4, (4000, 130)).astype(np.float32)
    want = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
    old = ukernels.get_num_threads()
    try:
        for n in (1, 2):
            ukernels.set_num_threads(n)
            for backend in ("ukernel", "codegen"):
                np.testing.assert_array_equal(ukernels.matmul(a, b, backend=backend), want)
    finally:
        ukernels.set_num_threads(old)


def test_plan_reads_in_place_only_where_it_can():
    p = plan_matmul(F32F32F32, 1, 4096, 4096, "avx2", 2, None, False, True)
    assert p.rhs_direct and p.rhs_pack_in_tile and p.KC == 8 and p.MC == p.M0
    assert not plan_matmul(F32F32F32, 1, 4096, 4096, "avx2", 2).rhs_direct  # b not unit-stride
    assert not plan_matmul(F32F32F32, 1, 4096, 4096, "avx2", 2, None, True, True).rhs_direct  # prepacked
    assert not plan_matmul(F32F32F32, DIRECT_MAX_M + 1, 4096, 4096, "avx2", 2, None, False, True).rhs_direct
    assert not plan_matmul(S8S8S32, 1, 4096, 4096, "avx2", 2, None, False, True).rhs_direct  # K0 = 2
    h = plan_matmul(F16F16F32, 4, 4096, 4096, "avx2", 2, None, False, True)
    assert h.rhs_direct and h.types is F16F16F32  # the 16-bit rows are read, not widened copies
    assert plan_matmul(F16F16F32, 64, 4096, 4096, "avx2", 2, None, False, True).types is F32F32F32


def test_long_k_in_place_accuracy_within_2x_of_numpy():
    rng = np.random.default_rng(3)
    for M, N, K in ((1, 48, 200_000), (8, 16, 100_000)):
        a = np.abs(rng.standard_normal((M, K), dtype=np.float32))  # no cancellation
        b = np.abs(rng.standard_normal((K, N), dtype=np.float32))
        ref = a.astype(np.float64) @ b.astype(np.float64)
        err_numpy = np.abs(a @ b - ref).max()
        err = np.abs(ukernels.matmul(a, b) - ref).max()
        assert err <= 2 * err_numpy, (M, N, K, err, err_numpy)
