"""ukernels.Linear: prepacked weights, both layouts, any number of rows, per-call
ops, both backends, save/load (and its validation), concurrency, errors."""
import math
import os

import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from conftest import k_scaled_tol, run_in_threads, small_ints

_verf = np.vectorize(math.erf, otypes=[np.float64])


@pytest.mark.parametrize("backend", ["auto", "ukernel", "codegen"])
@pytest.mark.parametrize("layout", ["nk", "kn"])
@pytest.mark.parametrize("rows", [1, 5, 17, 130])
def test_linear_exact_on_small_integers(isa, backend, layout, rows):
    rng = np.random.default_rng(rows)
    K, N = 96, 70
    w_kn = small_ints(rng, (K, N), np.float32)
    bias = small_ints(rng, (N,), np.float32)
    weight = np.ascontiguousarray(w_kn.T) if layout == "nk" else w_kn
    lin = ukernels.Linear(weight, bias=bias, activation="relu", layout=layout, backend=backend)
    x = small_ints(rng, (rows, K), np.float32)
    np.testing.assert_array_equal(lin(x), np.maximum(x @ w_kn + bias, 0))
    x3 = small_ints(rng, (2, 3, K), np.float32)  # leading dims
    np.testing.assert_array_equal(lin(x3), np.maximum(x3 @ w_kn + bias, 0))


def test_linear_random_floats_and_per_call_residual():
    rng = np.random.default_rng(1)
    K, N, M = 300, 200, 33
    w = rng.standard_normal((N, K)).astype(np.float32)  # torch layout
    b = rng.standard_normal(N).astype(np.float32)
    lin = ukernels.Linear(w, bias=b, epilogue=[O.Gelu("tanh")])
    x = rng.standard_normal((M, K)).astype(np.float32)
    r = rng.standard_normal((M, N)).astype(np.float32)
    pre = x.astype(np.float64) @ w.T.astype(np.float64) + b
    ref = 0.5 * pre * (1 + np.tanh(math.sqrt(2 / math.pi) * (pre + 0.044715 * pre**3))) + r
    out = lin(x, epilogue=[O.Residual(r)])
    tol = 1.13 * k_scaled_tol(x, w.T) + 1e-6 * (np.abs(pre) + 1)
    assert (np.abs(out - ref) <= tol).all()


@pytest.mark.parametrize("dtype,zp", [(np.int8, -3), (np.uint8, 128)])
def test_int8_linear_requantize_bit_exact(dtype, zp):
    rng = np.random.default_rng(2)
    K, N, M = 160, 48, 21
    w = rng.integers(-128, 128, (N, K), dtype=np.int8)
    bias = rng.integers(-5000, 5000, N).astype(np.int32)
    scale = rng.uniform(1e-3, 5e-3, N).astype(np.float32)
    lin = ukernels.Linear(w, bias=bias, epilogue=[O.Requantize(scale, zp, dtype)])
    x = rng.integers(-128, 128, (M, K), dtype=np.int8)
    acc = (x.astype(np.int32) @ w.T.astype(np.int32) + bias).astype(np.float32)
    info = np.iinfo(dtype)
    ref = np.clip(np.rint(acc * scale) + np.float32(zp), info.min, info.max).astype(dtype)
    np.testing.assert_array_equal(lin(x), ref)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((64, 40)).astype(np.float32)
    lin = ukernels.Linear(w, bias=rng.standard_normal(64).astype(np.float32), activation="gelu",
                          epilogue=[O.Scale(rng.uniform(0.5, 1.5, 64).astype(np.float32)), O.Clamp(-2.0, None)])
    path = tmp_path / "layer.ukl"
    lin.save(path)
    back = ukernels.Linear.load(path)
    x = rng.standard_normal((9, 40)).astype(np.float32)
    np.testing.assert_array_equal(back(x), lin(x))
    assert back.in_features == 40 and back.out_features == 64 and back.packed_nbytes == lin.packed_nbytes
    w8 = rng.integers(-128, 128, (16, 24), dtype=np.int8)
    l8 = ukernels.Linear(w8, layout="nk", epilogue=[O.Requantize(0.01, 5, np.uint8)])
    l8.save(tmp_path / "q.ukl")
    x8 = rng.integers(-128, 128, (4, 24), dtype=np.int8)
    np.testing.assert_array_equal(ukernels.Linear.load(tmp_path / "q.ukl")(x8), l8(x8))


