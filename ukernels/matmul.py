"""``ukernels.matmul``: validation of the public call and routing to a backend."""
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ukernels import cpu
import ml_dtypes

from ukernels.abi import BF16BF16F32, F32F32F32, ElementTypes, element_types_for, kernel_array, supported_combinations
from ukernels.runtime.dispatch import _auto_uses_codegen, run_matmul, run_small, small_call_key
from ukernels.runtime.plan import native_16bit_float_dot
from ukernels.runtime.threads import get_num_threads
from ukernels import ops as O
from ukernels.runtime.epilogue import ACTIVATIONS, LoweredEpilogue, lower
from ukernels.runtime.fusion import FUSIONS, check_fusion  # noqa: F401 - FUSIONS re-exported for explain

BACKENDS = ("auto", "ukernel", "codegen")
PRECISIONS = (None, "f32", "bf16")
_BF16 = np.dtype(ml_dtypes.bfloat16)


def is_float_dtype(dt: np.dtype) -> bool:
    """numpy floats and ml_dtypes' bfloat16."""
    return dt.kind == "f" or dt == _BF16


def apply_precision(name: str, x: np.ndarray, precision: Optional[str]) -> np.ndarray:
    """``x`` rounded to the compute type ``precision`` asks for (None: unchanged).
    "bf16": round to nearest even to bfloat16 (the bf16 kernels; f32 result);
    "f32": floating inputs of any width computed in float32."""
    if precision is None:
        return x
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if not is_float_dtype(x.dtype):
        raise TypeError(f"precision={precision!r} applies to floating-point inputs; {name} has dtype {x.dtype}")
    return x.astype(np.float32 if precision == "f32" else _BF16, copy=False)


def _matmul_operand(name: str, x, position: int) -> Tuple[np.ndarray, bool]:
    """``x`` as a 2-D kernel operand for ``matmul``, and whether it was 1-D (np.matmul's rule:
    a 1-D a is a row (1, K), a 1-D b a column (K, 1); the added dimension leaves the result).
    Array-likes that are not arrays (lists, tuples, Python scalars) become float32, as in jax."""
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x, dtype=np.float32) if not hasattr(x, "__array__") and not hasattr(
                x, "__array_interface__") else np.asarray(x)
        except Exception as exc:  # noqa: BLE001 - report any conversion failure clearly
            raise TypeError(f"{name} must be a numpy array (or array-like of numbers), got {type(x).__name__}") from exc
    if x.ndim == 0:
        raise ValueError(f"matmul: {name} is a scalar (0-d); matmul needs operands of at least 1 dimension, "
                         "as np.matmul does (scale with * or ukernels.ops.Scale instead)")
    if x.ndim == 1:
        x = x.reshape(1, -1) if position == 0 else x.reshape(-1, 1)
        return _as_operand(name, x), True
    if x.ndim > 2:
        return kernel_array(x), False
    return _as_operand(name, x), False


