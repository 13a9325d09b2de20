"""Fuzz harness (hypothesis): random shapes, strides, memory orders, dtypes,
epilogues, ISA levels, backends and thread counts against numpy, exact on
small-integer data. A small example budget runs in CI; raise it by hand:

    UKERNELS_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py
"""
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz harness needs hypothesis (pip install hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import ml_dtypes  # noqa: E402

import ukernels  # noqa: E402
from ukernels import cpu  # noqa: E402
from ukernels import ops as O  # noqa: E402

# (a dtype, b dtype, value range of a, value range of b): small integers are exact in every triple
PAIRS = [(np.float32, np.float32, 8, 8), (np.int8, np.int8, 128, 128), (np.float16, np.float16, 8, 8),
         (ml_dtypes.bfloat16, ml_dtypes.bfloat16, 8, 8), (np.int16, np.int16, 300, 300),
         (np.uint8, np.int8, 255, 128), (np.int8, ml_dtypes.int4, 128, 8)]

EXAMPLES = int(os.environ.get("UKERNELS_FUZZ_EXAMPLES", "60"))


@st.composite
def problems(draw):
    M = draw(st.integers(0, 70))
    N = draw(st.integers(0, 70))
    K = draw(st.integers(0, 90))
    pair = draw(st.sampled_from(PAIRS))
    seed = draw(st.integers(0, 2**32 - 1))
    a_order = draw(st.sampled_from(["C", "F", "strided", "negative"]))
    b_order = draw(st.sampled_from(["C", "F", "strided", "negative"]))
    isa = draw(st.sampled_from(cpu.supported_isas()))
    backend = draw(st.sampled_from(["ukernel", "codegen", "auto"]))
    threads = draw(st.integers(1, 2))
    ops = draw(st.lists(st.sampled_from(["bias", "relu", "clamp", "residual"]), max_size=3))
    prepacked = draw(st.booleans())
    return M, N, K, pair, seed, a_order, b_order, isa, backend, threads, ops, prepacked


def layout(x: np.ndarray, order: str) -> np.ndarray:
    if order == "F":
        return np.asfortranarray(x)
    if order == "strided":
        big = np.zeros((x.shape[0] * 2, x.shape[1] * 3), x.dtype)
        big[::2, ::3] = x
        return big[::2, ::3]
    if order == "negative":
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    return x


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(problems())
def test_fuzz_matmul_against_numpy(p):
    M, N, K, (adt, bdt, ra, rb), seed, a_order, b_order, isa, backend, threads, ops, prepacked = p
    rng = np.random.default_rng(seed)
    a = rng.integers(0 if adt == np.uint8 else -ra, ra, (M, K)).astype(adt)
    b = rng.integers(-rb, rb, (K, N)).astype(bdt)
    is_float = np.dtype(adt) in (np.dtype(np.float32), np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
    acc = np.float32 if is_float else np.int32
    if np.dtype(adt) == np.dtype(np.int16):  # keep int16 sums inside int32 (wrapping is tested elsewhere)
        a, b = (a // 4).astype(adt), (b // 4).astype(bdt)
    ref = a.astype(np.float64).astype(np.int64) @ b.astype(np.float64).astype(np.int64)
    epi = []
    for op in ops:
        if op == "bias":
            v = rng.integers(-20, 21, N).astype(acc)
            epi.append(O.BiasAdd(v))
            ref = ref + v
        elif op == "relu":
            epi.append(O.Relu())
            ref = np.maximum(ref, 0)
        elif op == "clamp":
            epi.append(O.Clamp(-50, 60))
            ref = np.clip(ref, -50, 60)
        else:
            r = layout(rng.integers(-20, 21, (M, N)).astype(acc), "F")
            epi.append(O.Residual(r))
            ref = ref + r
    old_threads = ukernels.get_num_threads()
    old_isa = os.environ.get("UKERNELS_ISA")
    os.environ["UKERNELS_ISA"] = isa
    ukernels.set_num_threads(threads)
    try:
        if prepacked and "residual" not in ops:
            lin = ukernels.Linear(layout(b, b_order), layout="kn", epilogue=epi, backend=backend)
            out = lin(layout(a, a_order))
        else:
            out = ukernels.matmul(layout(a, a_order), layout(b, b_order), epilogue=epi, backend=backend)
    finally:
        ukernels.set_num_threads(old_threads)
        if old_isa is None:
            os.environ.pop("UKERNELS_ISA", None)
        else:
            os.environ["UKERNELS_ISA"] = old_isa
    assert out.shape == (M, N) and out.dtype == acc
    np.testing.assert_array_equal(out, ref.astype(acc))
