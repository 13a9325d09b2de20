"""The libraries a user would pick instead, each an optional import: numpy (always),
PyTorch, onnxruntime and IREE. ``build(peer, workload, inputs, shape, threads)`` returns
the peer's implementations of a workload as (name, fn) pairs, or raises NotApplicable
with the reason (reported in the results, never silently dropped).

Thread counts: numpy's BLAS through threadpoolctl (the runner's context), torch through
torch.set_num_threads, onnxruntime per session (intra_op_num_threads), IREE per device
(local-task with t workers: one count per process, the largest requested). Every library
keeps its default idle behaviour (onnxruntime's and OpenMP's threads spin briefly after a
call, as ukernels' pool does for UKERNELS_SPIN_US): users run them that way, and the runner
lets the machine settle before each timed block, so a spinning thread never overlaps
another library's block."""
import importlib
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ukernels.benchmark.shapes import Shape
from ukernels.benchmark.workloads import BATCH, GROUP, Inputs, NotApplicable, gelu_tanh

PEERS = ["numpy", "torch", "onnxruntime", "iree"]
INSTALL = {"numpy": "numpy", "torch": "torch (pip install torch==2.13.0 here: a local CPU build)",
           "onnxruntime": "onnxruntime onnx", "iree": "iree-base-compiler iree-base-runtime"}
_MODULES = {"numpy": ["numpy"], "torch": ["torch"], "onnxruntime": ["onnxruntime", "onnx"],
            "iree": ["iree.compiler", "iree.runtime"]}

Impl = Tuple[str, Callable[[], object]]


def import_module(name: str):
    """importlib.import_module (a seam for tests that simulate a missing peer)."""
    return importlib.import_module(name)


def unavailable(peer: str) -> Optional[str]:
    """None when the peer imports, else why not and the package to install."""
    for mod in _MODULES[peer]:
        try:
            import_module(mod)
        except Exception as exc:  # noqa: BLE001 - any import failure means "not usable here"
            return f"{mod} cannot be imported ({type(exc).__name__}: {exc}); pip install {INSTALL[peer]}"
    return None


def version(peer: str) -> str:
    from importlib import metadata
    for dist in {"iree": ["iree-base-runtime", "iree-base-compiler"]}.get(peer, [peer]):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def build(peer: str, workload: str, inp: Inputs, s: Shape, threads: int) -> List[Impl]:
    fn = _BUILDERS.get((peer, workload))
    if fn is None:
        raise NotApplicable(_NO_IMPL.get((peer, workload), f"{peer} has no implementation of this workload here"))
    return fn(inp, s, threads)


# --- numpy -------------------------------------------------------------------------------------
def _np_matmul(inp, s, t):
    a, b = inp.arrays["a"], inp.arrays["b"]
    return [("numpy a @ b", lambda: a @ b)]


def _np_linear(inp, s, t):
    x, w, bias = inp.arrays["x"], inp.arrays["w"], inp.arrays["bias"]
    wt = np.ascontiguousarray(w.T)
    return [("numpy gelu(x @ W.T + b)", lambda: gelu_tanh(x @ wt + bias))]


def _np_layer(inp, s, t):
    x, w = inp.arrays["x"], inp.arrays["w"]
    wt = np.ascontiguousarray(w.T)
    return [("numpy x @ W.T", lambda: x @ wt)]


def _np_int8(inp, s, t):
    a, b, m = inp.arrays["a"], inp.arrays["b"], inp.meta
    af, bf, mult = a.astype(np.float64), b.astype(np.float64), m["mult"].astype(np.float64)

    def run():  # float64 BLAS is exact for int8 products (numpy's integer matmul is not BLAS)
        return np.clip(np.rint((af @ bf) * mult) + m["zp"], -128, 127).astype(np.int8)
    return [("numpy f64 BLAS + requantize", run)]


def _np_bf16(inp, s, t):
    a, b = inp.arrays["a"], inp.arrays["b"]
    return [("numpy f32 (a, b widened per call)", lambda: a.astype(np.float32) @ b.astype(np.float32))]


