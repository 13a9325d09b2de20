"""Epilogue ops for ``ukernels.matmul(..., epilogue=[...])`` and ``ukernels.Linear``.

They run in order on each output tile while it is in cache, before the
write-back. Semantics, with ``x`` the value so far at output element (i, j):

========================  =====================================================
``BiasAdd(b)``            x + b[j]  (``axis="row"``: x + b[i])
``Residual(r)``           x + r[i, j]  (r: M x N, any strides)
``Scale(s)``              x * s  (scalar, or per output channel s[j]; axis="row": s[i])
``Clamp(lo, hi)``         min(max(x, lo), hi)  (either bound may be None)
``Relu()`` / ``Relu6()``  max(x, 0) / min(max(x, 0), 6)
``Gelu(approximate)``     "none": x/2 (1 + erf(x/sqrt 2)); "tanh": the tanh form
``Silu()``                x * sigmoid(x)
``Sigmoid()`` / ``Tanh()``
``Requantize(s, zp, dt)`` clamp(rint(x * s) + zp, dt.min, dt.max) as int8/uint8;
                          s scalar or per channel; round half to even; NaN -> zp
========================  =====================================================

Integer accumulators (int8 x int8 -> int32) stay int32 through BiasAdd (int32
operand), Residual (int32), Relu, Relu6 and Clamp (integer bounds); the first
float op (Scale, Gelu, Silu, Sigmoid, Tanh, Requantize, or a float operand is
*not* accepted: convert explicitly) converts them to float32 exactly as
``acc.astype(np.float32)`` would. ``Requantize`` must be the last op.
"""
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

ArrayLike = Union[np.ndarray, float, int]


class EpilogueOp:
    """Base class of the ops (see the module documentation)."""

    __slots__ = ()


@dataclass(frozen=True, eq=False)
class BiasAdd(EpilogueOp):
    """Add ``bias``: per output column (length N, the default) or per row (length M)."""

    bias: ArrayLike
    axis: str = "column"


@dataclass(frozen=True, eq=False)
class Residual(EpilogueOp):
    """Add an M x N ``residual`` operand (any strides)."""

    residual: ArrayLike


@dataclass(frozen=True, eq=False)
class Scale(EpilogueOp):
    """Multiply by ``scale``: a scalar, or a length-N array (per output channel); with
    ``axis="row"`` a length-M array (per output row, e.g. per-row activation scales)."""

    scale: ArrayLike
    axis: str = "column"


@dataclass(frozen=True)
class Clamp(EpilogueOp):
    """Clamp to [lo, hi]; None leaves that side open."""

    lo: Optional[float] = None
    hi: Optional[float] = None


@dataclass(frozen=True)
class Relu(EpilogueOp):
    """max(x, 0)."""


@dataclass(frozen=True)
class Relu6(EpilogueOp):
    """min(max(x, 0), 6)."""


@dataclass(frozen=True)
class Gelu(EpilogueOp):
    """GELU, exact erf form (``approximate="none"``) or the tanh approximation."""

    approximate: str = "none"


@dataclass(frozen=True)
class Silu(EpilogueOp):
    """x * sigmoid(x)."""


@dataclass(frozen=True)
class Sigmoid(EpilogueOp):
    """1 / (1 + exp(-x))."""


@dataclass(frozen=True)
class Tanh(EpilogueOp):
    """tanh(x)."""


@dataclass(frozen=True, eq=False)
class Requantize(EpilogueOp):
    """Quantize to ``dtype`` (np.int8 or np.uint8): clamp(rint(x * scale) + zero_point).

    ``scale`` is the multiplier from accumulator units to output units
    (e.g. input_scale * weight_scale / output_scale), a scalar or per output
    channel (length N)."""

    scale: ArrayLike
    zero_point: int = 0
    dtype: type = np.int8


__all__ = ["EpilogueOp", "BiasAdd", "Residual", "Scale", "Clamp", "Relu", "Relu6", "Gelu", "Silu", "Sigmoid",
           "Tanh", "Requantize"]
