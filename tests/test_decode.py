"""The one-call path of a weight-quantized Linear (runtime/decode.py, csrc/uk_qlinear.c).

Against the general path bit for bit (the same quantized x, weights, scales and ops: every
weight type, M = 1..64 (decode rows and 8-row prompt blocks), N and K off the tile grids,
epilogues, every ISA level the host runs),
exact on small integers at the int16/int32 range limits, threads, errors."""
import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from ukernels.runtime import decode, threads

KINDS = [("int8", None), ("int8", 32), ("int4", None), ("int4", 32), ("int4", 128)]


def general(lin: "ukernels.Linear", x: np.ndarray) -> np.ndarray:
    """The same layer through the general dispatch (the decode path switched off)."""
    lin._decode_ok = False
    try:
        return lin(x)
    finally:
        lin._decode_ok = True


def decoded(lin: "ukernels.Linear", x: np.ndarray) -> np.ndarray:
    out = lin(x)
    assert lin._decode is not None, "the call did not take the decode path"
    return out


@pytest.mark.parametrize("weight_dtype,group", KINDS)
@pytest.mark.parametrize("N,K", [(1, 256), (17, 128), (64, 256), (65, 384), (130, 512)])
def test_equals_general_path(isa, weight_dtype, group, N, K):
    rng = np.random.default_rng(N * 1000 + K)
    w = rng.standard_normal((N, K)).astype(np.float32)
    lin = ukernels.Linear(w, weight_dtype=weight_dtype, group_size=group)
    for M in (1, 2, 3, 4, 5, 8, 16, 19, 37, 64):
        x = rng.standard_normal((M, K)).astype(np.float32)
        np.testing.assert_array_equal(decoded(lin, x), general(lin, x), err_msg=f"M={M}")


@pytest.mark.parametrize("weight_dtype", ["int8", "int4"])
@pytest.mark.parametrize("K", [1, 3, 5, 37, 100, 255])
def test_per_channel_k_off_the_step(isa, weight_dtype, K):
    """Per-channel layers take any K (padded with zero weights to the 4 or 8 K step)."""
    rng = np.random.default_rng(K)
    w = rng.standard_normal((70, K)).astype(np.float32)
    lin = ukernels.Linear(w, weight_dtype=weight_dtype)
    for M in (1, 3, 4, 6, 9, 21):
        x = rng.standard_normal((M, K)).astype(np.float32)
        np.testing.assert_array_equal(decoded(lin, x), general(lin, x))


@pytest.mark.parametrize("weight_dtype,group", KINDS)
def test_epilogues_equal_general_path(isa, weight_dtype, group):
    rng = np.random.default_rng(7)
    N, K = 100, 256
    w = rng.standard_normal((N, K)).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    for kw in ({"bias": bias, "activation": "gelu"}, {"bias": bias, "activation": "relu"},
               {"epilogue": [O.Silu()]}, {"bias": bias, "epilogue": [O.Gelu(approximate="tanh"), O.Scale(0.5)]},
               {"epilogue": [O.Clamp(-0.5, 0.5)]}):
        lin = ukernels.Linear(w, weight_dtype=weight_dtype, group_size=group, **kw)
        for M in (1, 4, 9, 24):
            x = rng.standard_normal((M, K)).astype(np.float32)
            np.testing.assert_array_equal(decoded(lin, x), general(lin, x), err_msg=str(kw))


