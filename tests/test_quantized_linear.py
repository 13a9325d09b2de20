"""Weight-quantized Linear (weight_dtype="int8" | "int4" with per-channel or per-group
scales, "bf16" | "f16" | "f32"; Linear.from_quantized): every weight dtype x group size x
M x backend against a numpy reference of the same quantization (the integer part exact,
the float part within float32 rounding); the stated accuracy against the float64 product
on normal data and on outlier channels; save/load/pickle; clear errors on bad input."""
import io
import pickle

import ml_dtypes
import numpy as np
import pytest

import ukernels
from ukernels import linear_file

GROUPS = [None, 32, 128]


def ref_quantize(w_nk, qmax, group):
    """Independent reference of the documented weight quantization (ukernels/quantize.py)."""
    N, K = w_nk.shape
    g = group or K
    blocks = w_nk.astype(np.float32).reshape(N, K // g, g)
    s = (np.abs(blocks).max(axis=2) / np.float32(qmax)).astype(np.float32)
    q = np.clip(np.rint(blocks / np.where(s > 0, s, 1)[:, :, None]), -qmax, qmax).astype(np.int64)
    return q.reshape(N, K), s  # s: (N, G)


def ref_forward(x, q, s, z=None):
    """sx[i] * sum_g s[j, g] * (dot_g(qx_i, q_j) - z[j, g] * sum_g qx_i), the dots exact (int64)."""
    x = x.astype(np.float32)
    sx = (np.abs(x).max(axis=1) / np.float32(127)).astype(np.float32)
    qx = np.clip(np.rint(x / np.where(sx > 0, sx, 1)[:, None]), -127, 127).astype(np.int64)
    N, K = q.shape
    G = s.shape[1]
    g = K // G
    dots = np.einsum("mgk,ngk->mng", qx.reshape(-1, G, g), q.reshape(N, G, g))  # exact int64
    if z is not None:
        dots = dots - z[None].astype(np.int64) * qx.reshape(-1, G, g).sum(axis=2)[:, None, :]
    return sx.astype(np.float64)[:, None] * np.einsum("mng,ng->mn", dots.astype(np.float64), s.astype(np.float64))


def _data(M, N, K, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, K), dtype=np.float32), rng.standard_normal((M, K), dtype=np.float32)


@pytest.mark.parametrize("backend", ["ukernel", "auto"])
@pytest.mark.parametrize("M", [1, 3, 16, 100])
@pytest.mark.parametrize("group", GROUPS, ids=lambda g: f"g{g}")
@pytest.mark.parametrize("weight_dtype", ["int8", "int4"])
def test_quantized_linear_matches_reference_of_same_quantization(isa, weight_dtype, group, M, backend):
    N, K = 37, 256
    w, x = _data(M, N, K, seed=M + (group or 0))
    lin = ukernels.Linear(w, weight_dtype=weight_dtype, group_size=group, backend=backend)
    q, s = ref_quantize(w, 127 if weight_dtype == "int8" else 7, group)
    stored = lin._weight.astype(np.int64)
    np.testing.assert_array_equal(stored, q)  # the quantized weight, bit for bit
    np.testing.assert_array_equal(lin._quant.scales.reshape(N, -1), s)
    want = ref_forward(x, q, s)
    got = lin(x)
    assert got.dtype == np.float32 and got.shape == (M, N)
    # float part: f32 conversions and the per-group sum in f32 (rounding ~ G * 2^-24 relative)
    bound = ref_forward(np.abs(x), np.abs(q), s) * 4e-6 + 1e-30
    assert (np.abs(got - want) <= bound).all(), np.abs(got - want).max()