def _batch_stride(shape: Tuple[int, ...], strides: Tuple[int, ...]) -> Optional[int]:
    """The one stride that walks these batch dimensions in order (0: all broadcast), or None."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if all(s == 0 for _, s in dims):
        return 0
    if all(dims[i][1] == dims[i + 1][1] * dims[i + 1][0] for i in range(len(dims) - 1)):
        return dims[-1][1]
    return None


def _stack(x: np.ndarray, batch_shape: Tuple[int, ...]) -> np.ndarray:
    """x broadcast to batch_shape + x's matrix shape, as a (B, rows, cols) view with one batch
    stride (0 when x is shared by every item); copied only when its batch dimensions cannot
    be walked with a single stride."""
    x = np.broadcast_to(x, tuple(batch_shape) + x.shape[-2:])
    B = int(np.prod(batch_shape, dtype=np.int64))
    stride = _batch_stride(x.shape[:-2], x.strides[:-2])
    if stride is None:
        x = np.ascontiguousarray(x)
        stride = x.strides[-2] * x.shape[-2]
    return np.lib.stride_tricks.as_strided(x, (B,) + x.shape[-2:], (stride,) + x.strides[-2:], writeable=False)


def _as_operand(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # noqa: BLE001 - report any conversion failure clearly
            raise TypeError(f"{name} must be a numpy array (or array-like), got {type(x).__name__}") from exc
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (got ndim={x.ndim}, shape {x.shape}); "
                         f"reshape it, e.g. {name}.reshape(1, -1) for a single row")
    return kernel_array(x)


def element_types_of(a_dtype: np.dtype, b_dtype: np.dtype, names=("a", "b")) -> ElementTypes:
    """The triple for these input dtypes; TypeError listing the supported ones otherwise."""
    types = element_types_for(a_dtype, b_dtype)
    if types is not None:
        return types
    x, y = names
    hint = " or pass precision='f32' (or 'bf16')" if is_float_dtype(a_dtype) and is_float_dtype(b_dtype) else ""
    if a_dtype != b_dtype:
        raise TypeError(f"{x} and {y} must have the same dtype (or be uint8 x int8), got {x}.dtype={a_dtype} and "
                        f"{y}.dtype={b_dtype}; supported: {supported_combinations()}. Convert one, e.g. "
                        f"{y}.astype({x}.dtype){hint}")
    raise TypeError(f"unsupported dtype {a_dtype} for {x} and {y}; supported: {supported_combinations()}. "
                    f"Convert with .astype(np.float32) (or np.int8 for quantized data){hint}")


def shorthand_ops(bias, activation: Optional[str]) -> List[O.EpilogueOp]:
    """The ops that ``bias=`` / ``activation=`` stand for (bias first)."""
    ops: List[O.EpilogueOp] = []
    if bias is not None:
        ops.append(O.BiasAdd(bias))
    if activation is not None:
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {[None, *ACTIVATIONS]}, got {activation!r}")
        ops.append(ACTIVATIONS[activation])
    return ops


def build_epilogue(types: ElementTypes, M: int, N: int, bias, activation, epilogue: Sequence[O.EpilogueOp],
                   out_dtype, prefix: Sequence[O.EpilogueOp] = ()) -> LoweredEpilogue:
    """Validates the shorthands + ``epilogue`` and lowers them (errors name the argument)."""
    if isinstance(epilogue, O.EpilogueOp) or not isinstance(epilogue, (list, tuple)):
        raise TypeError(f"epilogue must be a list or tuple of ukernels.ops objects, got {type(epilogue).__name__}")
    short = shorthand_ops(bias, activation)
    labels = [f"dequantization ({type(op).__name__})" for op in prefix]
    labels += (["bias"] if bias is not None else []) + (["activation"] if activation is not None else [])
    labels += [f"epilogue[{i}] ({type(op).__name__})" for i, op in enumerate(epilogue)]
    return lower(list(prefix) + short + list(epilogue), types, M, N, out_dtype, labels)


def _typed(a: np.ndarray, b: np.ndarray, precision: Optional[str]) -> Tuple[np.ndarray, np.ndarray, ElementTypes]:
    """The operands rounded to ``precision`` (if any) and their element-type triple (TypeError
    listing the supported ones otherwise)."""
    if precision is not None:
        a = apply_precision("a", a, precision)
        b = apply_precision("b", b, precision)
    return a, b, element_types_for(a.dtype, b.dtype) or element_types_of(a.dtype, b.dtype)


def _fused_bf16_rounding(a: np.ndarray, b: np.ndarray, precision: Optional[str],
                         backend: str) -> Optional[ElementTypes]:
    """BF16BF16F32 when precision="bf16" on float32 operands can round while packing: the
    handwritten ukernels on a CPU with bf16 dot products (vdpbf16ps). Else None: the operands
    are rounded into copies first (the result is the same: both round to nearest even, and
    vdpbf16ps flushes subnormals either way)."""
    if (precision != "bf16" or a.dtype != np.float32 or b.dtype != np.float32
            or backend not in ("auto", "ukernel")):
        return None
    isa = cpu.active_isa()
    if not native_16bit_float_dot(BF16BF16F32, isa):
        return None
    if backend == "auto" and _auto_uses_codegen(BF16BF16F32, a.shape[0], b.shape[1], a.shape[1], isa,
                                                get_num_threads()):
        return None  # a generated kernel is listed or tuned for this shape: it runs on rounded copies
    return BF16BF16F32


def _check_out(out, shape: Tuple[int, ...], dtype: np.dtype) -> None:
    """TypeError/ValueError unless out is a writable array of this shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, but the result is {dtype} (pass out_dtype= to choose another "
                        f"result type, or an out array of {dtype})")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