def _np_int4(inp, s, t):
    x, w_deq = inp.arrays["x"], inp.arrays["w_deq"]
    wt = np.ascontiguousarray(w_deq.T)
    return [("numpy f32 dequantized weight", lambda: x @ wt)]


def _np_batched(inp, s, t):
    a, b = inp.arrays["a"], inp.arrays["b"]
    return [("numpy np.matmul", lambda: np.matmul(a, b))]


# --- torch ----------------------------------------------------------------------------------------
def _torch(t: int):
    torch = import_module("torch")
    torch.set_num_threads(t)
    return torch


def _inference(torch, fn):
    def call():
        with torch.inference_mode():
            return fn()
    return call


def _torch_matmul(inp, s, t):
    torch = _torch(t)
    a, b = (torch.from_numpy(inp.arrays[k]) for k in ("a", "b"))
    return [("torch.matmul", _inference(torch, lambda: torch.matmul(a, b)))]


def _torch_linear(inp, s, t):
    torch = _torch(t)
    F = torch.nn.functional
    x, w, bias = (torch.from_numpy(inp.arrays[k]) for k in ("x", "w", "bias"))
    return [("torch F.gelu(F.linear)", _inference(torch, lambda: F.gelu(F.linear(x, w, bias))))]


def _torch_layer(inp, s, t):
    torch = _torch(t)
    x, w = (torch.from_numpy(inp.arrays[k]) for k in ("x", "w"))
    return [("torch F.linear", _inference(torch, lambda: torch.nn.functional.linear(x, w)))]


def _torch_int8(inp, s, t):
    torch = _torch(t)
    if torch.backends.quantized.engine not in ("fbgemm", "x86", "onednn"):
        raise NotApplicable(f"torch's quantized engine is {torch.backends.quantized.engine}")
    m = inp.meta
    # torch's quantized Linear takes quint8 activations: the int8 values shifted by 128 with
    # zero point 128 are the same numbers; likewise the output (zero point + 128, shifted back)
    a_u8 = torch.from_numpy((inp.arrays["a"].astype(np.int16) + 128).astype(np.uint8))
    w = torch.from_numpy(inp.arrays["b"].T.copy())
    with warnings.catch_warnings():  # torch 2.13 deprecates quantized tensors (still its int8 CPU linear)
        warnings.simplefilter("ignore")
        qa = torch._make_per_tensor_quantized_tensor(a_u8, float(m["a_scale"]), 128)
        qw = torch._make_per_channel_quantized_tensor(w, torch.from_numpy(m["b_scale"].astype(np.float64)),
                                                      torch.zeros(s.N, dtype=torch.int64), 0)
    lin = torch.ao.nn.quantized.Linear(s.K, s.N, dtype=torch.qint8)
    lin.set_weight_bias(qw, None)
    lin.scale, lin.zero_point = float(m["y_scale"]), int(m["zp"]) + 128
    return [("torch quantized Linear (fbgemm)", _inference(torch, lambda: lin(qa).int_repr().to(torch.int16) - 128))]


def _torch_bf16(inp, s, t):
    torch = _torch(t)
    a = torch.from_numpy(inp.arrays["a"].view(np.int16)).view(torch.bfloat16)
    b = torch.from_numpy(inp.arrays["b"].view(np.int16)).view(torch.bfloat16)
    return [("torch.matmul bf16 (bf16 out)", _inference(torch, lambda: torch.matmul(a, b).float()))]


def _torch_dynamic_int8(inp, s, t, label: str):
    """torch's dynamically quantized int8 Linear (x quantized per call) over the workload's
    dequantized weight ``w_deq``."""
    torch = _torch(t)
    x = torch.from_numpy(inp.arrays["x"])
    lin = torch.nn.Linear(s.K, s.N, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(inp.arrays["w_deq"]))
    with warnings.catch_warnings():  # deprecated in torch 2.13, still its dynamic int8 CPU linear
        warnings.simplefilter("ignore")
        q = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)
    return [(label, _inference(torch, lambda: q(x)))]


