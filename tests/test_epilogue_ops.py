"""Each epilogue op and chains of them against float64 numpy references
(tolerances stated per op), requantization bit-exact, both backends, bad
operands, and no full-size intermediate allocation."""
import math
import tracemalloc

import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from conftest import k_scaled_tol

M, N, K = 37, 70, 129
_verf = np.vectorize(math.erf, otypes=[np.float64])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = (rng.standard_normal((K, N)) / math.sqrt(K)).astype(np.float32)
    return rng, a, b


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# (op factory, float64 reference, extra absolute tolerance as a function of the pre-op value x)
# Tolerances: the matmul's K-scaled bound propagates through each op with its Lipschitz
# constant (<= 1.13 for all of these); on top, each approximation's measured error:
# erf 2.2e-7 (|x|+1), exp-based ops ~2 ulp of the result, tanh 2e-7.
def _ops(rng):
    col = rng.standard_normal(N).astype(np.float32)
    row = rng.standard_normal(M).astype(np.float32)
    res = rng.standard_normal((M, N)).astype(np.float32)
    sc = rng.uniform(0.5, 2.0, N).astype(np.float32)
    return {
        "bias_column": (O.BiasAdd(col), lambda x: x + col, lambda x: 0),
        "bias_row": (O.BiasAdd(row, axis="row"), lambda x: x + row[:, None], lambda x: 0),
        "residual": (O.Residual(res), lambda x: x + res, lambda x: 0),
        "residual_strided": (O.Residual(np.asfortranarray(res)), lambda x: x + res, lambda x: 0),
        "scale_tensor": (O.Scale(0.75), lambda x: x * np.float32(0.75), lambda x: 0),
        "scale_channel": (O.Scale(sc), lambda x: x * sc, lambda x: 0),
        "clamp": (O.Clamp(-0.3, 0.4), lambda x: np.clip(x, -0.3, 0.4), lambda x: 0),
        "clamp_lo_only": (O.Clamp(lo=0.1), lambda x: np.maximum(x, np.float32(0.1)), lambda x: 0),
        "relu": (O.Relu(), lambda x: np.maximum(x, 0), lambda x: 0),
        "relu6": (O.Relu6(), lambda x: np.clip(x, 0, 6), lambda x: 0),
        "gelu": (O.Gelu(), lambda x: 0.5 * x * (1 + _verf(x / math.sqrt(2))), lambda x: 1e-6 * (np.abs(x) + 1)),
        "gelu_tanh": (O.Gelu("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
                      lambda x: 1e-6 * (np.abs(x) + 1)),
        "silu": (O.Silu(), lambda x: x * _sigmoid(x), lambda x: 1e-6 * (np.abs(x) + 1)),
        "sigmoid": (O.Sigmoid(), _sigmoid, lambda x: 1e-6),
        "tanh": (O.Tanh(), np.tanh, lambda x: 1e-6),
    }


_NAMES = list(_ops(np.random.default_rng(0)))


@pytest.mark.parametrize("backend", ["ukernel", "codegen"])
@pytest.mark.parametrize("name", _NAMES)
def test_each_op_against_float64(name, backend):
    rng, a, b = _data(1)
    scale_a = 4.0  # spread the pre-activation values over the interesting range
    a = (a * scale_a).astype(np.float32)
    op, ref, extra = _ops(rng)[name]
    x = a.astype(np.float64) @ b.astype(np.float64)
    out = ukernels.matmul(a, b, epilogue=[op], backend=backend)
    assert out.dtype == np.float32 and out.shape == (M, N)
    tol = 1.13 * k_scaled_tol(a, b) + 1.13 * np.abs(x) * 2**-23 + extra(x) + 1e-30
    err = np.abs(out - ref(x))
    assert (err <= tol).all(), f"{name}: max err {err.max():.3g}, at tol {tol[np.argmax(err - tol)]:.3g}"


def test_tanh_is_accurate_relative_near_zero():
    x = np.array([[1e-6, -3e-5, 2e-3, 0.25, -0.29, 0.31, 3.0, -9.0, 20.0]], np.float32)
    out = ukernels.matmul(x, np.eye(9, dtype=np.float32), epilogue=[O.Tanh()])  # x @ I = x exactly
    ref = np.tanh(x.astype(np.float64))
    assert (np.abs(out - ref) <= 2e-7 * np.abs(ref) + 1e-9).all()


@pytest.mark.parametrize("backend", ["ukernel", "codegen"])
def test_chains(backend):
    rng, a, b = _data(2)
    col = rng.standard_normal(N).astype(np.float32)
    res = rng.standard_normal((M, N)).astype(np.float32)
    x = a.astype(np.float64) @ b.astype(np.float64)
    chains = [
        ([O.BiasAdd(col), O.Gelu(), O.Residual(res)], 0.5 * (x + col) * (1 + _verf((x + col) / math.sqrt(2))) + res),
        ([O.Scale(2.0), O.Silu(), O.Clamp(-1, 1)], np.clip(2 * x * _sigmoid(2 * x), -1, 1)),
        ([O.Residual(res), O.Relu6(), O.Scale(0.5), O.Tanh()], np.tanh(0.5 * np.clip(x + res, 0, 6))),
    ]
    for ops, ref in chains:
        out = ukernels.matmul(a, b, epilogue=ops, backend=backend)
        tol = 2.5 * k_scaled_tol(a, b) + 1e-5 * (np.abs(ref) + 1)
        assert (np.abs(out - ref) <= tol).all(), [type(o).__name__ for o in ops]


def _requant_ref(acc_f32, scale, zp, dtype):
    info = np.iinfo(dtype)
    v = np.rint(acc_f32 * np.asarray(scale, np.float32)) + np.float32(zp)
    v = np.where(np.isnan(v), np.float32(zp), v)
    return np.clip(v, info.min, info.max).astype(dtype)


@pytest.mark.parametrize("backend", ["ukernel", "codegen"])
@pytest.mark.parametrize("dtype,zp", [(np.int8, 0), (np.int8, -5), (np.uint8, 128), (np.uint8, 3)])
@pytest.mark.parametrize("per_channel", [False, True])
def test_requantize_bit_exact_int8(isa, backend, dtype, zp, per_channel):
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    bias = rng.integers(-20000, 20000, N).astype(np.int32)
    scale = (rng.uniform(1e-3, 6e-3, N).astype(np.float32) if per_channel else np.float32(3.1e-3))
    acc = a.astype(np.int32) @ b.astype(np.int32) + bias
    out = ukernels.matmul(a, b, bias=bias, epilogue=[O.Requantize(scale, zp, dtype)], backend=backend)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, _requant_ref(acc.astype(np.float32), scale, zp, dtype))
    # saturation is exercised: some values hit both ends
    info = np.iinfo(dtype)
    assert (out == info.min).any() or (out == info.max).any()


