"""The workloads ``python -m ukernels bench`` measures: inputs, a reference, a check, and
ukernels' own implementations (both backends). Peers live in peers.py.

Each workload makes its inputs once per shape, computes a reference (float64, or exact
integers), and every implementation's result is checked against it before it is timed."""
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import ml_dtypes
import numpy as np

import ukernels
from ukernels import ops as O
from ukernels.benchmark.shapes import Shape

GROUP = 32  # int4 weights: scales per group of 32 along K (llama.cpp Q4_0's and MatMulNBits' block)
BATCHED_MAX_MNK = 1 << 24  # batched: shapes up to this many multiply-adds per item
BATCH = 8


class NotApplicable(Exception):
    """This implementation or workload does not apply to this shape (the reason is reported)."""


@dataclass
class Inputs:
    arrays: Dict[str, np.ndarray]
    reference: np.ndarray
    batch: int = 1
    meta: Dict[str, object] = field(default_factory=dict)


def gelu_erf(x: np.ndarray) -> np.ndarray:
    """GELU, erf form, in float64 (the reference; numpy has no vectorised erf)."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (numpy's peer: what a numpy user would write)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


def _float_check(tol_scale: float, floor: float = 0.0) -> Callable[[np.ndarray, np.ndarray, Shape], Optional[str]]:
    """Max abs error relative to max |ref| within tol_scale * sqrt(K) (rounding grows like
    sqrt(K)), and never below ``floor``."""
    def check(got: np.ndarray, ref: np.ndarray, shape: Shape) -> Optional[str]:
        got = np.asarray(got, np.float64).reshape(ref.shape)
        scale = max(float(np.abs(ref).max()), 1e-30)
        err = float(np.abs(got - ref).max()) / scale
        limit = max(tol_scale * math.sqrt(max(shape.K, 1)), floor)
        return None if err <= limit else f"max error {err:.2e} of max |ref| > {limit:.1e}"
    return check


def _frobenius_check(limit: float) -> Callable[[np.ndarray, np.ndarray, Shape], Optional[str]]:
    """||got - ref|| / ||ref|| within ``limit`` (for quantized activations: a stated bound)."""
    def check(got: np.ndarray, ref: np.ndarray, shape: Shape) -> Optional[str]:
        got = np.asarray(got, np.float64).reshape(ref.shape)
        err = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
        return None if err <= limit else f"relative Frobenius error {err:.2e} > {limit:.0e}"
    return check


def _bf16_out_check() -> Callable[[np.ndarray, np.ndarray, Shape], Optional[str]]:
    """Every element within 2^-8 of its own |ref| (a bf16 output's rounding is 2^-9; f32 sums of
    bf16 inputs add far less) plus 2^-12 of the rms of ref (for elements near zero): a wrong
    element, row or column is rejected at any K (a bound scaled by max |ref| and sqrt(K) was
    not: at K = 16384 it let an all-zero result pass)."""
    def check(got: np.ndarray, ref: np.ndarray, shape: Shape) -> Optional[str]:
        got = np.asarray(got, np.float64).reshape(ref.shape)
        rms = float(np.sqrt(np.mean(np.square(ref)))) if ref.size else 0.0
        err = np.abs(got - ref) - (2.0 ** -8 * np.abs(ref) + 2.0 ** -12 * rms)
        worst = float(err.max()) if err.size else 0.0
        if not np.isfinite(got).all() or worst > 0:
            n = int((~(err <= 0)).sum())
            return f"{n} elements off by more than 2^-8 of |ref| + 2^-12 of rms(ref)"
        return None
    return check


def _int_check(max_diff: int) -> Callable[[np.ndarray, np.ndarray, Shape], Optional[str]]:
    def check(got: np.ndarray, ref: np.ndarray, shape: Shape) -> Optional[str]:
        diff = int(np.abs(np.asarray(got, np.int64).reshape(ref.shape) - ref).max())
        return None if diff <= max_diff else f"differs from the exact result by up to {diff} (allowed {max_diff})"
    return check


@dataclass
class Workload:
    name: str
    title: str
    make: Callable[[Shape, np.random.Generator], Inputs]
    ours: Callable[[Inputs, Shape], List[Tuple[str, Callable[[], object]]]]
    check: Callable[[np.ndarray, np.ndarray, Shape], Optional[str]]
    weight_bytes: Callable[[Shape], int]  # bytes of b / the weight read per call (decode GB/s)
    peak: str = "f32"  # which per-core peak bounds it: f32, bf16, int8
    applies: Callable[[Shape], Optional[str]] = lambda s: None  # a reason when it does not
    note: str = ""
    # a check that reads the inputs too (e.g. an elementwise bound made with them); else ``check``
    check_inputs: Optional[Callable[[np.ndarray, Inputs, Shape], Optional[str]]] = None

    def check_result(self, got, inp: Inputs, shape: Shape) -> Optional[str]:
        """None when ``got`` passes this workload's check, else why not."""
        if self.check_inputs is not None:
            return self.check_inputs(got, inp, shape)
        return self.check(got, inp.reference, shape)