def _batched_matmul(a, b, a_vec, b_vec, bias, activation, epilogue, out_dtype, backend, precision, out,
                    fusion="auto"):
    """np.matmul's stacks: leading dimensions broadcast, one dispatch for all items."""
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"shapes do not match: a has shape {a.shape} and b has shape {b.shape}; a's last "
                         f"dimension ({a.shape[-1]}) must equal b's second-to-last ({b.shape[-2]})")
    try:
        batch_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"the leading (batch) dimensions of a {a.shape[:-2]} and b {b.shape[:-2]} do not "
                         "broadcast together") from None
    a, b, types = _typed(a, b, precision)
    M, N = a.shape[-2], b.shape[-1]
    # A Residual with batch dimensions (broadcasting against the result's): lowered on item 0's
    # (M, N) view, its operand then walked across items with one batch stride.
    stacked = {}
    if isinstance(epilogue, (list, tuple)):
        epilogue = list(epilogue)
        for i, op in enumerate(epilogue):
            if isinstance(op, O.Residual) and np.ndim(op.residual) > 2:
                r = np.asarray(op.residual)
                try:
                    r3 = kernel_array(_stack(r, batch_shape))
                except ValueError:
                    raise ValueError(f"epilogue[{i}] (Residual): shape {r.shape} does not broadcast to the result's "
                                     f"{tuple(batch_shape) + (M, N)}") from None
                stacked[i] = r3
                epilogue[i] = O.Residual(r3[0])
    lowered = build_epilogue(types, M, N, bias, activation, epilogue, out_dtype)
    for r3 in stacked.values():
        for op in lowered.ops:
            if op.operand is not None and op.operand.ctypes.data == r3[0].ctypes.data:
                op.batch_stride = r3.strides[0] // r3.itemsize
    a3, b3 = _stack(a, batch_shape), _stack(b, batch_shape)
    full = tuple(batch_shape) + (M, N)
    shape = tuple(batch_shape) + tuple(n for n, vec in ((M, a_vec), (N, b_vec)) if not vec)
    out3 = None
    if out is not None:
        _check_out(out, shape, lowered.out_dtype)
        view = out.reshape(full) if (a_vec or b_vec) else out
        stride = _batch_stride(view.shape[:-2], view.strides[:-2]) if np.shares_memory(view, out) else None
        if stride is not None and stride != 0 or len(batch_shape) == 0:
            B = int(np.prod(batch_shape, dtype=np.int64))
            out3 = np.lib.stride_tricks.as_strided(view, (B, M, N), (stride or 0,) + view.strides[-2:])
    res = run_matmul(a3, b3, types, lowered, cpu.active_isa(), backend, out=out3, fusion=fusion)
    if out is not None:
        if out3 is None:
            np.copyto(out, res.reshape(shape))
        return out
    return res.reshape(shape)