def _torch_int4(inp, s, t):
    return _torch_dynamic_int8(inp, s, t, "torch int8 dynamic (no int4 CPU linear)")


def _torch_qlinear(inp, s, t):
    return _torch_dynamic_int8(inp, s, t, "torch int8 dynamic Linear")


def _torch_batched(inp, s, t):
    torch = _torch(t)
    a, b = (torch.from_numpy(inp.arrays[k]) for k in ("a", "b"))
    return [("torch.bmm", _inference(torch, lambda: torch.bmm(a, b)))]


# --- onnxruntime -----------------------------------------------------------------------------
def _ort_session(model, t: int):
    ort = import_module("onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = t, 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _onnx():
    onnx = import_module("onnx")
    return onnx, onnx.helper, onnx.TensorProto, onnx.numpy_helper


def _model(nodes, inputs, outputs, inits, ms=False):
    onnx, helper, TP, nh = _onnx()
    graph = helper.make_graph(nodes, "bench", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 21)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    return helper.make_model(graph, opset_imports=opsets)


def _ort_run(sess, feeds):
    return lambda: sess.run(None, feeds)[0]


def _ort_both_inputs(a: np.ndarray, b: np.ndarray, out_shape, t: int):
    """A MatMul graph of two run-time inputs (2-D or stacked)."""
    _, helper, TP, _ = _onnx()
    m = _model([helper.make_node("MatMul", ["A", "B"], ["Y"])],
               [helper.make_tensor_value_info("A", TP.FLOAT, list(a.shape)),
                helper.make_tensor_value_info("B", TP.FLOAT, list(b.shape))],
               [helper.make_tensor_value_info("Y", TP.FLOAT, list(out_shape))], [])
    return _ort_run(_ort_session(m, t), {"A": a, "B": b})


def _ort_weight_layer(inp, s, t, with_bias_gelu: bool):
    """x @ W^T with W^T an initializer; then + bias and Gelu (opset 20+: the exact, erf form)."""
    _, helper, TP, nh = _onnx()
    x, w = inp.arrays["x"], inp.arrays["w"]
    inits = [nh.from_array(np.ascontiguousarray(w.T), "Wt")]
    nodes = [helper.make_node("MatMul", ["X", "Wt"], ["XW" if with_bias_gelu else "Y"])]
    if with_bias_gelu:
        nodes += [helper.make_node("Add", ["XW", "bias"], ["Z"]), helper.make_node("Gelu", ["Z"], ["Y"])]
        inits.append(nh.from_array(inp.arrays["bias"], "bias"))
    m = _model(nodes, [helper.make_tensor_value_info("X", TP.FLOAT, [s.M, s.K])],
               [helper.make_tensor_value_info("Y", TP.FLOAT, [s.M, s.N])], inits)
    return _ort_run(_ort_session(m, t), {"X": x})


def _ort_matmul(inp, s, t):
    return [("onnxruntime MatMul", _ort_both_inputs(inp.arrays["a"], inp.arrays["b"], (s.M, s.N), t))]


def _ort_linear(inp, s, t):
    return [("onnxruntime MatMul+Add+Gelu", _ort_weight_layer(inp, s, t, True))]


def _ort_layer(inp, s, t):
    return [("onnxruntime MatMul (initializer)", _ort_weight_layer(inp, s, t, False))]


def _ort_int8(inp, s, t):
    _, helper, TP, nh = _onnx()
    a, b, m = inp.arrays["a"], inp.arrays["b"], inp.meta
    node = helper.make_node("QLinearMatMul", ["A", "as", "az", "B", "bs", "bz", "ys", "yz"], ["Y"])
    inits = [nh.from_array(np.array(m["a_scale"], np.float32), "as"), nh.from_array(np.array(0, np.int8), "az"),
             nh.from_array(b, "B"), nh.from_array(m["b_scale"], "bs"), nh.from_array(np.zeros(s.N, np.int8), "bz"),
             nh.from_array(np.array(m["y_scale"], np.float32), "ys"), nh.from_array(np.array(m["zp"], np.int8), "yz")]
    model = _model([node], [helper.make_tensor_value_info("A", TP.INT8, [s.M, s.K])],
                   [helper.make_tensor_value_info("Y", TP.INT8, [s.M, s.N])], inits)
    return [("onnxruntime QLinearMatMul", _ort_run(_ort_session(model, t), {"A": a}))]


def _ort_int4(inp, s, t):
    _, helper, TP, nh = _onnx()
    x, q, scales = inp.arrays["x"], inp.arrays["q"], inp.arrays["scales"]
    u = (q.astype(np.int16) + 8).astype(np.uint8).reshape(s.N, s.K // GROUP, GROUP)
    packed = (u[:, :, 0::2] | (u[:, :, 1::2] << 4)).astype(np.uint8)  # zero point 8 (the default)
    node = helper.make_node("MatMulNBits", ["X", "B", "scales"], ["Y"], domain="com.microsoft", K=s.K, N=s.N,
                            bits=4, block_size=GROUP)
    model = _model([node], [helper.make_tensor_value_info("X", TP.FLOAT, [s.M, s.K])],
                   [helper.make_tensor_value_info("Y", TP.FLOAT, [s.M, s.N])],
                   [nh.from_array(packed, "B"), nh.from_array(scales.reshape(-1), "scales")], ms=True)
    return [("onnxruntime MatMulNBits", _ort_run(_ort_session(model, t), {"X": x}))]


def _ort_qlinear(inp, s, t):
    """com.microsoft DynamicQuantizeMatMul: what onnxruntime's quantize_dynamic makes of a MatMul
    (x quantized per call, int8 weights with per-column scales)."""
    _, helper, TP, nh = _onnx()
    node = helper.make_node("DynamicQuantizeMatMul", ["X", "B", "bs", "bz"], ["Y"], domain="com.microsoft")
    inits = [nh.from_array(np.ascontiguousarray(inp.arrays["q"].T), "B"), nh.from_array(inp.arrays["scales"], "bs"),
             nh.from_array(np.zeros(s.N, np.int8), "bz")]
    model = _model([node], [helper.make_tensor_value_info("X", TP.FLOAT, [s.M, s.K])],
                   [helper.make_tensor_value_info("Y", TP.FLOAT, [s.M, s.N])], inits, ms=True)
    return [("onnxruntime DynamicQuantizeMatMul", _ort_run(_ort_session(model, t), {"X": inp.arrays["x"]}))]


def _ort_batched(inp, s, t):
    return [("onnxruntime MatMul (3-D)", _ort_both_inputs(inp.arrays["a"], inp.arrays["b"], (BATCH, s.M, s.N), t))]


# --- IREE ----------------------------------------------------------------------------------------
_IREE_FLAGS = ["--iree-llvmcpu-target-cpu=host", "--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=all"]
_iree_configs: Dict[int, object] = {}
IREE_MAX_CONSTANT_BYTES = 64 << 20  # larger weights make the MLIR text (hex) too slow to compile
_iree_task_workers: List[int] = []  # set by configure(): the local-task driver's worker count


def configure(threads: List[int]) -> None:
    """Called once before any peer is built, with the run's thread counts. IREE reads its task
    topology from runtime flags when its driver is first created in a process, so it runs one
    worker count per process: the largest requested (its local-sync driver, the other way to
    run on one thread, measured 54 vs 97 GFLOP/s for local-task with 1 worker at 512^3 here)."""
    if not _iree_configs:  # (a driver already made in this process keeps its count)
        _iree_task_workers[:] = [max(threads)]


def _iree_config(t: int):
    """IREE's local-task device with the worker count set by configure(); other thread counts
    are reported as not applicable (with the command that measures them)."""
    rt = import_module("iree.runtime")
    workers = _iree_task_workers[0] if _iree_task_workers else t
    if not _iree_configs:
        _iree_task_workers[:] = [workers]
        rt.flags.parse_flags(f"--task_topology_group_count={workers}")
    if t != workers:
        raise NotApplicable(f"IREE runs one worker count per process (its driver reads it once; here {workers}); "
                            f"measure {t} with --threads {t} --peers iree")
    if t not in _iree_configs:
        _iree_configs[t] = rt.Config("local-task")
    return rt, _iree_configs[t]


def _iree_compile(mlir: str, t: int, fn: str):
    ic = import_module("iree.compiler")
    vmfb = ic.compile_str(mlir, target_backends=["llvm-cpu"], extra_args=_IREE_FLAGS)
    rt, config = _iree_config(t)
    ctx = rt.SystemContext(config=config)
    ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, vmfb))
    return ctx.modules.module[fn]