def _backends(make_fn: Callable[[str], Callable[[], object]], label: str):
    out = []
    for backend in ("ukernel", "codegen"):
        out.append((f"ukernels {label} [{backend}]", lambda backend=backend: make_fn(backend)))
    return out


# --- matmul: f32, both operands per call ----------------------------------------------------
def _make_matmul(s: Shape, rng) -> Inputs:
    a = rng.standard_normal((s.M, s.K), dtype=np.float32)
    b = rng.standard_normal((s.K, s.N), dtype=np.float32)
    return Inputs({"a": a, "b": b}, a.astype(np.float64) @ b.astype(np.float64))


def _ours_matmul(inp: Inputs, s: Shape):
    a, b = inp.arrays["a"], inp.arrays["b"]

    def build(backend):
        ukernels.matmul(a, b, backend=backend)  # resolve (and compile, for codegen) up front
        return lambda: ukernels.matmul(a, b, backend=backend)
    return _backends(build, "matmul")


# --- linear: f32 layer, weight prepacked, bias + gelu fused -------------------------------
def _make_linear(s: Shape, rng) -> Inputs:
    x = rng.standard_normal((s.M, s.K), dtype=np.float32)
    w = (rng.standard_normal((s.N, s.K), dtype=np.float32) / np.float32(math.sqrt(s.K)))
    bias = rng.standard_normal(s.N, dtype=np.float32)
    ref = gelu_erf(x.astype(np.float64) @ w.T.astype(np.float64) + bias)
    return Inputs({"x": x, "w": w, "bias": bias}, ref)


def _ours_linear(inp: Inputs, s: Shape):
    x, w, bias = inp.arrays["x"], inp.arrays["w"], inp.arrays["bias"]

    def build(backend):
        lin = ukernels.Linear(w, bias, activation="gelu", backend=backend)
        lin(x)
        return lambda: lin(x)
    return _backends(build, "Linear")


# --- layer: f32 layer without epilogue, weight prepacked ----------------------------------
def _make_layer(s: Shape, rng) -> Inputs:
    x = rng.standard_normal((s.M, s.K), dtype=np.float32)
    w = rng.standard_normal((s.N, s.K), dtype=np.float32)
    return Inputs({"x": x, "w": w}, x.astype(np.float64) @ w.T.astype(np.float64))


def _ours_layer(inp: Inputs, s: Shape):
    x, w = inp.arrays["x"], inp.arrays["w"]

    def build(backend):
        lin = ukernels.Linear(w, backend=backend)
        lin(x)
        return lambda: lin(x)
    return _backends(build, "Linear")


# --- int8: s8 x s8 -> s32, requantized to int8 per output channel ------------------------
def _make_int8(s: Shape, rng) -> Inputs:
    a = rng.integers(-128, 128, (s.M, s.K), dtype=np.int8)
    b = rng.integers(-127, 128, (s.K, s.N), dtype=np.int8)
    a_scale = np.float32(0.02)
    b_scale = (rng.uniform(0.5, 1.5, s.N) * 0.01).astype(np.float32)
    y_scale = np.float32(0.02 * 0.01 * 64 * math.sqrt(s.K) / 16)  # keeps most outputs inside int8
    zp = 3
    acc = a.astype(np.float64) @ b.astype(np.float64)  # exact: |sum| < 2^53
    mult = (a_scale * b_scale / y_scale).astype(np.float32)
    ref = np.clip(np.rint(acc * mult.astype(np.float64)) + zp, -128, 127).astype(np.int64)
    return Inputs({"a": a, "b": b}, ref, meta={"a_scale": a_scale, "b_scale": b_scale, "y_scale": y_scale,
                                               "zp": zp, "mult": mult})