def test_requantize_ties_round_half_to_even():
    # acc values k + 0.5 after scaling: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0, -1.5 -> -2
    a = np.array([[1], [3], [5], [-1], [-3]], np.int8)
    b = np.array([[1]], np.int8)
    out = ukernels.matmul(a, b, epilogue=[O.Requantize(0.5, 0, np.int8)])
    np.testing.assert_array_equal(out.ravel(), [0, 2, 2, 0, -2])


def test_int32_ops_stay_integer_and_cast():
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    res = rng.integers(-1000, 1000, (M, N)).astype(np.int32)
    acc = a.astype(np.int32) @ b.astype(np.int32)
    out = ukernels.matmul(a, b, epilogue=[O.Residual(res), O.Clamp(-5000, 7000), O.Relu()])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.maximum(np.clip(acc + res, -5000, 7000), 0))
    as_float = ukernels.matmul(a, b, out_dtype=np.float32)
    np.testing.assert_array_equal(as_float, acc.astype(np.float32))
    scaled = ukernels.matmul(a, b, epilogue=[O.Scale(0.001)])
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, acc.astype(np.float32) * np.float32(0.001), rtol=1e-6)


def test_bad_operands_and_sequences():
    _, a, b = _data(4)
    cases = [
        ([O.BiasAdd(np.ones(N + 1, np.float32))], ValueError, r"1-D of length N=70"),
        ([O.BiasAdd(np.ones(M, np.float32), axis="depth")], ValueError, r"axis must be 'column' or 'row'"),
        ([O.BiasAdd(np.ones(N))], TypeError, r"dtype float32"),
        ([O.Residual(np.ones((M, N + 1), np.float32))], ValueError, r"shape \(37, 70\)"),
        ([O.Scale(np.ones(3, np.float32))], ValueError, r"scalar or 1-D of length N=70"),
        ([O.Scale(float("nan"))], ValueError, r"finite"),
        ([O.Clamp(1.0, 0.0)], ValueError, r"lo must be <= hi"),
        ([O.Gelu("fast")], ValueError, r"approximate must be 'none' or 'tanh'"),
        ([O.Requantize(0.1, 300, np.int8)], ValueError, r"zero_point must be an int in \[-128, 127\]"),
        ([O.Requantize(0.1, 0, np.int16)], TypeError, r"np.int8 or np.uint8"),
        ([O.Requantize(0.1, 0, np.int8), O.Relu()], ValueError, r"Requantize must be the last"),
        (["relu"], TypeError, r"must be an op from ukernels.ops"),
    ]
    for ops, exc, match in cases:
        with pytest.raises(exc, match=match):
            ukernels.matmul(a, b, epilogue=ops)
    with pytest.raises(TypeError, match=r"epilogue must be a list or tuple"):
        ukernels.matmul(a, b, epilogue=O.Relu())
    with pytest.raises(TypeError, match=r"add Requantize"):
        ukernels.matmul(a, b, out_dtype=np.int8)
    with pytest.raises(TypeError, match=r"out_dtype=float64 is not available"):
        ukernels.matmul(a, b, out_dtype=np.float64)
    with pytest.raises(TypeError, match=r"out_dtype=float16 is not available"):  # int32 results: int32/float32
        ukernels.matmul(np.ones((3, 4), np.int8), np.ones((4, 5), np.int8), out_dtype=np.float16)
    i8 = np.ones((3, 4), np.int8)
    with pytest.raises(ValueError, match=r"must be an integer within"):
        ukernels.matmul(i8, i8.T, epilogue=[O.Clamp(0.5, 3)])
    with pytest.raises(TypeError, match=r"int32 while the int8 accumulator is int32"):
        ukernels.matmul(i8, i8.T, epilogue=[O.BiasAdd(np.ones(3, np.float32))])


def test_no_full_size_intermediate_is_allocated():
    rng = np.random.default_rng(5)
    Mb, Nb, Kb = 512, 1024, 256
    a = rng.standard_normal((Mb, Kb)).astype(np.float32)
    b = rng.standard_normal((Kb, Nb)).astype(np.float32)
    res = rng.standard_normal((Mb, Nb)).astype(np.float32)
    col = rng.standard_normal(Nb).astype(np.float32)
    ops = [O.BiasAdd(col), O.Gelu(), O.Residual(res), O.Scale(0.5), O.Tanh()]
    ukernels.matmul(a, b, epilogue=ops)  # warm: workspace buffers exist now
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = ukernels.matmul(a, b, epilogue=ops)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    out_bytes = out.nbytes
    # the output and small bookkeeping only: no second M x N buffer (2 MiB here)
    assert peak < out_bytes + out_bytes // 4, (peak, out_bytes)