@pytest.mark.parametrize("M", [1, 5])
@pytest.mark.parametrize("group", GROUPS, ids=lambda g: f"g{g}")
@pytest.mark.parametrize("bits", [8, 4])
def test_integer_part_is_exact(isa, bits, group, M):
    """Scales of 1 and x rows whose max |x| is 127 (so x quantizes to itself): the output is
    the exact integer product, full range of both operands (-127..127 x -128..127 / -8..7);
    one row (the one-row group variants: 37 columns are 4 panels at once + 1) and several."""
    rng = np.random.default_rng(bits)
    N, K = 37, 512
    lo, hi = (-128, 127) if bits == 8 else (-8, 7)
    q = rng.integers(lo, hi + 1, (N, K)).astype(np.int8)
    q[0] = lo  # extreme rows
    x = rng.integers(-127, 128, (M, K)).astype(np.float32)
    x[:, 0] = 127
    x[-1] = -127
    x[-1, 0] = 127
    G = 1 if group is None else K // group
    scales = np.ones((N,) if group is None else (N, G), np.float32)
    lin = ukernels.Linear.from_quantized(q, scales, group_size=group, bits=bits, backend="ukernel")
    want = x.astype(np.int64) @ q.astype(np.int64).T  # |sums| < 2^24: exact in f32
    np.testing.assert_array_equal(lin(x), want.astype(np.float32))


@pytest.mark.parametrize("layout", ["nk", "kn"])
def test_from_quantized_unsigned_with_zero_points_gptq_style(layout):
    rng = np.random.default_rng(5)
    N, K, g = 48, 256, 32
    w, x = _data(4, N, K, 6)
    G = K // g
    wg = w.reshape(N, G, g)
    mn, mx = wg.min(axis=2), wg.max(axis=2)
    s = ((mx - mn) / 15).astype(np.float32)
    z = np.rint(-mn / s).astype(np.int32)
    q = np.clip(np.rint(wg / s[:, :, None]) + z[:, :, None], 0, 15).astype(np.uint8).reshape(N, K)
    args = (q, s, z) if layout == "nk" else (q.T, s.T, z.T)
    lin = ukernels.Linear.from_quantized(*args, group_size=g, bits=4, layout=layout)
    want = ref_forward(x, q.astype(np.int64) - 8, s, z - 8)
    assert np.abs(lin(x) - want).max() <= 1e-4 * np.abs(want).max()
    del rng


