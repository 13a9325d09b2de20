"""np.matmul's rules for ukernels.matmul (issue: numpy-native interface, first part): 1-D
operands (the added dimension removed from the result), scalars rejected like numpy, Python
lists and other dtype-less array-likes computed in float32, and out= (shape and dtype
checked; strided, offset and overlapping out arrays written correctly)."""
import numpy as np
import pytest

import ukernels

RNG = np.random.default_rng(0)


def ints(shape, dtype=np.float32):
    return RNG.integers(-3, 4, shape).astype(dtype)  # small integers: exact results


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.float16])
@pytest.mark.parametrize("K", [1, 7, 300])
def test_one_dimensional_operands_follow_np_matmul(dtype, K):
    M, N = 5, 9
    A, B, v, w = ints((M, K), dtype), ints((K, N), dtype), ints(K, dtype), ints(K, dtype)
    wide = np.int64 if np.dtype(dtype).kind == "i" else np.float64
    for a, b in ((v, B), (A, w), (v, w)):
        want = np.matmul(a.astype(wide), b.astype(wide))
        got = ukernels.matmul(a, b)
        assert got.shape == want.shape == np.matmul(a, b).shape
        np.testing.assert_array_equal(got, want.astype(got.dtype))
    assert np.ndim(ukernels.matmul(v, w)) == 0  # a scalar, as np.matmul returns


def test_epilogue_with_one_dimensional_operands():
    v, B = ints(6), ints((6, 4))
    bias = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(ukernels.matmul(v, B, bias=bias, activation="relu"), np.maximum(v @ B + bias, 0))


def test_scalars_are_rejected_like_numpy():
    for a, b in ((np.float32(2), ints((2, 2))), (ints((2, 2)), 3.0)):
        with pytest.raises(ValueError):
            np.matmul(a, b)
        with pytest.raises(ValueError, match=r"scalar \(0-d\)"):
            ukernels.matmul(a, b)


def test_lists_compute_in_float32():
    a, b = [[1, 2], [3, 4]], [[0.5, 1.0], [2.0, -1.0]]
    got = ukernels.matmul(a, b)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(a, np.float64) @ np.array(b, np.float64))
    assert ukernels.matmul([1.0, 2.0], [3.0, 4.0]) == 11.0
    with pytest.raises(TypeError, match="precision='f32'"):  # float64 arrays still need the explicit opt-in
        ukernels.matmul(np.ones((2, 2)), np.ones((2, 2)))


@pytest.mark.parametrize("layout", ["contiguous", "row_padded", "column_strided", "reversed", "fortran"])
def test_out_is_written_and_returned(isa, layout):
    a, b = ints((7, 33)), ints((33, 21))
    want = a @ b
    views = {"contiguous": lambda x: x[:7, :21], "row_padded": lambda x: x[2:9, 5:26],
             "column_strided": lambda x: x[:7, ::2][:, :21], "reversed": lambda x: x[:7, :21][::-1],
             "fortran": lambda x: x.T[:21, :7].T}
    big = np.full((20, 60), 7.0, np.float32)
    out = views[layout](big) if layout != "contiguous" else np.empty((7, 21), np.float32)
    got = ukernels.matmul(a, b, out=out, bias=np.zeros(21, np.float32))
    assert got is out
    np.testing.assert_array_equal(out, want)
    if layout != "contiguous":  # nothing outside out's elements changed
        covered = np.zeros(big.shape, bool)
        views[layout](covered)[...] = True
        assert (big[~covered] == 7.0).all()


