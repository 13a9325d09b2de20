"""``ukernels.matmul``: validation of the public call and routing to a backend."""
from typing import List, Optional, Sequence

import numpy as np

from ukernels import cpu
from ukernels.abi import ElementTypes, element_types_for, kernel_array
from ukernels.runtime.dispatch import run_matmul
from ukernels import ops as O
from ukernels.runtime.epilogue import ACTIVATIONS, LoweredEpilogue, lower

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
    return kernel_array(x)


def _element_types(a: np.ndarray, b: np.ndarray) -> ElementTypes:
    types = element_types_for(a.dtype, b.dtype)
    if types is not None:
        return types
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must have the same dtype, got a.dtype={a.dtype} and b.dtype={b.dtype}; "
                        f"supported: {SUPPORTED}. Convert one, e.g. b.astype(a.dtype)")
    raise TypeError(f"unsupported dtype {a.dtype} for a and b; supported: {SUPPORTED}. "
                    f"Convert with .astype(np.float32) (or np.int8 for quantized data)")


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
                   out_dtype) -> LoweredEpilogue:
    """Validates the shorthands + ``epilogue`` and lowers them (errors name the argument)."""
    if isinstance(epilogue, O.EpilogueOp) or not isinstance(epilogue, (list, tuple)):
        raise TypeError(f"epilogue must be a list or tuple of ukernels.ops objects, got {type(epilogue).__name__}")
    short = shorthand_ops(bias, activation)
    labels = (["bias"] if bias is not None else []) + (["activation"] if activation is not None else [])
    labels += [f"epilogue[{i}] ({type(op).__name__})" for i, op in enumerate(epilogue)]
    return lower(short + list(epilogue), types, M, N, out_dtype, labels)


def matmul(a: np.ndarray, b: np.ndarray, *, bias: Optional[np.ndarray] = None,
           activation: Optional[str] = None, epilogue: Sequence[O.EpilogueOp] = (),
           out_dtype=None, backend: str = "auto") -> np.ndarray:
    """``activation(a @ b + bias)`` computed with packed tiles and one ukernel call per tile.

    Args:
        a: (M, K) array, float32 or int8. Any strides or memory order; never modified.
        b: (K, N) array of the same dtype.
        bias: optional 1-D array of length N added to every row (float32 for
            float32 inputs, int32 for int8 inputs).
        activation: None, ``"relu"`` or ``"gelu"`` (erf form). Shorthands for
            ``epilogue=[BiasAdd(bias), Relu() | Gelu()]``, applied before ``epilogue``.
        epilogue: ops from ``ukernels.ops`` applied in order to each output tile in
            cache (bias, residual, scale, clamp, activations, requantization).
        out_dtype: the result dtype; default: float32 for float results, int32 for
            int8 inputs without float ops, the Requantize dtype after Requantize.
            int32 results may be cast to float32.
        backend: ``"ukernel"`` (handwritten C kernels), ``"codegen"`` (a kernel
            generated from the Jinja2 templates for this tile and ISA, compiled on
            first use and cached on disk) or ``"auto"`` (a generated kernel when one is
            pre-generated for this shape or the shape was tuned with
            ``ukernels.codegen.tune``, else the handwritten kernels).

    Returns:
        A new C-contiguous (M, N) array of ``out_dtype`` (int32 results wrap on
        overflow, like numpy).

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
    lowered = build_epilogue(types, a.shape[0], b.shape[1], bias, activation, epilogue, out_dtype)
    return run_matmul(a, b, types, lowered, cpu.active_isa(), backend)