def _ours_int8(inp: Inputs, s: Shape):
    a, b, m = inp.arrays["a"], inp.arrays["b"], inp.meta
    ep = [O.Requantize(m["mult"], m["zp"], np.int8)]

    def build(backend):  # both operands per call
        ukernels.matmul(a, b, epilogue=ep, backend=backend)
        return lambda: ukernels.matmul(a, b, epilogue=ep, backend=backend)

    def build_layer(backend):  # the weight prepacked, as the peers' quantized layers hold it
        lin = ukernels.Linear(b, epilogue=ep, layout="kn", backend=backend)
        lin(a)
        return lambda: lin(a)
    return _backends(build, "matmul + Requantize") + _backends(build_layer, "Linear int8 + Requantize")


# --- qlinear: a dynamically quantized int8 layer: f32 x quantized per call, int8 weights ------
def _make_qlinear(s: Shape, rng) -> Inputs:
    x = rng.standard_normal((s.M, s.K), dtype=np.float32)
    w = rng.standard_normal((s.N, s.K), dtype=np.float32)
    scales = (np.abs(w).max(axis=1) / 127).astype(np.float32)  # symmetric, per output channel
    q = np.clip(np.rint(w / scales[:, None]), -127, 127).astype(np.int8)
    w_deq = q.astype(np.float32) * scales[:, None]
    return Inputs({"x": x, "q": q, "scales": scales, "w_deq": w_deq},
                  x.astype(np.float64) @ w_deq.T.astype(np.float64))


def _ours_qlinear(inp: Inputs, s: Shape):
    x, q, scales = inp.arrays["x"], inp.arrays["q"], inp.arrays["scales"]

    def build(backend):
        lin = ukernels.Linear.from_quantized(q, scales, bits=8, backend=backend)
        lin(x)
        return lambda: lin(x)
    return _backends(build, "Linear int8 (x quantized per row per call)")


# --- bf16: bf16 x bf16 -> f32 ---------------------------------------------------------------
def _make_bf16(s: Shape, rng) -> Inputs:
    a = rng.standard_normal((s.M, s.K), dtype=np.float32).astype(ml_dtypes.bfloat16)
    b = rng.standard_normal((s.K, s.N), dtype=np.float32).astype(ml_dtypes.bfloat16)
    return Inputs({"a": a, "b": b}, a.astype(np.float64) @ b.astype(np.float64))


def _ours_bf16(inp: Inputs, s: Shape):
    a, b = inp.arrays["a"], inp.arrays["b"]

    def build(backend):
        ukernels.matmul(a, b, backend=backend)
        return lambda: ukernels.matmul(a, b, backend=backend)
    return _backends(build, "matmul bf16")


# --- int4: a layer with int4 weights (groups of 32 along K), f32 activations -------------
def _int4_applies(s: Shape) -> Optional[str]:
    return None if s.K % GROUP == 0 else f"K={s.K} is not a multiple of the group size {GROUP}"