def matmul(a: np.ndarray, b: np.ndarray, *, bias: Optional[np.ndarray] = None,
           activation: Optional[str] = None, epilogue: Sequence[O.EpilogueOp] = (),
           out_dtype=None, backend: str = "auto", precision: Optional[str] = None,
           out: Optional[np.ndarray] = None, fusion: str = "auto") -> np.ndarray:
    """``activation(a @ b + bias)`` computed with packed tiles and one ukernel call per tile.

    Args:
        a: (M, K) array, or (K,) (np.matmul's rule: a row, the M dimension then left out of
            the result; likewise a (K,) b is a column). Python lists and other array-likes
            without a dtype become float32. Any strides or memory order; never modified. Supported
            dtype pairs (a x b -> accumulator): float32 x float32 -> float32,
            float16 x float16 -> float32, bfloat16 x bfloat16 -> float32 (ml_dtypes),
            int8 x int8 -> int32, int16 x int16 -> int32, uint8 x int8 -> int32.
        b: (K, N) array of a matching dtype.
        bias: optional 1-D array of length N added to every row (float32 for
            float32 inputs, int32 for int8 inputs).
        activation: None, ``"relu"`` or ``"gelu"`` (erf form). Shorthands for
            ``epilogue=[BiasAdd(bias), Relu() | Gelu()]``, applied before ``epilogue``.
        epilogue: ops from ``ukernels.ops`` applied in order to each output tile in
            cache (bias, residual, scale, clamp, activations, requantization).
        out_dtype: the result dtype; default: float32 for float results, int32 for
            integer inputs without float ops, the Requantize dtype after Requantize.
            int32 results may be cast to float32; float results may be written as
            float16 or bfloat16 (rounded once from the f32 accumulator, to nearest
            even; NaN/Inf as IEEE).
        backend: ``"ukernel"`` (handwritten C kernels), ``"codegen"`` (a kernel
            generated from the Jinja2 templates for this tile and ISA, compiled on
            first use and cached on disk) or ``"auto"`` (a generated kernel when one is
            pre-generated for this shape or the shape was tuned with
            ``ukernels.codegen.tune``, else the handwritten kernels).
        precision: None (the inputs' own types), ``"bf16"`` (floating inputs rounded
            to bfloat16, nearest even, then the bf16 kernels: ~half the input
            precision for up to twice the speed where the CPU has bf16 dot products;
            float32 result) or ``"f32"`` (floating inputs of any width in float32).
        out: optional array of the result's shape and dtype to write into (any strides; it
            may not overlap a or b partially -- overlapping ones are handled through a
            temporary, as numpy does); returned.
        fusion: where the epilogue (bias, activation, ``epilogue``, the final cast) runs:
            ``"tile"`` -- after each ukernel call, on the finished tile while it is in L1
            (both backends); ``"register"`` -- inside a generated kernel rendered for this op
            list, on the accumulator registers at the last K block, which then stores the
            final type itself (codegen only: implies ``backend="codegen"``); ``"auto"`` --
            tile-level unless ``ukernels.codegen.tune(..., epilogue=...)`` measured
            register-level faster for this shape and op list. Exact ops give identical bits
            either way; ``explain`` says which a call uses and why.

    Returns:
        ``out``, or a new C-contiguous (M, N) array of ``out_dtype`` ((N,) / (M,) / a 0-d
        value for 1-D operands, as np.matmul); int32 results wrap on overflow, like numpy.

    Raises:
        ValueError: wrong ndim, mismatched shapes, bad bias length, unknown
            activation, backend or fusion (``fusion="register"`` with ``backend="ukernel"``),
            or an invalid ``UKERNELS_ISA``.
        TypeError: unsupported or mixed dtypes (the message lists the supported
            ones), bias of the wrong dtype.
        ukernels.codegen.CodegenError: ``backend="codegen"`` and no C compiler, or
            the compiler rejected the kernel (the message names the command and log).
    """
    small_key = None
    if (type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2 and bias is None
            and activation is None and not epilogue and out_dtype is None
            and (backend == "auto" or backend == "ukernel") and precision is None and out is None
            and fusion != "register"):
        small_key = small_call_key(a, b, backend)  # a plain call: replayed if one like it ran before
        if small_key is not None:
            res = run_small(small_key, a, b)
            if res is not None:
                return res
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    check_fusion(fusion, backend)
    if fusion == "register":
        backend = "codegen"
    a_in, b_in = a, b
    a, a_vec = _matmul_operand("a", a, 0)
    b, b_vec = _matmul_operand("b", b, 1)
    if a is not a_in or b is not b_in:
        small_key = None  # copied for the C side (misaligned, byte-swapped): not replayable
    if a.ndim > 2 or b.ndim > 2:
        return _batched_matmul(a, b, a_vec, b_vec, bias, activation, epilogue, out_dtype, backend, precision, out,
                               fusion)
    if a.shape[1] != b.shape[0]:
        sa = f"({a.size},)" if a_vec else str(a.shape)
        sb = f"({b.size},)" if b_vec else str(b.shape)
        raise ValueError(f"shapes do not match: a has shape {sa} and b has shape {sb}; a's last dimension "
                         f"(K={a.shape[1]}) must equal b's {'only' if b_vec else 'first'} dimension ({b.shape[0]})")
    narrow_to = _fused_bf16_rounding(a, b, precision, backend)
    if narrow_to is not None:
        types = F32F32F32  # rounded to bf16 by the packs (no rounded copies)
    else:
        a, b, types = _typed(a, b, precision)
    lowered = build_epilogue(types, a.shape[0], b.shape[1], bias, activation, epilogue, out_dtype)
    shape = tuple(n for n, vec in ((a.shape[0], a_vec), (b.shape[1], b_vec)) if not vec)
    out2 = None
    if out is not None:
        _check_out(out, shape, lowered.out_dtype)
        out2 = out.reshape(a.shape[0], b.shape[1]) if out.ndim < 2 else out  # a view: 1-D and 0-d arrays
    res = run_matmul(a, b, types, lowered, cpu.active_isa(), backend, out=out2, narrow_to=narrow_to,
                     small_key=small_key, fusion=fusion)
    if out is not None:
        return out
    if a_vec or b_vec:
        res = res.reshape(shape)
        return res[()] if res.ndim == 0 else res
    return res
