"""``ukernels.matmul``: validation of the public call and routing to a backend."""
from typing import List, Optional

import numpy as np

from ukernels import cpu
from ukernels._lib import lib
from ukernels.abi import ElementTypes, element_types_for
from ukernels.runtime.dispatch import run_matmul
from ukernels.runtime.epilogue import ACTIVATIONS, FLOAT_ONLY, EpilogueOp

BACKENDS = ("auto", "ukernel", "codegen")
SUPPORTED = "float32 x float32 -> float32 or int8 x int8 -> int32"


def _as_operand(name: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:  # noqa: BLE001 - report any conversion failure clearly
            raise TypeError(f"{name} must be a numpy array (or array-like), got {type(x).__name__}") from exc
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (got ndim={x.ndim}, shape {x.shape}); "
                         f"reshape it, e.g. {name}.reshape(1, -1) for a single row")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))  # byte order only: lossless
    isz = x.itemsize
    if not x.flags.aligned or x.strides[0] % isz or x.strides[1] % isz:
        x = np.ascontiguousarray(x)  # the C side needs whole-element strides
    return x


def _element_types(a: np.ndarray, b: np.ndarray) -> ElementTypes:
    types = element_types_for(a.dtype, b.dtype)
    if types is not None:
        return types
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype, got a.dtype={a.dtype} and b.dtype={b.dtype}; "
                        f"supported: {SUPPORTED}. Convert one, e.g. b.astype(a.dtype)")
    raise TypeError(f"unsupported dtype {a.dtype} for a and b; supported: {SUPPORTED}. "
                    f"Convert with .astype(np.float32) (or np.int8 for quantized data)")


def _epilogue(types: ElementTypes, N: int, bias, activation: Optional[str]) -> List[EpilogueOp]:
    ops: List[EpilogueOp] = []
    if bias is not None:
        bias_arr = np.asarray(bias)
        if bias_arr.ndim != 1 or bias_arr.shape[0] != N:
            raise ValueError(f"bias must be 1-D of length N={N} (b.shape[1]), got shape {bias_arr.shape}")
        if bias_arr.dtype != types.acc:
            raise TypeError(f"bias must have dtype {types.acc} for {types.lhs} x {types.rhs} -> {types.acc}, "
                            f"got {bias_arr.dtype}; convert with bias.astype(np.{types.acc.name})")
        if not bias_arr.dtype.isnative or not bias_arr.flags.aligned or bias_arr.strides[0] % bias_arr.itemsize:
            bias_arr = np.ascontiguousarray(bias_arr, dtype=types.acc)
        ops.append(EpilogueOp(lib.UK_EPI_BIAS_COLUMN, bias_arr))
    if activation is not None:
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {[None, *ACTIVATIONS]}, got {activation!r}")
        kind = ACTIVATIONS[activation]
        if kind in FLOAT_ONLY and types.acc.kind != "f":
            raise ValueError(f"activation={activation!r} needs a float result; {types.lhs} x {types.rhs} -> "
                             f"{types.acc} supports activation None or 'relu'")
        ops.append(EpilogueOp(kind))
    return ops


def matmul(a: np.ndarray, b: np.ndarray, *, bias: Optional[np.ndarray] = None,
           activation: Optional[str] = None, backend: str = "auto") -> np.ndarray:
    """``activation(a @ b + bias)`` computed with packed tiles and one ukernel call per tile.

    Args:
        a: (M, K) array, float32 or int8. Any strides or memory order; never modified.
        b: (K, N) array of the same dtype.
        bias: optional 1-D array of length N added to every row (float32 for
            float32 inputs, int32 for int8 inputs).
        activation: None, ``"relu"`` or ``"gelu"`` (erf form; float32 only).
        backend: ``"ukernel"`` (handwritten C kernels), ``"codegen"`` (a kernel
            generated from the Jinja2 templates for this tile and ISA, compiled on
            first use and cached on disk) or ``"auto"`` (a generated kernel when one is
            pre-generated for this shape or the shape was tuned with
            ``ukernels.codegen.tune``, else the handwritten kernels).

    Returns:
        A new C-contiguous (M, N) array: float32 for float32 inputs, int32
        (wrapping on overflow, like numpy) for int8 inputs.

    Raises:
        ValueError: wrong ndim, mismatched shapes, bad bias length, unknown
            activation or backend, or an invalid ``UKERNELS_ISA``.
        TypeError: unsupported or mixed dtypes, bias of the wrong dtype.
        ukernels.codegen.CodegenError: ``backend="codegen"`` and no C compiler, or
            the compiler rejected the kernel (the message names the command and log).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    a = _as_operand("a", a)
    b = _as_operand("b", b)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"shapes do not match: a has shape {a.shape} (M, K) and b has shape {b.shape} (K, N); "
                         f"a.shape[1] must equal b.shape[0]")
    types = _element_types(a, b)
    ops = _epilogue(types, b.shape[1], bias, activation)
    return run_matmul(a, b, types, ops, cpu.active_isa(), backend)