def test_load_rejects_foreign_truncated_and_corrupt_files(tmp_path):
    lin = ukernels.Linear(np.ones((8, 8), np.float32))
    good = tmp_path / "good.ukl"
    lin.save(good)
    data = good.read_bytes()
    cases = {
        "foreign.ukl": (b"PK\x03\x04 not ours" + data[20:], r"not a ukernels Linear file \(bad magic"),
        "short.ukl": (data[:5], r"too short"),
        "truncated.ukl": (data[:-10], r"truncated"),
        "header.ukl": (data[:30], r"truncated|malformed"),
        "corrupt.ukl": (data[:-1] + bytes([data[-1] ^ 0xFF]), r"corrupt \(sha256 mismatch\)"),
        "version.ukl": (data[:8] + (99).to_bytes(4, "little") + data[12:], r"unsupported .* version 99"),
    }
    for name, (blob, match) in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(ValueError, match=match):
            ukernels.Linear.load(p)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_weight_is_packed_once_and_repacked_per_isa(monkeypatch):
    rng = np.random.default_rng(4)
    w = small_ints(rng, (50, 30), np.float32)
    lin = ukernels.Linear(w)
    first = dict(lin._packs)
    x = small_ints(rng, (7, 30), np.float32)
    for _ in range(3):
        np.testing.assert_array_equal(lin(x), x @ w.T)
    assert lin._packs == first  # calls never repack
    monkeypatch.setenv("UKERNELS_ISA", "generic")  # 8-wide tiles: packed again, once, for this ISA
    from ukernels.linear import _packed_tile
    generic_tile = _packed_tile(lin._types, "generic")
    for _ in range(2):
        np.testing.assert_array_equal(lin(x), x @ w.T)
    assert generic_tile in lin._packs  # packed for the generic tile ...
    assert set(lin._packs) == set(first) | {generic_tile}  # ... once, the first packing kept
    assert len(lin._packs) == len(first) + (generic_tile not in first)


def test_concurrent_calls_share_one_linear():
    rng = np.random.default_rng(5)
    w = small_ints(rng, (120, 80), np.float32)
    lin = ukernels.Linear(w, activation="relu")
    xs = [small_ints(rng, (3 + 11 * i, 80), np.float32) for i in range(8)]

    def work(i):
        for _ in range(15):
            np.testing.assert_array_equal(lin(xs[i]), np.maximum(xs[i] @ w.T, 0))

    run_in_threads(work, 8)


def test_linear_errors():
    w = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"layout must be 'nk'"):
        ukernels.Linear(w, layout="mn")
    with pytest.raises(ValueError, match=r"weight must be 2-D"):
        ukernels.Linear(np.ones(3, np.float32))
    with pytest.raises(TypeError, match=r"unsupported dtype float64"):
        ukernels.Linear(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"bias must be 1-D of length N=4"):
        ukernels.Linear(w, bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"depends on the number of rows"):
        ukernels.Linear(w, epilogue=[O.Residual(np.ones((2, 4), np.float32))])
    lin = ukernels.Linear(w)
    with pytest.raises(ValueError, match=r"in_features=3"):
        lin(np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match=r"must have dtype float32"):
        lin(np.ones((2, 3), np.int8))
    with pytest.raises(ValueError, match=r"backend must be one of"):
        ukernels.Linear(w, backend="gpu")