def _make_int4(s: Shape, rng) -> Inputs:
    x = rng.standard_normal((s.M, s.K), dtype=np.float32)
    w = rng.standard_normal((s.N, s.K), dtype=np.float32)
    g = w.reshape(s.N, s.K // GROUP, GROUP)
    scales = (np.abs(g).max(axis=2) / 7).astype(np.float32)
    q = np.clip(np.rint(g / np.where(scales > 0, scales, 1)[:, :, None]), -8, 7).astype(np.int8).reshape(s.N, s.K)
    w_deq = (q.reshape(s.N, s.K // GROUP, GROUP) * scales[:, :, None]).reshape(s.N, s.K).astype(np.float32)
    ref = x.astype(np.float64) @ w_deq.T.astype(np.float64)
    return Inputs({"x": x, "q": q, "scales": scales, "w_deq": w_deq}, ref)


def _ours_int4(inp: Inputs, s: Shape):
    x, q, scales = inp.arrays["x"], inp.arrays["q"], inp.arrays["scales"]

    def build(backend):
        lin = ukernels.Linear.from_quantized(q, scales, group_size=GROUP, bits=4, backend=backend)
        lin(x)
        return lambda: lin(x)
    return _backends(build, "Linear int4")


# --- decode: LLM layers whose weights come from DRAM, as in a model's token ------------------
# Every implementation rotates through copies of its layer holding more bytes than the L3 cache
# (in a model, the other layers evict each layer's weights before its next token), so a decode
# call's speed is its weight bytes over the memory bandwidth it reaches (the GB/s column).
DECODE_ROTATE_L3 = 4  # rotate through this many times the L3's bytes (per implementation)
DECODE_MAX_COPIES = 1024  # small layers (576 x 192: 69 KB in int4) need many to leave the L3


def decode_copies(per_copy_bytes: int) -> int:
    """Copies of a layer to rotate through: at least DECODE_ROTATE_L3 x the L3's bytes."""
    from ukernels.runtime.plan import l3_size
    return max(2, min(DECODE_MAX_COPIES, -(-DECODE_ROTATE_L3 * l3_size() // max(per_copy_bytes, 1))))


def rotating(fns: List[Callable[[], object]]) -> Callable[[], object]:
    """One call of the next copy in turn."""
    state = [0]

    def call():
        i = state[0]
        state[0] = (i + 1) % len(fns)
        return fns[i]()
    return call


def x_quantization_check(got: np.ndarray, inp: Inputs, shape: Shape) -> Optional[str]:
    """Each element within the error of quantizing x to 7 bits (the coarsest peer: torch's
    dynamic Linear, reduce_range) against the dequantized weights: |got - ref| <= max|x_i| / 127
    * sum_k |w[j, k]| (+ 2^-20 of the rms of ref), the bound made by _make_decode: a wrong,
    zeroed or negated column of a typical size fails it (a Frobenius bound over the whole result
    would not)."""
    ref = inp.reference
    got = np.asarray(got, np.float64).reshape(ref.shape)
    rms = float(np.sqrt(np.mean(np.square(ref)))) if ref.size else 0.0
    excess = np.abs(got - ref) - (inp.meta["bound"] * 1.001 + 2.0 ** -20 * rms)
    if not np.isfinite(got).all() or (excess.size and float(excess.max()) > 0):
        return f"{int((~(excess <= 0)).sum())} elements outside the x-quantization bound"
    return None


def _make_decode(s: Shape, rng, bits: int) -> Inputs:
    inp = _make_int4(s, rng) if bits == 4 else _make_qlinear(s, rng)
    x, w_deq = inp.arrays["x"], inp.arrays["w_deq"]
    inp.meta["bound"] = np.abs(x).max(axis=1, keepdims=True).astype(np.float64) / 127 * np.abs(w_deq).sum(axis=1)
    return inp


def _ours_decode(inp: Inputs, s: Shape, bits: int):
    x, q, scales = inp.arrays["x"], inp.arrays["q"], inp.arrays["scales"]
    group = GROUP if bits == 4 else None

    def build():
        first = ukernels.Linear.from_quantized(q, scales, group_size=group, bits=bits)
        per = s.K * s.N * bits // 8 + scales.nbytes
        lins = [first] + [ukernels.Linear.from_quantized(q, scales, group_size=group, bits=bits)
                          for _ in range(decode_copies(per) - 1)]
        call = rotating([lambda lin=lin: lin(x) for lin in lins])
        for _ in lins:
            call()
        return call
    what = "int4 g32" if bits == 4 else "int8 per channel"
    return [(f"ukernels Linear {what} [rotated]", build)]


# --- batched: BATCH stacked f32 products in one call ---------------------------------------
def _batched_applies(s: Shape) -> Optional[str]:
    return None if s.M * s.N * s.K <= BATCHED_MAX_MNK else f"larger than {BATCHED_MAX_MNK} multiply-adds per item"


def _make_batched(s: Shape, rng) -> Inputs:
    a = rng.standard_normal((BATCH, s.M, s.K), dtype=np.float32)
    b = rng.standard_normal((BATCH, s.K, s.N), dtype=np.float32)
    return Inputs({"a": a, "b": b}, np.matmul(a.astype(np.float64), b.astype(np.float64)), batch=BATCH)


def _ours_batched(inp: Inputs, s: Shape):
    a, b = inp.arrays["a"], inp.arrays["b"]

    def build(backend):
        ukernels.matmul(a, b, backend=backend)
        return lambda: ukernels.matmul(a, b, backend=backend)
    return _backends(build, f"matmul x{BATCH} stacked")


WORKLOADS: Dict[str, Workload] = {w.name: w for w in [
    Workload("matmul", "f32 matmul, both operands per call", _make_matmul, _ours_matmul, _float_check(2e-6),
             lambda s: s.K * s.N * 4),
    Workload("linear", "f32 layer: x @ W^T + bias, GELU; weight prepacked (an initializer for onnxruntime)",
             _make_linear, _ours_linear, _float_check(2e-6, 5e-4), lambda s: s.K * s.N * 4,
             note="numpy's peer uses the tanh approximation of GELU (numpy has no vectorised erf); "
                  "checked with a tolerance that admits it"),
    Workload("layer", "f32 layer x @ W^T without epilogue; weight prepacked (an initializer / constant for "
             "onnxruntime and IREE)", _make_layer, _ours_layer, _float_check(2e-6), lambda s: s.K * s.N * 4),
    Workload("int8", "int8 x int8 -> int32, requantized to int8 per output channel (the peers' layers hold "
             "the weight prepacked; ukernels both ways)", _make_int8, _ours_int8,
             _int_check(1), lambda s: s.K * s.N, peak="int8",
             note="results may differ from the exact one by 1 where float rounding of the multiplier differs"),
    Workload("qlinear", "dynamically quantized int8 layer: f32 x quantized per call (per row), int8 weights "
             "(per output channel), f32 out", _make_qlinear, _ours_qlinear, _frobenius_check(4e-2),
             lambda s: s.K * s.N, peak="int8",
             note="reference: the dequantized weights in float64; the activation quantization's error is "
                  "in every implementation's result (ukernels' symmetric 8-bit x: ~0.6%; torch's dynamic "
                  "Linear quantizes x to 7 bits, reduce_range: ~2.5%), hence a 4% bound"),
    Workload("bf16", "bfloat16 x bfloat16 -> f32 matmul", _make_bf16, _ours_bf16, _bf16_out_check(),
             lambda s: s.K * s.N * 2, peak="bf16",
             note="torch's peer returns bfloat16 (its own rounding), checked at bf16 precision"),
    Workload("int4", f"layer with int4 weights, scales per {GROUP} along K, f32 activations", _make_int4, _ours_int4,
             _frobenius_check(2e-2), lambda s: s.K * s.N // 2 + s.N * (s.K // GROUP) * 4, peak="int8",
             applies=_int4_applies,
             note="reference: the dequantized weights in float64; ukernels quantizes activations to int8 "
                  "per row per call"),
    Workload("decode", f"LLM decode layer, int4 weights (scales per {GROUP} along K), f32 x; every implementation "
             f"rotates through copies of its layer ({DECODE_ROTATE_L3}x the L3), so the weights come from DRAM",
             lambda s, rng: _make_decode(s, rng, 4), lambda inp, s: _ours_decode(inp, s, 4), None,
             lambda s: s.K * s.N // 2 + s.N * (s.K // GROUP) * 4, peak="int8", applies=_int4_applies,
             note="GB/s: the int4 format's bytes (4-bit weights + f32 scales) per second, whatever the peer reads "
                  "(torch's dynamic int8 reads 8-bit weights); checked element by element within the error of "
                  "quantizing x to 7 bits", check_inputs=x_quantization_check),
    Workload("decode-int8", "LLM decode layer, int8 weights (per output channel), f32 x; rotated through copies as "
             "'decode'", lambda s, rng: _make_decode(s, rng, 8), lambda inp, s: _ours_decode(inp, s, 8), None,
             lambda s: s.K * s.N + s.N * 4, peak="int8",
             note="checked element by element within the error of quantizing x to 7 bits",
             check_inputs=x_quantization_check),
    Workload("batched", f"{BATCH} stacked f32 products per call (np.matmul on 3-D arrays)", _make_batched,
             _ours_batched, _float_check(2e-6), lambda s: BATCH * s.K * s.N * 4, applies=_batched_applies),
]}

QUICK_WORKLOADS = ["matmul", "linear"]
LLM_WORKLOADS = ["decode", "decode-int8"]  # the llm suite's (weights rotated out of cache: slower to set up)
SUITE_WORKLOADS = {"quick": QUICK_WORKLOADS, "llm": LLM_WORKLOADS}
