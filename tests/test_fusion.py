"""fusion="register" (a generated kernel applies the epilogue to its accumulator registers at
the last K block and stores the final type) against fusion="tile" (the dispatch's epilogue on
each finished tile) and numpy: every op and several chains, every element-type triple the
generator has, narrow and edge tiles, several K blocks (the epilogue must run once, on the
final sum), every output type, stacks; then the choice ("auto" follows tune; explain says
why) and the errors.

Both forms compute the same expressions in the same order (codegen/templates/epilogue.c.j2
mirrors csrc/uk_epilogue_impl.inl, ISO C without contraction), so the results are compared
bit for bit, the transcendental ops included; tests/test_epilogue_ops.py bounds the tile-level
results against float64."""
import json
import math

import ml_dtypes
import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from ukernels.abi import ELEMENT_TYPES
from ukernels.runtime.dispatch import run_matmul
from ukernels.runtime.epilogue import lower
from ukernels import cpu

from conftest import k_scaled_tol
from test_epilogue_ops import M, N, _data, _ops, _NAMES, _verf

BF16 = np.dtype(ml_dtypes.bfloat16)


def packed_b(b):
    """b with a column stride, so that both forms pack it: small-M tile-level calls would read a
    contiguous b in place with short K blocks summed in groups (another summation order),
    which the register form does not do (runtime/dispatch.py: _codegen_plan)."""
    return np.swapaxes(np.ascontiguousarray(np.swapaxes(b, -1, -2)), -1, -2) if b.shape[-1] > 1 else b


def both(a, b, **kw):
    """(tile-level, register-level) results of the same generated-kernel call."""
    b = packed_b(b)
    t = ukernels.matmul(a, b, backend="codegen", fusion="tile", **kw)
    r = ukernels.matmul(a, b, backend="codegen", fusion="register", **kw)
    return t, r


def same_bits(r, t, nan_sign_free=False):
    """Bit for bit; with ``nan_sign_free``, NaNs only as NaNs: which NaN an FMA chain propagates
    (the sign of inf*0's default NaN vs an input NaN) depends on how the compiler ordered the
    multiply-add operands in the K loop, before any epilogue (numpy's BLAS differs again)."""
    assert r.dtype == t.dtype and r.shape == t.shape
    if nan_sign_free and r.dtype.kind == "f":
        nan = np.isnan(r)
        assert np.array_equal(nan, np.isnan(t))
        r, t = r[~nan], t[~nan]
    np.testing.assert_array_equal(r.view(np.uint8), t.view(np.uint8))


@pytest.mark.parametrize("name", _NAMES)
def test_each_op_register_equals_tile(name, isa):
    rng, a, b = _data(1)
    a = (a * 4.0).astype(np.float32)  # pre-activation values over the interesting range
    op = _ops(rng)[name][0]
    if name == "residual_strided":  # a column stride the register form does not read
        with pytest.raises(ValueError, match=r"column stride .* needs 1.*fusion='tile'"):
            ukernels.matmul(a, b, epilogue=[op], backend="codegen", fusion="register")
        info = ukernels.explain(M, N, a.shape[1], backend="codegen", epilogue=[op])
        assert info["fusion"] == "tile"
        return
    t, r = both(a, b, epilogue=[op])
    same_bits(r, t)
    info = ukernels.explain(M, N, a.shape[1], epilogue=[op], fusion="register")
    assert info["fusion"] == "register" and info["backend"] == "codegen"
    assert "_to_f32" in info["function"] and info["fused_ops"].endswith("->f32")


def _chains(rng, M, N):
    col = rng.standard_normal(N).astype(np.float32)
    row = rng.standard_normal(M).astype(np.float32)
    res = rng.standard_normal((M, N)).astype(np.float32)
    sc = rng.uniform(0.5, 2.0, N).astype(np.float32)
    return {
        "bias_gelu": [O.BiasAdd(col), O.Gelu()],
        "bias_silu_residual": [O.BiasAdd(col), O.Silu(), O.Residual(res)],
        "row_ops_relu6": [O.BiasAdd(row, axis="row"), O.Scale(row, axis="row"), O.Relu6(), O.Scale(sc)],
        "gelu_tanh_clamp_sigmoid": [O.Gelu("tanh"), O.Clamp(-0.5, 0.7), O.Sigmoid(), O.Tanh()],
        "none": [],
    }