def test_out_for_one_dimensional_results_and_dtypes():
    v, B, w = ints(6), ints((6, 4)), ints(6)
    out = np.empty(4, np.float32)
    assert ukernels.matmul(v, B, out=out) is out
    np.testing.assert_array_equal(out, v @ B)
    o0 = np.empty((), np.float32)
    ukernels.matmul(v, w, out=o0)
    assert o0 == v @ w
    i8 = ints((3, 6), np.int8)
    o32 = np.empty((3, 4), np.int32)
    ukernels.matmul(i8, ints((6, 4), np.int8), out=o32)
    with pytest.raises(TypeError, match="out has dtype float32, but the result is int32"):
        ukernels.matmul(i8, ints((6, 4), np.int8), out=np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"out has shape \(4, 3\), but the result has shape \(3, 4\)"):
        ukernels.matmul(ints((3, 6)), B, out=np.empty((4, 3), np.float32))
    with pytest.raises(TypeError, match="out must be a numpy array"):
        ukernels.matmul(ints((3, 6)), B, out=[[0.0] * 4] * 3)
    ro = np.empty((3, 4), np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        ukernels.matmul(ints((3, 6)), B, out=ro)


def test_out_overlapping_an_input_goes_through_a_temporary():
    a = ints((8, 8))
    b = ints((8, 8))
    want = a @ b
    ukernels.matmul(a, b, out=a)  # numpy semantics: as if computed into a temporary
    np.testing.assert_array_equal(a, want)
    c = ints((8, 8))
    want = c @ c
    ukernels.matmul(c, c, out=c)
    np.testing.assert_array_equal(c, want)


BATCH_CASES = [((4, 5, 6), (6, 7)), ((4, 5, 6), (4, 6, 7)), ((2, 3, 5, 6), (3, 6, 7)), ((2, 1, 5, 6), (1, 3, 6, 7)),
               ((6,), (4, 6, 7)), ((4, 5, 6), (6,)), ((3, 1, 6), (6, 300)), ((0, 5, 6), (6, 7)), ((1, 5, 6), (2, 6, 7)),
               ((8, 2, 300), (300, 64)), ((3, 33, 40), (3, 40, 17))]


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.float16])
@pytest.mark.parametrize("shapes", BATCH_CASES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_batched_operands_broadcast_like_np_matmul(isa, shapes, dtype):
    a, b = ints(shapes[0], dtype), ints(shapes[1], dtype)
    wide = np.int64 if np.dtype(dtype).kind == "i" else np.float64
    want = np.matmul(a.astype(wide), b.astype(wide))
    got = ukernels.matmul(a, b)
    assert got.shape == np.matmul(a, b).shape
    np.testing.assert_array_equal(got, want.astype(got.dtype))


def test_batched_strided_operands_epilogue_and_threads():
    a = ints((6, 9, 50))[:, ::2, :]            # strided rows
    b = np.swapaxes(ints((6, 64, 50)), 1, 2)   # (6, 50, 64), column-major items
    bias = np.arange(64, dtype=np.float32)
    want = np.maximum(a.astype(np.float64) @ b.astype(np.float64) + bias, 0)
    old = ukernels.get_num_threads()
    try:
        for n in (1, 2):
            ukernels.set_num_threads(n)
            got = ukernels.matmul(a, b, bias=bias, activation="relu",
                                  epilogue=[ukernels.ops.Residual(np.zeros((5, 64), np.float32))])
            np.testing.assert_array_equal(got, want)
    finally:
        ukernels.set_num_threads(old)


def test_batched_out_and_errors():
    a, b = ints((3, 4, 5)), ints((5, 6))
    for out in (np.empty((3, 4, 6), np.float32), np.zeros((3, 4, 12), np.float32)[:, :, ::2],
                np.zeros((4, 3, 6), np.float32).transpose(1, 0, 2)):
        assert ukernels.matmul(a, b, out=out) is out
        np.testing.assert_array_equal(out, a @ b)
    with pytest.raises(ValueError, match="do not broadcast"):
        ukernels.matmul(ints((2, 4, 5)), ints((3, 5, 6)))
    with pytest.raises(ValueError, match="second-to-last"):
        ukernels.matmul(ints((2, 4, 5)), ints((2, 4, 6)))
    with pytest.raises(ValueError, match="does not broadcast"):
        ukernels.matmul(a, b, epilogue=[ukernels.ops.Residual(np.zeros((2, 4, 6), np.float32))])


@pytest.mark.parametrize("rshape", [(3, 4, 6), (2, 1, 4, 6), (1, 3, 4, 6), (4, 6)])
def test_batched_residual_broadcasts_like_the_result(rshape):
    a, b = ints((2, 3, 4, 5)), ints((5, 6))
    r = ints(rshape)
    got = ukernels.matmul(a, b, epilogue=[ukernels.ops.Residual(r)], activation="relu")
    want = np.maximum(a.astype(np.float64) @ b.astype(np.float64), 0) + r  # activation=, then epilogue
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_shared_rhs_is_packed_once_per_call():
    from ukernels.abi import F32F32F32
    from ukernels.runtime.plan import plan_matmul
    p = plan_matmul(F32F32F32, 4, 512, 512, "avx2", 2, None, False, True, 1, 64, True)
    assert not p.rhs_pack_in_tile and not p.rhs_direct  # one packing phase for all 64 items
    assert p.threads == 2  # threads chosen by the whole stack's work


def test_linear_per_call_ops_shaped_like_the_output():
    w = ints((96, 64))
    x = ints((5, 7, 64))
    r = ints((5, 7, 96))
    rows = ints((5, 7))
    lin = ukernels.Linear(w)
    got = lin(x, epilogue=[ukernels.ops.Residual(r), ukernels.ops.BiasAdd(rows, axis="row")])
    want = x.astype(np.float64) @ w.T.astype(np.float64) + r + rows[..., None]
    assert got.shape == (5, 7, 96)
    np.testing.assert_array_equal(got, want.astype(np.float32))