def _iree_const(arr: np.ndarray) -> str:
    return f'dense<"0x{arr.tobytes().hex().upper()}">'


def _iree_product(s: Shape, fn: str, weight: Optional[np.ndarray] = None,
                  bias: Optional[np.ndarray] = None) -> str:
    """MLIR of ``fn``: x (M x K) @ W (K x N), W the second argument or (``weight``) a constant;
    with ``bias``, + bias then GELU (erf) as one elementwise op after the matmul."""
    X, W, Y = f"tensor<{s.M}x{s.K}xf32>", f"tensor<{s.K}x{s.N}xf32>", f"tensor<{s.M}x{s.N}xf32>"
    if weight is not None and weight.nbytes > IREE_MAX_CONSTANT_BYTES:
        raise NotApplicable(f"weight of {weight.nbytes >> 20} MiB: too large to embed as an MLIR constant here")
    head = "#map = affine_map<(d0, d1) -> (d0, d1)>\n#mapb = affine_map<(d0, d1) -> (d1)>\n" if bias is not None else ""
    args = f"%x: {X}" if weight is not None else f"%x: {X}, %w: {W}"
    body = "" if weight is None else f"  %w = arith.constant {_iree_const(weight)} : {W}\n"
    body += f"""  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : {Y}
  %f = linalg.fill ins(%z : f32) outs(%e : {Y}) -> {Y}
  %m = linalg.matmul ins(%x, %w : {X}, {W}) outs(%f : {Y}) -> {Y}
"""
    if bias is None:
        return f"{head}func.func @{fn}({args}) -> {Y} {{\n{body}  return %m : {Y}\n}}"
    body += f"""  %bias = arith.constant {_iree_const(bias)} : tensor<{s.N}xf32>
  %r = linalg.generic {{indexing_maps = [#map, #mapb, #map], iterator_types = ["parallel", "parallel"]}}
      ins(%m, %bias : {Y}, tensor<{s.N}xf32>) outs(%e : {Y}) {{
    ^bb0(%v: f32, %c: f32, %o: f32):
      %y = arith.addf %v, %c : f32
      %h = arith.constant 0.5 : f32
      %r2 = arith.constant 0.70710678118654752 : f32
      %one = arith.constant 1.0 : f32
      %s = arith.mulf %y, %r2 : f32
      %er = math.erf %s : f32
      %p = arith.addf %er, %one : f32
      %q = arith.mulf %y, %p : f32
      %g = arith.mulf %q, %h : f32
      linalg.yield %g : f32
  }} -> {Y}
"""
    return f"{head}func.func @{fn}({args}) -> {Y} {{\n{body}  return %r : {Y}\n}}"