def test_from_quantized_q8_0_and_q4_0_blocks():
    """llama.cpp Q8_0 (d * q, q int8) and Q4_0 (d * (q - 8), q in [0, 15]) blocks of 32."""
    rng = np.random.default_rng(7)
    N, K = 16, 128
    d = rng.uniform(0.01, 0.1, (N, K // 32)).astype(np.float16)
    q8 = rng.integers(-127, 128, (N, K)).astype(np.int8)
    x = rng.standard_normal((2, K), dtype=np.float32)
    lin8 = ukernels.Linear.from_quantized(q8, d.astype(np.float32), group_size=32, bits=8)
    np.testing.assert_allclose(lin8(x), ref_forward(x, q8.astype(np.int64), d.astype(np.float32)), rtol=1e-5,
                               atol=1e-5)
    q4 = rng.integers(0, 16, (N, K)).astype(np.uint8)
    lin4 = ukernels.Linear.from_quantized(q4.astype(np.int8) - 8, d.astype(np.float32), group_size=32, bits=4)
    np.testing.assert_allclose(lin4(x), ref_forward(x, q4.astype(np.int64) - 8, d.astype(np.float32)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weight_dtype", ["bf16", "f16", "f32"])
def test_float_weight_dtypes(isa, weight_dtype):
    w, x = _data(3, 40, 96, 8)
    dt = {"bf16": ml_dtypes.bfloat16, "f16": np.float16, "f32": np.float32}[weight_dtype]
    lin = ukernels.Linear(w, weight_dtype=weight_dtype, bias=np.ones(40, np.float32), activation="relu")
    want = np.maximum(x.astype(dt).astype(np.float64) @ w.astype(dt).astype(np.float64).T + 1, 0)
    np.testing.assert_allclose(lin(x), want, rtol=1e-5, atol=1e-4)
    assert lin._weight.dtype == np.dtype(dt)


@pytest.mark.parametrize("M", [1, 2, 7, 33])
def test_bf16_weight_rounds_float32_x_while_packing(isa, M):
    """A bf16 weight with a float32 x: on a CPU with bf16 dot products x is rounded to bf16 while
    it is packed (no converted copy; the call replays), else converted first. Either way the
    result equals the call on x.astype(bfloat16) bit for bit, replayed calls included, with
    NaN/Inf and ties to even in x."""
    w, x = _data(5, 70, 130, M)
    x[0, :4] = [np.nan, np.inf, -np.inf, 1 + 2.0 ** -8]  # a tie: rounds to 1.0 (even)
    lin = ukernels.Linear(w, weight_dtype="bf16", bias=np.ones(70, np.float32), activation="gelu")
    want = lin(x.astype(ml_dtypes.bfloat16))
    for _ in range(3):
        np.testing.assert_array_equal(lin(x), want)
    from ukernels.abi import BF16BF16F32
    from ukernels.runtime.plan import native_16bit_float_dot
    if native_16bit_float_dot(BF16BF16F32, isa) and M <= 8:
        assert lin._replays, "the narrowing call should have been recorded for replay"


# Stated accuracy (README "Weight-quantized Linear"): relative Frobenius error against the
# float64 product (normal data, outlier data); measured here (normal / outliers): int8
# 0.011 / 0.067, int8 g32 0.009 / 0.067, int4 g32 0.098 / 0.137, int4 g128 0.119 / 0.159,
# bf16 0.0024 / 0.0031, f16 0.00029 / 0.00032. With outlier input features the per-row int8
# quantization of x dominates.
ACCURACY = {("int8", None): (0.016, 0.09), ("int8", 32): (0.014, 0.09), ("int4", 32): (0.13, 0.18),
            ("int4", 128): (0.16, 0.21), ("bf16", None): (0.004, 0.005), ("f16", None): (5e-4, 5e-4)}


@pytest.mark.parametrize("data", ["normal", "outliers"])
@pytest.mark.parametrize("kind", list(ACCURACY), ids=lambda k: f"{k[0]}-g{k[1]}")
def test_stated_accuracy_vs_float64(kind, data):
    rng = np.random.default_rng(11)
    N, K, M = 256, 1024, 8
    w = rng.standard_normal((N, K), dtype=np.float32)
    x = rng.standard_normal((M, K), dtype=np.float32)
    if data == "outliers":
        w[rng.choice(N, 8, replace=False)] *= 50  # outlier output channels
        x[:, rng.choice(K, 8, replace=False)] *= 20  # outlier input features
    ref = x.astype(np.float64) @ w.T.astype(np.float64)
    y = ukernels.Linear(w, weight_dtype=kind[0], group_size=kind[1])(x)
    rel = np.linalg.norm(y - ref) / np.linalg.norm(ref)
    assert rel <= ACCURACY[kind][data == "outliers"], rel


@pytest.mark.parametrize("M", [1, 5, 40])
@pytest.mark.parametrize("weight_dtype", ["int8", "int4"])
def test_quantized_on_generated_kernels(isa, weight_dtype, M):
    w, x = _data(M, 40, 128, 15)
    a = ukernels.Linear(w, weight_dtype=weight_dtype, backend="codegen")
    b = ukernels.Linear(w, weight_dtype=weight_dtype, backend="ukernel")
    np.testing.assert_array_equal(a(x), b(x))  # integer products exact on both; same float epilogue
    # per-group: the generated group variant; the scale multiply may be fused (FMA) on one side
    a = ukernels.Linear(w, weight_dtype=weight_dtype, group_size=32, backend="codegen")
    b = ukernels.Linear(w, weight_dtype=weight_dtype, group_size=32, backend="ukernel")
    q, s = ref_quantize(w, 127 if weight_dtype == "int8" else 7, 32)
    bound = ref_forward(np.abs(x), np.abs(q), s) * 4e-6 + 1e-30
    assert (np.abs(a(x) - b(x)) <= bound).all()
    assert (np.abs(a(x) - ref_forward(x, q, s)) <= bound).all()


def test_leading_dimensions_and_per_call_ops():
    w, x = _data(6, 24, 64, 9)
    lin = ukernels.Linear(w, weight_dtype="int8", group_size=32)
    x3 = x.reshape(2, 3, 64)
    r = np.ones((6, 24), np.float32)
    got = lin(x3.reshape(6, 64), epilogue=[ukernels.ops.Residual(r)])
    np.testing.assert_allclose(got, lin(x3).reshape(6, 24) + 1, rtol=1e-6, atol=1e-6)
    assert lin(x3).shape == (2, 3, 24)


@pytest.mark.parametrize("kind", [("int8", None, "nk"), ("int4", 32, "kn"), ("int8", 128, "nk"), ("bf16", None, "kn")])
def test_save_load_and_pickle_roundtrip(tmp_path, kind):
    wd, g, layout = kind
    w, x = _data(3, 40, 256, 10)
    W = w if layout == "nk" else w.T.copy()
    lin = ukernels.Linear(W, weight_dtype=wd, group_size=g, layout=layout, bias=np.ones(40, np.float32),
                          activation="gelu")
    y = lin(x)
    lin.save(tmp_path / "q.ukl")
    for other in (ukernels.Linear.load(tmp_path / "q.ukl"), pickle.loads(pickle.dumps(lin))):
        np.testing.assert_array_equal(other(x), y)
        assert repr(other) == repr(lin)


def test_version_2_files_still_load():
    w, x = _data(2, 8, 16, 12)
    lin = ukernels.Linear(w, bias=np.zeros(8, np.float32))
    blob = linear_file.serialize(lin)
    import hashlib
    import json
    prefix = linear_file._PREFIX
    _, _, hlen = prefix.unpack(blob[:prefix.size])
    start = prefix.size + 32
    header = json.loads(blob[start:start + hlen])
    del header["weight_dtype"], header["quant"]
    header["version"] = 2
    h2 = json.dumps(header).encode()
    v2 = prefix.pack(linear_file.MAGIC, 2, len(h2)) + hashlib.sha256(h2).digest() + h2 + blob[start + hlen:]
    np.testing.assert_array_equal(ukernels.Linear.load(io.BytesIO(v2))(x), lin(x))


def test_damaged_quant_header_is_a_clear_error():
    w, _ = _data(1, 8, 64, 13)
    blob = linear_file.serialize(ukernels.Linear(w, weight_dtype="int4", group_size=32))
    import hashlib
    import json
    prefix = linear_file._PREFIX
    _, _, hlen = prefix.unpack(blob[:prefix.size])
    start = prefix.size + 32
    for damage in ({"bits": 3}, {"group_size": 33}, {"scales": None}, {"extra": 1}):
        header = json.loads(blob[start:start + hlen])
        header["quant"].update(damage)
        h = json.dumps(header).encode()
        bad = prefix.pack(linear_file.MAGIC, 3, len(h)) + hashlib.sha256(h).digest() + h + blob[start + hlen:]
        with pytest.raises(ValueError):
            ukernels.Linear.load(io.BytesIO(bad))


def test_clear_errors():
    w, x = _data(1, 8, 64, 14)
    with pytest.raises(ValueError, match="group_size must be None .* or one of"):
        ukernels.Linear(w, weight_dtype="int4", group_size=33)
    with pytest.raises(ValueError, match="does not divide in_features=64"):
        ukernels.Linear(w, weight_dtype="int4", group_size=128)
    with pytest.raises(ValueError, match="group_size applies to"):
        ukernels.Linear(w, weight_dtype="bf16", group_size=32)
    with pytest.raises(ValueError, match="weight_dtype must be one of"):
        ukernels.Linear(w, weight_dtype="int3")
    with pytest.raises(TypeError, match="from_quantized"):
        ukernels.Linear(w.astype(np.int8), weight_dtype="int8")
    with pytest.raises(ValueError, match="NaN or Inf"):
        ukernels.Linear(np.full((2, 32), np.nan, np.float32), weight_dtype="int8")
    with pytest.raises(ValueError, match=r"scales must have shape \(8, 2\)"):
        ukernels.Linear.from_quantized(np.zeros((8, 64), np.int8), np.ones((8, 3), np.float32), group_size=32)
    with pytest.raises(ValueError, match=r"scales must have shape \(8,\)"):
        ukernels.Linear.from_quantized(np.zeros((8, 64), np.int8), np.ones((8, 2), np.float32))
    with pytest.raises(ValueError, match="values must lie in"):
        ukernels.Linear.from_quantized(np.full((8, 64), 9, np.int8), np.ones(8, np.float32), bits=4)
    with pytest.raises(ValueError, match="needs zero_points"):
        ukernels.Linear.from_quantized(np.zeros((8, 64), np.uint8), np.ones(8, np.float32), bits=4)
    with pytest.raises(TypeError, match="must be floating point"):
        ukernels.Linear(w, weight_dtype="int8")(x.astype(np.int8))
    with pytest.raises(ValueError, match="NaN or Inf"):
        ukernels.Linear(w, weight_dtype="int8")(np.full((1, 64), np.inf, np.float32))


def test_read_only_weight_bias_and_scales():
    w, x = _data(2, 8, 64, 16)
    bias = np.ones(8, np.float32)
    lin = ukernels.Linear(w, bias=bias)
    np.testing.assert_array_equal(lin.weight, w)
    np.testing.assert_array_equal(lin.bias, bias)
    assert lin.scales is None
    for arr in (lin.weight, lin.bias):
        with pytest.raises(ValueError):
            arr[...] = 0
    q = ukernels.Linear(w, weight_dtype="int8")
    assert q.weight.dtype == np.int8 and q.scales.shape == (8,) and q.bias is None
    y = lin(x)
    bias[:] = 5  # the caller's arrays may change; the prepared Linear does not
    w[:] = 0
    np.testing.assert_array_equal(lin(x), y)
    s = np.full(8, 2.0, np.float32)
    scaled = ukernels.Linear(w + 1, epilogue=[ukernels.ops.Scale(s)])
    y = scaled(x)
    s[:] = 0
    np.testing.assert_array_equal(scaled(x), y)


def test_more_construction_errors():
    w, _ = _data(1, 8, 64, 17)
    q = np.zeros((8, 64), np.int8)
    with pytest.raises(ValueError, match="bits must be 8 or 4"):
        ukernels.Linear.from_quantized(q, np.ones(8, np.float32), bits=2)
    with pytest.raises(ValueError, match="zero_points out of range"):
        ukernels.Linear.from_quantized(q, np.ones(8, np.float32), np.full(8, 1 << 20), bits=8)
    with pytest.raises(ValueError, match="scales must be finite"):
        ukernels.Linear.from_quantized(q, np.full(8, np.inf, np.float32))
    with pytest.raises(TypeError, match="scales must be floating"):
        ukernels.Linear.from_quantized(q, np.ones(8, np.int32))
    with pytest.raises(TypeError, match="qweight must hold integers"):
        ukernels.Linear.from_quantized(w, np.ones(8, np.float32))
    with pytest.raises(ValueError, match="weight_dtype or precision, not both"):
        ukernels.Linear(w, weight_dtype="bf16", precision="bf16")
    with pytest.raises(ValueError, match="group_size must be None"):
        ukernels.Linear(w, weight_dtype="int8", group_size=True)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (17, 4096), (64, 33), (5, 0), (0, 9)])
def test_activation_quantizer_matches_numpy_definition(shape):
    """quantize_rows (C) equals the numpy definition element for element, on random rows, rows
    with exact .5 ties after scaling, an all-zero row, extreme magnitudes and strided views; its
    result never holds -128 (what UK_FLAG_LHS_S8_SYMMETRIC promises the tiles)."""
    from ukernels.quantize import quantize_rows, quantize_rows_reference
    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    M, K = shape
    x = rng.standard_normal((M, K)).astype(np.float32) * np.float32(3.0)
    if M >= 3 and K >= 2:
        x[0] = 0.0  # scale 0
        x[1] = np.arange(K, dtype=np.float32) - K / 2  # ties: 127 * (j - K/2) / max, some exact .5
        x[1, 0] = 127.0
        x[2] *= np.float32(1e30)  # huge, finite
        x[-1] *= np.float32(1e-38)  # subnormal range
    for arr in (x, np.asfortranarray(x), np.hstack([x, x])[:, ::2] if K else x):
        q, s = quantize_rows(arr)
        qr, sr = quantize_rows_reference(np.ascontiguousarray(arr))
        np.testing.assert_array_equal(s, sr)
        np.testing.assert_array_equal(q, qr)
        assert q.dtype == np.int8 and (q.size == 0 or q.min() >= -127)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_activation_quantizer_rejects_nonfinite(bad):
    from ukernels.quantize import quantize_rows
    x = np.ones((3, 40), np.float32)
    x[2, 17] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        quantize_rows(x)
    lin = ukernels.Linear(np.ones((8, 40), np.float32), weight_dtype="int8")
    with pytest.raises(ValueError, match="NaN or Inf"):
        lin(x)