def _exact_reference(q: np.ndarray, s: np.ndarray, group, x: np.ndarray) -> np.ndarray:
    """The documented float order on exact integer dots (csrc/uk_qlinear_internal.h), in numpy f32."""
    from ukernels.quantize import quantize_rows_reference
    qx, sx = quantize_rows_reference(x)
    N, K = q.shape
    if group is None:
        dots = qx.astype(np.int64) @ q.T.astype(np.int64)
        f = dots.astype(np.float32) * s[None, :]
    else:
        f = np.zeros((x.shape[0], N), np.float32)
        for g in range(K // group):
            sl = slice(g * group, (g + 1) * group)
            d = (qx[:, sl].astype(np.int64) @ q[:, sl].T.astype(np.int64)).astype(np.float32)
            f = f + d * s[None, :, g]  # no fma: the products here are exact (small integers, scales 2^-k)
    return f * sx[:, None]


@pytest.mark.parametrize("bits,group", [(8, None), (8, 32), (4, None), (4, 32), (4, 256)])
def test_exact_at_the_range_limits(isa, bits, group):
    """Weights at their extremes (int8 -128 and 127, int4 -8 and 7) against x at +-127 over
    long runs of K: the AVX2 s16 pair sums at their bounds (2 * 128 * 127 = 32512 for int8;
    4 * 15 * 127 = 7620 for int4's two steps per load), the int32 sums and the corrections of the
    offset forms exact. Scales are powers of two, so every float step is exact too."""
    rng = np.random.default_rng(bits)
    N, K = 80, 1024
    lo, hi = (-128, 127) if bits == 8 else (-8, 7)
    for pattern in ("lo", "hi", "mixed"):
        if pattern == "mixed":
            q = rng.choice([lo, hi], size=(N, K)).astype(np.int8)
        else:
            q = np.full((N, K), lo if pattern == "lo" else hi, np.int8)
        G = 1 if group is None else K // group
        s = (2.0 ** -rng.integers(0, 6, size=(N, G))).astype(np.float32)
        s = s[:, 0] if group is None else s
        lin = ukernels.Linear.from_quantized(q, s, group_size=group, bits=bits)
        for xs in ("+", "-", "alternating"):
            x = np.ones((3, K), np.float32)
            if xs == "-":
                x = -x
            elif xs == "alternating":
                x[:, 1::2] = -1
            x[1] *= 0.5  # sx differs per row; quantized x stays +-127
            want = _exact_reference(q, s, group, x)
            np.testing.assert_array_equal(decoded(lin, x), want, err_msg=f"{pattern} weights, x {xs}")


def test_small_integer_values_exact(isa):
    """Random small-integer weights and x: exact against the float64 reference of the quantized
    operands (every sum and scale exact)."""
    rng = np.random.default_rng(3)
    N, K = 48, 96
    q = rng.integers(-8, 8, size=(N, K)).astype(np.int8)
    lin = ukernels.Linear.from_quantized(q, np.full(N, 0.25, np.float32), bits=4)
    x = rng.integers(-127, 128, size=(5, K)).astype(np.float32)
    x[:, 0] = 127  # every row's max |x| is 127: sx = 1, qx = x
    want = (x.astype(np.float64) @ q.T.astype(np.float64)) * 0.25
    np.testing.assert_array_equal(decoded(lin, x), want.astype(np.float32))


def test_threads_split_equals_one_thread(monkeypatch):
    """Above the size threshold the panels split over the pool: the same results."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((300, 512)).astype(np.float32)
    x = rng.standard_normal((3, 512)).astype(np.float32)
    for kw in ({"weight_dtype": "int8"}, {"weight_dtype": "int4", "group_size": 32}):
        lin = ukernels.Linear(w, **kw)
        with ukernels.thread_limit(1):
            one = decoded(lin, x)
        monkeypatch.setattr(decode, "PARALLEL_MIN_BYTES", 0)
        lin._decode = None
        monkeypatch.setattr(threads, "_requested", 2)  # two threads, whatever the host has
        np.testing.assert_array_equal(decoded(lin, x), one)
        # the call had the pool and a zero threshold: uk_qlinear_run split it (csrc/tests: the splits)
        assert threads.get_num_threads() == 2
        assert all(d.parallel_min_bytes == 0 for d in lin._decode._descs.values())
        monkeypatch.undo()


def test_leading_dimensions_zero_sizes_and_fallbacks():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((40, 64)).astype(np.float32)
    lin = ukernels.Linear(w, weight_dtype="int4", group_size=32)
    x3 = rng.standard_normal((2, 3, 64)).astype(np.float32)
    out = decoded(lin, x3)
    assert out.shape == (2, 3, 40)
    np.testing.assert_array_equal(out.reshape(6, 40), general(lin, x3.reshape(6, 64)))
    assert decoded(lin, np.zeros((0, 64), np.float32)).shape == (0, 40)
    # non-contiguous and float64 x take the general path; prompt-sized x the decode path: same values
    xs = rng.standard_normal((4, 128)).astype(np.float32)[:, ::2]
    np.testing.assert_array_equal(lin(xs), general(lin, np.ascontiguousarray(xs)))
    np.testing.assert_array_equal(lin(xs.astype(np.float64)), general(lin, np.ascontiguousarray(xs)))
    big = rng.standard_normal((decode.MAX_ROWS + 100, 64)).astype(np.float32)
    np.testing.assert_array_equal(decoded(lin, big), general(lin, big))
    # an empty layer (no output features) and K = 0
    empty = ukernels.Linear.from_quantized(np.zeros((0, 32), np.int8), np.zeros(0, np.float32))
    assert empty(np.ones((1, 32), np.float32)).shape == (1, 0)
    zero_k = ukernels.Linear.from_quantized(np.zeros((5, 0), np.int8), np.ones(5, np.float32), bias=np.arange(5.0,
                                                                                                             dtype=np.float32))
    np.testing.assert_array_equal(zero_k(np.zeros((2, 0), np.float32)), np.tile(np.arange(5.0, dtype=np.float32), (2, 1)))


def test_errors_name_the_problem():
    lin = ukernels.Linear(np.ones((8, 32), np.float32), weight_dtype="int8")
    with pytest.raises(ValueError, match="NaN or Inf"):
        lin(np.full((1, 32), np.nan, np.float32))
    with pytest.raises(ValueError, match="in_features=32"):
        lin(np.ones((1, 31), np.float32))


def test_layout_matches_its_documentation():
    """decode_layout against the documented byte positions (uk_runtime.h), element by element."""
    rng = np.random.default_rng(2)
    N, K, g = 70, 64, 32
    for bits in (8, 4):
        q = rng.integers(-8 if bits == 4 else -128, 8 if bits == 4 else 128, size=(N, K)).astype(np.int8)
        s = rng.random((N, K // g)).astype(np.float32)
        lay = decode.decode_layout(q, bits, g, s)
        assert lay.ctypes.data % 64 == 0
        step = 4 if bits == 8 else 8
        steps = g // step
        chunk = steps * 256 + 256 + (256 if bits == 8 else 0)
        G = K // g
        for n in range(N):
            p, u, j = n // 64, (n % 64) // 16, n % 16
            for k in range(K):
                grp, kk = divmod(k, g)
                base = (p * G + grp) * chunk
                if bits == 8:
                    byte = lay[base + (kk // 4) * 256 + u * 64 + 4 * j + kk % 4]
                    assert np.int8(byte.view(np.int8)) == q[n, k]
                else:
                    byte = int(lay[base + (kk // 8) * 256 + u * 64 + 4 * j + kk % 4])
                    nib = byte & 15 if kk % 8 < 4 else byte >> 4
                    assert nib - 8 == q[n, k]
            for grp in range(G):
                base = (p * G + grp) * chunk + steps * 256
                assert lay[base + 4 * (16 * u + j): base + 4 * (16 * u + j) + 4].view(np.float32)[0] == s[n, grp]
                if bits == 8:
                    sums = lay[base + 256 + 4 * (16 * u + j): base + 256 + 4 * (16 * u + j) + 4].view(np.int32)[0]
                    assert sums == 128 * int(q[n, grp * g:(grp + 1) * g].astype(np.int64).sum())