SHAPES = [(1, 1, 1), (1, 200, 37), (1, 67, 3000), (5, 7, 3), (37, 45, 29), (130, 129, 2100), (8, 1, 5),
          (64, 64, 0)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("chain", ["bias_gelu", "bias_silu_residual", "row_ops_relu6", "gelu_tanh_clamp_sigmoid",
                                   "none"])
def test_chains_edges_and_k_blocks(chain, shape):
    """Edge tiles in M and N (partial tiles: operands staged, rows stored in part), M = 1
    (the one-row group path, with a partial last tile), K = 0 (no kernel call: the dispatch's
    write-back), and K over several K blocks (ACCUMULATE: the epilogue on the final sum only)."""
    Mx, Nx, Kx = shape
    rng = np.random.default_rng(sum(shape))
    a = rng.standard_normal((Mx, Kx)).astype(np.float32)
    b = (rng.standard_normal((Kx, Nx)) / math.sqrt(max(Kx, 1))).astype(np.float32)
    ops = _chains(rng, Mx, Nx)[chain]
    t, r = both(a, b, epilogue=ops)
    same_bits(r, t)
    if chain == "bias_gelu":  # and against float64 (the epilogue applied once, to the whole sum)
        x = a.astype(np.float64) @ b.astype(np.float64) + ops[0].bias
        ref = 0.5 * x * (1 + _verf(x / math.sqrt(2)))
        assert (np.abs(r - ref) <= 1.2 * k_scaled_tol(a, b) + 1e-6 * (np.abs(x) + 1)).all()


def test_epilogue_runs_once_on_the_final_sum():
    """K spread over many K blocks: an op applied per block instead of once would change the
    result (Scale(2) twice is x4; Relu on partial sums drops negative ones), exact on small integers."""
    rng = np.random.default_rng(5)
    K = 5000
    a = rng.integers(-2, 3, (20, K)).astype(np.float32)
    b = rng.integers(-2, 3, (K, 24)).astype(np.float32)
    plan = ukernels.explain(20, 24, K, backend="codegen", fusion="register", epilogue=[O.Scale(2.0), O.Relu()])
    assert plan["k_block"] < K
    out = ukernels.matmul(a, b, epilogue=[O.Scale(2.0), O.Relu()], backend="codegen", fusion="register")
    np.testing.assert_array_equal(out, np.maximum(2 * (a.astype(np.float64) @ b), 0).astype(np.float32))


@pytest.mark.parametrize("tile", [(1, 8), (2, 16), (4, 8), (3, 16)], ids=lambda t: f"{t[0]}x{t[1]}")
def test_narrow_tiles(tile, isa):
    """Generated kernels of narrow register tiles (forced), exact on small integers, with an
    edge in both dimensions."""
    from ukernels.codegen import targets
    target = targets.target_for_isa(isa, "f32f32f32")
    lanes = targets.target(target).f32_lanes
    from ukernels.codegen.render import KernelSpec
    try:
        KernelSpec("f32f32f32", tile[0], tile[1], target).check()
    except ValueError as exc:
        pytest.skip(f"not a tile of {target}: {exc}")
    rng = np.random.default_rng(9)
    Mx, Nx, Kx = 2 * tile[0] + 1, 3 * tile[1] - 3, 700
    a = rng.integers(-3, 4, (Mx, Kx)).astype(np.float32)
    b = rng.integers(-3, 4, (Kx, Nx)).astype(np.float32)
    col = rng.integers(-9, 10, Nx).astype(np.float32)
    res = rng.integers(-9, 10, (Mx, Nx)).astype(np.float32)
    from ukernels.abi import F32F32F32
    low = lower([O.BiasAdd(col), O.Residual(res), O.Relu6()], F32F32F32, Mx, Nx)
    out = {}
    for how in ("tile", "register"):
        out[how] = run_matmul(a, b, F32F32F32, low, isa, "codegen", tile=(tile[0], tile[1], 1), fusion=how)
    same_bits(out["register"], out["tile"])
    np.testing.assert_array_equal(out["register"], np.clip(a.astype(np.float64) @ b + col + res, 0, 6))


def _operands(types, Mx, Kx, Nx, rng):
    lhs, rhs = ELEMENT_TYPES[types].lhs, ELEMENT_TYPES[types].rhs
    lo, hi = (-4, 5) if lhs.kind == "f" or lhs == BF16 else (0 if lhs.kind == "u" else -100, 100)
    a = rng.integers(lo, hi, (Mx, Kx)).astype(lhs)
    b = rng.integers(-4 if rhs.kind == "f" or rhs == BF16 else -100, 5 if rhs.kind == "f" or rhs == BF16 else 100,
                     (Kx, Nx)).astype(rhs)
    return a, b


@pytest.mark.parametrize("types", ["f32f32f32", "f16f16f32", "bf16bf16f32", "s8s8s32", "s16s16s32", "u8s8s32"])
def test_every_triple_and_output_type(types, isa):
    """Each triple through its family's template (float: f32/f16/bf16 accumulating in f32;
    int: s8/s16/u8 in int32, with the int32 ops, the cast to float and requantization), every
    output type the epilogue can end in. At the generic level (one portable path per family),
    f32 and s8 only."""
    if isa == "generic" and types not in ("f32f32f32", "s8s8s32"):
        pytest.skip("the generic level's portable paths are per family: covered by f32 and s8")
    rng = np.random.default_rng(11)
    Mx, Kx, Nx = 19, 300, 37
    a, b = _operands(types, Mx, Kx, Nx, rng)
    col_i = rng.integers(-500, 500, Nx).astype(np.int32)
    res_i = rng.integers(-500, 500, (Mx, Nx)).astype(np.int32)
    col_f = rng.standard_normal(Nx).astype(np.float32)
    if ELEMENT_TYPES[types].acc.kind == "f":
        cases = [dict(epilogue=[O.BiasAdd(col_f), O.Silu()]),
                 dict(epilogue=[O.BiasAdd(col_f), O.Gelu()], out_dtype=np.float16),
                 dict(epilogue=[O.Relu()], out_dtype=BF16),
                 dict(epilogue=[O.BiasAdd(col_f), O.Requantize(0.25, 3, np.uint8)])]
    else:
        cases = [dict(epilogue=[O.BiasAdd(col_i), O.Residual(res_i), O.Clamp(-30000, 40000), O.Relu()]),
                 dict(epilogue=[O.BiasAdd(col_i)], out_dtype=np.float32),
                 dict(epilogue=[O.BiasAdd(col_i), O.Scale(np.float32(1e-3)), O.Gelu()], out_dtype=np.float16),
                 dict(epilogue=[O.BiasAdd(col_i), O.Requantize(rng.uniform(1e-4, 5e-4, Nx).astype(np.float32), -3,
                                                               np.int8)]),
                 dict(epilogue=[O.Requantize(2e-4, 128, np.uint8)]),
                 dict()]
    for kw in cases:
        t, r = both(a, b, **kw)
        same_bits(r, t)
    # the int requantized results against numpy (bit-exact: the accumulator is exact)
    if ELEMENT_TYPES[types].acc.kind == "i":
        acc = a.astype(np.int64) @ b.astype(np.int64)
        v = np.rint(acc.astype(np.float32) * np.float32(2e-4)) + np.float32(128)
        r = ukernels.matmul(a, b, epilogue=[O.Requantize(2e-4, 128, np.uint8)], backend="codegen", fusion="register")
        np.testing.assert_array_equal(r, np.clip(v, 0, 255).astype(np.uint8))


def test_stacks_with_batched_residual():
    rng = np.random.default_rng(12)
    a = rng.standard_normal((3, 21, 40)).astype(np.float32)
    b = rng.standard_normal((3, 40, 33)).astype(np.float32)
    res = rng.standard_normal((3, 21, 33)).astype(np.float32)
    col = rng.standard_normal(33).astype(np.float32)
    t, r = both(a, b, epilogue=[O.BiasAdd(col), O.Residual(res), O.Tanh()])
    same_bits(r, t)
    ref = np.tanh(a.astype(np.float64) @ b + col + res)
    assert np.abs(r - ref).max() < 1e-5


def test_out_array_and_special_values():
    """out= (written directly, strided rows) and NaN/Inf/-0 through the ops (the selects keep
    NaN as the C loops do; Requantize maps NaN to the zero point)."""
    x = np.array([[np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -3.5, 2.5, 100.0, -100.0, 7.0, -7.0, 0.5, -0.5,
                   88.0, -88.0]], np.float32)
    eye = np.eye(16, dtype=np.float32)
    for ops in ([O.Relu()], [O.Relu6()], [O.Clamp(-1, 1)], [O.Gelu()], [O.Gelu("tanh")], [O.Silu()],
                [O.Sigmoid()], [O.Tanh()], [O.Requantize(0.5, 4, np.int8)]):
        t, r = both(x, eye, epilogue=ops)
        same_bits(r, t, nan_sign_free=True)
    big = np.zeros((10, 40), np.float32)
    view = big[::2, 3:36]
    a = np.ones((5, 7), np.float32)
    b = np.arange(7 * 33, dtype=np.float32).reshape(7, 33) / 100
    got = ukernels.matmul(a, b, epilogue=[O.Gelu()], backend="codegen", fusion="register", out=view)
    assert got is view
    same_bits(np.ascontiguousarray(view), ukernels.matmul(a, b, epilogue=[O.Gelu()], backend="codegen",
                                                          fusion="tile"))
    assert (big[1::2] == 0).all() and (big[:, :3] == 0).all() and (big[:, 36:] == 0).all()


def test_quantized_linear_register_equals_tile():
    """The weight-quantized Linear's dequantizing ops (per-channel weight scales, per-row x
    scales) plus bias and gelu, in registers."""
    rng = np.random.default_rng(13)
    w = rng.standard_normal((48, 64)).astype(np.float32)
    bias = rng.standard_normal(48).astype(np.float32)
    x = rng.standard_normal((9, 64)).astype(np.float32)
    t = ukernels.Linear(w, bias=bias, activation="gelu", weight_dtype="int8", backend="codegen", fusion="tile")(x)
    r = ukernels.Linear(w, bias=bias, activation="gelu", weight_dtype="int8", backend="codegen", fusion="register")(x)
    same_bits(r, t)
    lin = ukernels.Linear(w, bias=bias, activation="gelu", fusion="register")
    same_bits(lin(x), ukernels.Linear(w, bias=bias, activation="gelu", backend="codegen", fusion="tile")(x))
    assert "fusion" in repr(lin.__getstate__()) or lin.__getstate__()["fusion"] == "register"


def test_linear_fusion_survives_pickle_and_save(tmp_path):
    import pickle
    w = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    lin = ukernels.Linear(w, activation="relu", fusion="register")
    assert pickle.loads(pickle.dumps(lin))._fusion == "register"
    lin.save(tmp_path / "l.ukl")
    assert ukernels.Linear.load(tmp_path / "l.ukl")._fusion == "register"


def test_errors_name_the_fix():
    a = np.ones((4, 5), np.float32)
    b = np.ones((5, 6), np.float32)
    with pytest.raises(ValueError, match=r"fusion must be one of \['auto', 'tile', 'register'\]"):
        ukernels.matmul(a, b, fusion="registers")
    with pytest.raises(ValueError, match=r"fusion='register' .* use backend='codegen'"):
        ukernels.matmul(a, b, backend="ukernel", fusion="register")
    with pytest.raises(ValueError, match=r"fusion='register' .* use backend='codegen'"):
        ukernels.Linear(b.T, backend="ukernel", fusion="register")
    with pytest.raises(ValueError, match=r"group-quantized"):
        ukernels.Linear(np.ones((8, 64), np.float32), weight_dtype="int4", group_size=32, fusion="register")
    with pytest.raises(ValueError, match=r"fusion must be one of"):
        ukernels.explain(4, 6, 5, fusion="x")


def test_handwritten_ukernel_refuses_the_fused_flag():
    """The flag is a generated kernel's: uk_mmt4d (the handwritten table) returns BAD_ARGUMENT."""
    from ukernels._lib import ffi, lib
    p = ffi.new("uk_mmt4d_params_t*")
    out = np.zeros(64, np.float32)
    lhs = np.ones(8, np.float32)
    rhs = np.ones(8, np.float32)
    p.lhs_buffer, p.rhs_buffer, p.out_buffer = ffi.from_buffer(lhs), ffi.from_buffer(rhs), ffi.from_buffer(out)
    p.M = p.N = p.K = 1
    p.M0, p.N0, p.K0 = 8, 8, 1
    p.lhs_stride0, p.rhs_stride0, p.out_stride0 = 8, 8, 64
    p.flags = lib.UK_TYPE_F32F32F32 | lib.UK_FLAG_ALLOW_GENERIC_FALLBACK
    assert lib.uk_mmt4d(p) == lib.UK_STATUS_OK
    p.flags |= lib.UK_FLAG_EPILOGUE_FUSED
    assert lib.uk_mmt4d(p) == lib.UK_STATUS_BAD_ARGUMENT


def test_a_generated_kernel_checks_the_op_list_it_gets():
    """A fused kernel called with another op list than its own (or without the flag's fields)
    refuses instead of reading operands it was not rendered for."""
    from ukernels._lib import ffi, lib
    from ukernels.abi import F32F32F32
    from ukernels.runtime.dispatch import resolve
    from ukernels.runtime.epilogue import to_c
    r = resolve(F32F32F32, 8, 16, 4, cpu.active_isa(), "codegen", fused=(("bias_col", "relu"), "f32"))
    M0, N0 = r.plan.M0, r.plan.N0
    lhs = np.ones(4 * M0, np.float32)
    rhs = np.ones(4 * N0, np.float32)
    acc = np.zeros(M0 * N0, np.float32)
    fin = np.zeros((M0, N0), np.float32)
    p = ffi.new("uk_mmt4d_params_t*")
    p.lhs_buffer, p.rhs_buffer, p.out_buffer = ffi.from_buffer(lhs), ffi.from_buffer(rhs), ffi.from_buffer(acc)
    p.M = p.N = 1
    p.K = 4
    p.M0, p.N0, p.K0 = M0, N0, 1
    p.lhs_stride0, p.rhs_stride0, p.out_stride0 = 4 * M0, 4 * N0, M0 * N0
    p.flags = lib.UK_TYPE_F32F32F32 | lib.UK_FLAG_EPILOGUE_FUSED
    p.final_type, p.final_out, p.final_stride0 = lib.UK_OUT_F32, ffi.from_buffer(fin), N0
    p.rows, p.cols = M0, N0
    bias = np.arange(N0, dtype=np.float32) - 5
    good = lower([O.BiasAdd(bias), O.Relu()], F32F32F32, M0, N0)
    wrong = lower([O.BiasAdd(bias), O.Gelu()], F32F32F32, M0, N0)
    ops, n, keep = to_c(wrong.ops)
    p.epilogue_ops, p.epilogue_num_ops = ops, n
    assert r.fn(p) == lib.UK_STATUS_BAD_ARGUMENT
    ops, n, keep = to_c(good.ops)
    p.epilogue_ops, p.epilogue_num_ops = ops, n
    p.final_type = lib.UK_OUT_F16
    assert r.fn(p) == lib.UK_STATUS_BAD_ARGUMENT
    p.final_type = lib.UK_OUT_F32
    assert r.fn(p) == lib.UK_STATUS_OK
    np.testing.assert_array_equal(fin, np.maximum(4 + bias, 0)[None].repeat(M0, 0))
    del keep


def test_auto_follows_tune_and_explain_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("UKERNELS_CACHE_DIR", str(tmp_path / "cache"))
    from ukernels.codegen import tuning
    from ukernels.runtime import dispatch
    tuning.forget()
    dispatch.forget_resolutions()
    try:
        Mx, Nx, Kx = 24, 40, 32
        col = np.random.default_rng(1).standard_normal(Nx).astype(np.float32)
        ops = [O.BiasAdd(col), O.Gelu()]
        before = ukernels.explain(Mx, Nx, Kx, epilogue=ops)
        assert before["fusion"] == "tile" and "auto" in before["fusion_reason"]
        result = ukernels.codegen.tune(Mx, Nx, Kx, repeats=1, epilogue=ops)
        assert result["fusion"] in ("register", "tile") and set(result["fusion_results"]) == {"tile", "register"}
        from pathlib import Path
        tuned = Path(tuning.tuned_path())
        doc = json.loads(tuned.read_text())
        key = [k for k in doc if k.endswith("bias_col,gelu_erf->f32")]
        assert len(key) == 1 and doc[key[0]] == result["fusion"]
        after = ukernels.explain(Mx, Nx, Kx, epilogue=ops)  # the tuned tile makes "auto" pick codegen
        assert after["backend"] == "codegen" and after["fusion"] == result["fusion"]
        assert "tune measured" in after["fusion_reason"]
        # force the other answer in the file: auto follows it
        other = "tile" if result["fusion"] == "register" else "register"
        doc[key[0]] = other
        tuned.write_text(json.dumps(doc))
        tuning.forget()
        dispatch.forget_resolutions()
        assert ukernels.explain(Mx, Nx, Kx, epilogue=ops)["fusion"] == other
        a = np.random.default_rng(2).standard_normal((Mx, Kx)).astype(np.float32)
        b = packed_b(np.random.default_rng(3).standard_normal((Kx, Nx)).astype(np.float32))
        same_bits(ukernels.matmul(a, b, epilogue=ops), ukernels.matmul(a, b, epilogue=ops, backend="codegen",
                                                                         fusion="tile"))
        # a damaged fusion entry is ignored (one warning), the tile entry still used
        doc[key[0]] = "sideways"
        tuned.write_text(json.dumps(doc))
        tuning.forget()
        dispatch.forget_resolutions()
        with pytest.warns(RuntimeWarning, match=r"ignoring 1 malformed entries"):
            info = ukernels.explain(Mx, Nx, Kx, epilogue=ops)
        assert info["backend"] == "codegen" and info["fusion"] == "tile"
    finally:
        tuning.forget()
        dispatch.forget_resolutions()


_ASAN_SCRIPT = """
import numpy as np, ukernels
from ukernels import ops as O
rng = np.random.default_rng(0)
for (M, N, K) in [(5, 7, 3), (17, 33, 300)]:  # edge tiles in M and N (staged operands), several K blocks
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    col = rng.standard_normal(N).astype(np.float32)
    row = rng.standard_normal(M).astype(np.float32)
    res = rng.standard_normal((M, N)).astype(np.float32)
    ops = [O.BiasAdd(col), O.BiasAdd(row, axis="row"), O.Residual(res), O.Scale(col), O.Gelu()]
    r = ukernels.matmul(a, b, epilogue=ops, backend="codegen", fusion="register")
    x = (a.astype(np.float64) @ b + col + row[:, None] + res) * col
    from math import erf
    ref = 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    assert np.abs(r - ref).max() < 1e-4, (M, N, K)
    ai = rng.integers(-100, 100, (M, K)).astype(np.int8)
    bi = rng.integers(-100, 100, (K, N)).astype(np.int8)
    bq = rng.integers(-99, 99, N).astype(np.int32)
    s = (np.abs(col) * 1e-3).astype(np.float32)
    r = ukernels.matmul(ai, bi, epilogue=[O.BiasAdd(bq), O.Requantize(s, 3, np.int8)], backend="codegen",
                        fusion="register")
    v = np.rint((ai.astype(np.int32) @ bi + bq).astype(np.float32) * s) + np.float32(3)
    assert np.array_equal(r, np.clip(v, -128, 127).astype(np.int8)), (M, N, K)
print("OK")
"""


def test_register_epilogue_under_asan_and_ubsan(tmp_path):
    """The generated fused kernels built with -fsanitize=address,undefined (CC) in a Python
    with ASan preloaded: edge tiles read their operands only inside the result (a staging bug
    reads past the bias and is reported), stores only inside it, no undefined behaviour."""
    import os
    import shutil
    import subprocess
    import sys
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to build the sanitized kernels")
    libasan = subprocess.run([gcc, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan) or not os.path.exists(libasan):
        pytest.skip(f"gcc has no AddressSanitizer runtime (libasan.so: {libasan!r})")
    env = dict(os.environ, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0", UKERNELS_CACHE_DIR=str(tmp_path),
               # the compiler itself runs without the preloaded runtime (much faster)
               CC=f"env -u LD_PRELOAD {gcc} -fsanitize=address,undefined -fno-sanitize-recover=all "
                  "-fno-omit-frame-pointer")
    if "avx2" in cpu.supported_isas():
        env["UKERNELS_ISA"] = "avx2"  # smaller tiles: quicker sanitized compiles
    run = subprocess.run([sys.executable, "-c", _ASAN_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0 and run.stdout.strip().endswith("OK"), run.stderr[-3000:]
    assert "runtime error" not in run.stderr, run.stderr[-3000:]


def test_build_time_generator_serves_fused_kernels(tmp_path, monkeypatch):
    """A spec entry with "epilogue"/"out" is generated ahead of time into the library + manifest;
    fusion="register" then runs the prebuilt kernel (no compiler at run time)."""
    from ukernels.codegen import cache, generator, prebuilt
    from ukernels.runtime import dispatch
    Mx, Nx, Kx = 20, 48, 40
    col = np.random.default_rng(4).standard_normal(Nx).astype(np.float32)
    ops = [O.BiasAdd(col), O.Gelu()]
    info = ukernels.explain(Mx, Nx, Kx, epilogue=ops, fusion="register")
    M0, N0, _ = (int(v) for v in info["ukernel_tile"].split("x"))
    from ukernels.codegen import targets
    target = targets.target_for_isa(cpu.active_isa(), "f32f32f32")
    specs, shapes = generator.specs_and_shapes({"kernels": [
        {"types": "f32f32f32", "target": target, "tiles": [[M0, N0]], "epilogue": ["bias_col", "gelu_erf"],
         "out": "f32"}]})
    generator.build(specs, str(tmp_path / "lib"), progress=None, shapes=shapes)
    monkeypatch.setenv("UKERNELS_KERNEL_PATH", str(tmp_path / "lib"))
    monkeypatch.setenv("UKERNELS_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("CC", "/nonexistent/cc")  # a compile would fail: the prebuilt kernel must serve
    prebuilt.reset()
    dispatch.forget_resolutions()
    try:
        info = ukernels.explain(Mx, Nx, Kx, epilogue=ops, fusion="register")
        assert info["kernel_origin"] == "prebuilt" and info["function"].endswith("__bias_col_gelu_erf_to_f32")
        a = np.random.default_rng(5).standard_normal((Mx, Kx)).astype(np.float32)
        b = packed_b(np.random.default_rng(6).standard_normal((Kx, Nx)).astype(np.float32))
        r = ukernels.matmul(a, b, epilogue=ops, backend="codegen", fusion="register")
        x = a.astype(np.float64) @ b + col
        assert np.abs(r - 0.5 * x * (1 + _verf(x / math.sqrt(2)))).max() < 1e-5
    finally:
        monkeypatch.undo()
        prebuilt.reset()
        dispatch.forget_resolutions()