def _iree_matmul(inp, s, t):
    a, b = inp.arrays["a"], inp.arrays["b"]
    f = _iree_compile(_iree_product(s, "mm"), t, "mm")
    return [("IREE linalg.matmul (data tiling, ukernels)", lambda: f(a, b).to_host())]


def _iree_linear(inp, s, t):
    x, w = inp.arrays["x"], inp.arrays["w"]
    f = _iree_compile(_iree_product(s, "lin", np.ascontiguousarray(w.T), inp.arrays["bias"]), t, "lin")
    return [("IREE matmul+bias+gelu (weights constant)", lambda: f(x).to_host())]


def _iree_layer(inp, s, t):
    x, w = inp.arrays["x"], inp.arrays["w"]
    f = _iree_compile(_iree_product(s, "layer", np.ascontiguousarray(w.T)), t, "layer")
    return [("IREE linalg.matmul (weights constant)", lambda: f(x).to_host())]


# --- decode workloads: every peer rotates through copies of its layer (workloads.py) ----------
def _rotated(builder, per_copy_bytes):
    """A peer builder whose implementation cycles through copies of the layer it builds, as many
    as ukernels' own decode implementation (workloads.decode_copies)."""
    from ukernels.benchmark.workloads import decode_copies, rotating

    def build(inp, s, t):
        copies = [builder(inp, s, t) for _ in range(decode_copies(per_copy_bytes(s)))]
        return [(f"{label} [rotated]", rotating([c[i][1] for c in copies])) for i, (label, _) in enumerate(copies[0])]
    return build


