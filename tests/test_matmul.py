"""ukernels.matmul against numpy, under every ISA level the host supports."""
import math

import numpy as np
import pytest

import ukernels
from conftest import k_scaled_tol, small_ints

SHAPES = [(1, 1, 1), (1, 1, 1000), (2, 2, 2), (5, 7, 13), (9, 9, 9), (6, 13, 3), (81, 19, 41),
          (3, 5, 7), (17, 33, 65), (130, 70, 300), (1, 300, 64), (0, 4, 5), (4, 0, 5), (4, 5, 0), (0, 0, 0)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]


def gelu_ref(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + np.vectorize(math.erf, otypes=[np.float64])(x / math.sqrt(2.0)))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_f32_exact_on_small_integers(isa, shape):
    M, N, K = shape
    rng = np.random.default_rng(M * 10007 + N * 101 + K)
    a, b = small_ints(rng, (M, K), np.float32), small_ints(rng, (K, N), np.float32)
    bias = small_ints(rng, (N,), np.float32)
    out = ukernels.matmul(a, b)
    assert out.dtype == np.float32 and out.shape == (M, N) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, a @ b)
    np.testing.assert_array_equal(ukernels.matmul(a, b, bias=bias), a @ b + bias)
    np.testing.assert_array_equal(ukernels.matmul(a, b, bias=bias, activation="relu"),
                                  np.maximum(a @ b + bias, 0))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_int8_exact(isa, shape):
    M, N, K = shape
    rng = np.random.default_rng(M * 7919 + N * 31 + K)
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    bias = rng.integers(-10**6, 10**6, N).astype(np.int32)
    ref = a.astype(np.int32) @ b.astype(np.int32)
    out = ukernels.matmul(a, b)
    assert out.dtype == np.int32 and out.shape == (M, N)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(ukernels.matmul(a, b, bias=bias), ref + bias)
    np.testing.assert_array_equal(ukernels.matmul(a, b, bias=bias, activation="relu"), np.maximum(ref + bias, 0))


@pytest.mark.parametrize("shape", [(64, 64, 64), (33, 65, 1000), (200, 150, 513), (1, 512, 2048)],
                         ids=lambda s: "x".join(map(str, s)))
def test_f32_random_within_k_scaled_tolerance(isa, shape):
    M, N, K = shape
    rng = np.random.default_rng(42)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    out = ukernels.matmul(a, b)
    assert (np.abs(out - ref) <= k_scaled_tol(a, b)).all()


def test_gelu_against_float64_reference(isa):
    # tolerance: matmul's K-scaled bound (gelu' <= 1.13) + the measured erf
    # approximation error, < 2.2e-7*(|x|+1) (1e-6 allowed here)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((37, 100)).astype(np.float32)
    b = rng.standard_normal((100, 45)).astype(np.float32) * 0.3
    bias = rng.standard_normal(45).astype(np.float32)
    pre = a.astype(np.float64) @ b.astype(np.float64) + bias
    out = ukernels.matmul(a, b, bias=bias, activation="gelu")
    tol = 1.13 * (k_scaled_tol(a, b) + np.abs(pre) * 2**-23) + 1e-6 * (np.abs(pre) + 1)
    assert (np.abs(out - gelu_ref(pre)) <= tol).all()


def test_nan_and_inf_propagate(isa):
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 20), np.float32)
    a[0, 1] = np.nan
    a[1, 2] = np.inf
    a[2, 0] = -np.inf
    with np.errstate(invalid="ignore"):
        ref = a @ b
    out = ukernels.matmul(a, b)
    np.testing.assert_array_equal(out, ref)  # assert_array_equal treats NaN == NaN
    relu = ukernels.matmul(a, b, activation="relu")
    np.testing.assert_array_equal(relu, np.maximum(ref, 0))  # np.maximum propagates NaN
    gelu = ukernels.matmul(a, b, activation="gelu")
    assert np.isnan(gelu[0]).all() and np.isposinf(gelu[1]).all()


@pytest.mark.parametrize("layout", ["fortran", "negative", "sliced", "transposed_views", "noncontig_bias"])
def test_any_strides_and_inputs_not_modified(isa, layout):
    rng = np.random.default_rng(5)
    A = small_ints(rng, (60, 90), np.float32)
    B = small_ints(rng, (90, 70), np.float32)
    bias_full = small_ints(rng, (140,), np.float32)
    if layout == "fortran":
        a, b = np.asfortranarray(A), np.asfortranarray(B)
    elif layout == "negative":
        a, b = A[::-1, ::-1], B[::-1, :]
    elif layout == "sliced":
        a, b = A[5:50:2, 1:80:3], B[1:80:3, ::2]
    elif layout == "transposed_views":
        a, b = np.ascontiguousarray(A.T).T, np.ascontiguousarray(B.T).T
    else:
        a, b = A, B
    bias = bias_full[::2] if layout == "noncontig_bias" else bias_full[: b.shape[1]]
    a_before, b_before = a.copy(), b.copy()
    out = ukernels.matmul(a, b, bias=bias, activation="relu")
    np.testing.assert_array_equal(out, np.maximum(a @ b + bias, 0))
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


def test_big_endian_and_unaligned_inputs():
    rng = np.random.default_rng(6)
    a = small_ints(rng, (9, 11), np.float32)
    b = small_ints(rng, (11, 13), np.float32)
    buf = np.zeros(a.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(buf[1:].data, dtype=np.float32).reshape(a.shape)
    unaligned[...] = a
    np.testing.assert_array_equal(ukernels.matmul(unaligned, b.astype(">f4")), a @ b)


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((300, 257)).astype(np.float32)
    b = rng.standard_normal((257, 333)).astype(np.float32)
    old = ukernels.get_num_threads()
    try:
        ukernels.set_num_threads(1)
        one = ukernels.matmul(a, b, activation="gelu")
        ukernels.set_num_threads(2)
        two = ukernels.matmul(a, b, activation="gelu")
    finally:
        ukernels.set_num_threads(old)
    np.testing.assert_array_equal(one, two)


def test_backends():
    a = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(ukernels.matmul(a, a.T, backend="ukernel"), a @ a.T)
    np.testing.assert_array_equal(ukernels.matmul(a, a.T, backend="auto"), a @ a.T)
    np.testing.assert_array_equal(ukernels.matmul(a, a.T, backend="codegen"), a @ a.T)


def test_array_likes_are_accepted():
    # lists (no dtype of their own) compute in float32; arrays keep their dtype's rules
    out = ukernels.matmul(np.array([[1, 2]], np.float32), np.array([[3], [4]], np.float32))
    np.testing.assert_array_equal(out, [[11]])
    assert ukernels.matmul([[1.0, 2.0]], [[3.0], [4.0]]).dtype == np.float32
    with pytest.raises(TypeError, match="unsupported dtype"):
        ukernels.matmul(np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]]))


def test_workspace_is_reused_and_can_be_released():
    a = np.ones((300, 200), np.float32)
    b = np.ones((200, 100), np.float32)
    ukernels.matmul(a, b)
    ukernels.matmul(a, b)  # the first call may be recorded and this one replayed (its own work area)
    held = ukernels.workspace_bytes()
    assert held > 0
    for _ in range(3):
        ukernels.matmul(a, b)
        assert ukernels.workspace_bytes() == held  # reused, not grown
    ukernels.release_workspace()
    assert ukernels.workspace_bytes() == 0
    np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)  # re-created on demand