_BUILDERS = {
    ("numpy", "matmul"): _np_matmul, ("numpy", "layer"): _np_layer, ("numpy", "linear"): _np_linear,
    ("numpy", "qlinear"): _np_int4, ("numpy", "int8"): _np_int8, ("numpy", "bf16"): _np_bf16, ("numpy", "int4"): _np_int4,
    ("numpy", "batched"): _np_batched,
    ("torch", "matmul"): _torch_matmul, ("torch", "layer"): _torch_layer, ("torch", "linear"): _torch_linear,
    ("torch", "qlinear"): _torch_qlinear, ("torch", "int8"): _torch_int8, ("torch", "bf16"): _torch_bf16, ("torch", "int4"): _torch_int4,
    ("torch", "batched"): _torch_batched,
    ("onnxruntime", "matmul"): _ort_matmul, ("onnxruntime", "layer"): _ort_layer,
    ("onnxruntime", "qlinear"): _ort_qlinear, ("onnxruntime", "linear"): _ort_linear, ("onnxruntime", "int8"): _ort_int8, ("onnxruntime", "int4"): _ort_int4,
    ("onnxruntime", "batched"): _ort_batched,
    ("iree", "matmul"): _iree_matmul, ("iree", "layer"): _iree_layer, ("iree", "linear"): _iree_linear,
    ("numpy", "decode"): _rotated(_np_int4, lambda s: 4 * s.N * s.K),
    ("numpy", "decode-int8"): _rotated(_np_int4, lambda s: 4 * s.N * s.K),
    ("torch", "decode"): _rotated(_torch_int4, lambda s: s.N * s.K),
    ("torch", "decode-int8"): _rotated(_torch_qlinear, lambda s: s.N * s.K),
    ("onnxruntime", "decode"): _rotated(_ort_int4, lambda s: s.N * s.K // 2),
    ("onnxruntime", "decode-int8"): _rotated(_ort_qlinear, lambda s: s.N * s.K),
}
_NO_IMPL = {
    ("onnxruntime", "bf16"): "onnxruntime's CPU provider has no bfloat16 MatMul",
    ("iree", "int8"): "not wired up for IREE in this benchmark (its f32 matmul, layer and linear are)",
    ("iree", "bf16"): "not wired up for IREE in this benchmark (its f32 matmul, layer and linear are)",
    ("iree", "int4"): "not wired up for IREE in this benchmark (its f32 matmul, layer and linear are)",
    ("iree", "batched"): "not wired up for IREE in this benchmark (its f32 matmul, layer and linear are)",
    ("iree", "decode"): "not wired up for IREE in this benchmark (its f32 matmul, layer and linear are)",
    ("iree", "decode-int8"): "not wired up for IREE in this benchmark (its f32 matmul, layer and linear are)",
}
