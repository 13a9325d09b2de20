"""Lowering the public epilogue ops (``ukernels.ops``) to the C op list the
dispatch applies per tile, with validation of every operand and of the
value domain (int32 accumulator -> float -> quantized). Adding an op means a
``UK_EPI_*`` kind in csrc/uk_runtime.h, its loop in csrc/uk_epilogue_impl.inl
and a case here; the ukernels never change."""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import ml_dtypes
import numpy as np

from ukernels import ops as O
from ukernels._lib import ffi, lib
from ukernels.abi import ElementTypes, address_of, kernel_array

ACTIVATIONS = {"relu": O.Relu(), "gelu": O.Gelu()}

_OUT_TYPES = {np.dtype(np.float32): lib.UK_OUT_F32, np.dtype(np.int32): lib.UK_OUT_S32,
              np.dtype(np.int8): lib.UK_OUT_S8, np.dtype(np.uint8): lib.UK_OUT_U8,
              np.dtype(np.float16): lib.UK_OUT_F16, np.dtype(ml_dtypes.bfloat16): lib.UK_OUT_BF16}
_NARROW_FLOATS = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


@dataclass
class CEpilogueOp:
    """One lowered op: a UK_EPI_* kind, its domain, operand and scalars."""

    kind: int
    is_int: bool = False
    operand: Optional[np.ndarray] = None
    stride0: int = 0
    stride1: int = 0
    p: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    batch_stride: int = 0  # batched calls: elements between the items' operands (0: shared)


@dataclass
class LoweredEpilogue:
    ops: List[CEpilogueOp]
    out_dtype: np.dtype
    out_type: int


def _operand(name: str, value, shape: Tuple[int, ...], dtype: np.dtype, hint: str,
             what: Optional[str] = None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{name} must be {what or 'of shape %s' % (shape,)} ({hint}), got shape {arr.shape}")
    if arr.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} here ({hint}), got {arr.dtype}; "
                        f"convert with .astype(np.{dtype.name})")
    return kernel_array(arr)


def _per_channel_or_scalar(name: str, value, N: int, axis: str = "column") -> Tuple[Optional[np.ndarray], float]:
    if np.ndim(value) == 0:
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
        return None, v
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != N:
        what = "N={} (per output channel)".format(N) if axis == "column" else "M={} (per output row)".format(N)
        raise ValueError(f"{name} must be a scalar or 1-D of length {what}, got shape {arr.shape}")
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be floating point, got {arr.dtype}")
    return kernel_array(np.ascontiguousarray(arr, dtype=np.float32)), 0.0


def lower(ops: Sequence[O.EpilogueOp], types: ElementTypes, M: int, N: int,
          out_dtype=None, labels: Optional[Sequence[str]] = None) -> LoweredEpilogue:
    """Validate ``ops`` for an M x N result with ``types`` and lower them.
    ``labels[i]`` names op i in errors (default ``epilogue[i] (Type)``); the
    label "bias" (the ``bias=`` shorthand) names its operand directly."""
    domain = "int" if types.acc.kind == "i" else "float"
    acc_dtype = types.acc
    quant_dtype: Optional[np.dtype] = None
    out: List[CEpilogueOp] = []

    def to_float():
        nonlocal domain
        if domain == "int":
            out.append(CEpilogueOp(lib.UK_EPI_TO_FLOAT, True))
            domain = "float"

    for i, op in enumerate(ops):
        where = labels[i] if labels is not None else f"epilogue[{i}] ({type(op).__name__})"
        if quant_dtype is not None:
            raise ValueError(f"{where}: Requantize must be the last epilogue op")
        if not isinstance(op, O.EpilogueOp):
            raise TypeError(f"epilogue[{i}] must be an op from ukernels.ops (BiasAdd, Relu, ...), got {op!r}")
        is_int = domain == "int"
        value_dtype = np.dtype(np.int32) if is_int else np.dtype(np.float32)
        if isinstance(op, O.BiasAdd):
            if op.axis not in ("column", "row"):
                raise ValueError(f"{where}: axis must be 'column' or 'row', got {op.axis!r}")
            n = N if op.axis == "column" else M
            hint = f"one value per output {op.axis}; {'int32 while the int8 accumulator is int32' if is_int else 'float32'}"
            b = _operand(where if where == "bias" else f"{where}.bias", op.bias, (n,), value_dtype, hint,
                         f"1-D of length {'N' if op.axis == 'column' else 'M'}={n}")
            kind = lib.UK_EPI_BIAS_COLUMN if op.axis == "column" else lib.UK_EPI_BIAS_ROW
            out.append(CEpilogueOp(kind, is_int, b, b.strides[0] // b.itemsize))
        elif isinstance(op, O.Residual):
            r = _operand(f"{where}.residual", op.residual, (M, N), value_dtype,
                         "the full M x N output; int32 while the accumulator is int32" if is_int else "float32")
            out.append(CEpilogueOp(lib.UK_EPI_RESIDUAL, is_int, r, r.strides[0] // r.itemsize,
                                   r.strides[1] // r.itemsize))
        elif isinstance(op, (O.Relu, O.Relu6)):
            out.append(CEpilogueOp(lib.UK_EPI_RELU if isinstance(op, O.Relu) else lib.UK_EPI_RELU6, is_int))
        elif isinstance(op, O.Clamp):
            lo = -math.inf if op.lo is None else float(op.lo)
            hi = math.inf if op.hi is None else float(op.hi)
            if not lo <= hi:
                raise ValueError(f"{where}: lo must be <= hi, got lo={op.lo}, hi={op.hi}")
            has = (0.0 if op.lo is None else 1.0, 0.0 if op.hi is None else 1.0)
            if is_int:
                for nm, v in (("lo", op.lo), ("hi", op.hi)):
                    if v is not None and not (float(v).is_integer() and abs(float(v)) <= 2**24):
                        raise ValueError(f"{where}: {nm}={v!r} must be an integer within +-2^24 on the int32 "
                                         "accumulator (or Scale first to clamp in float)")
                lo, hi = (0.0 if op.lo is None else lo), (0.0 if op.hi is None else hi)
            out.append(CEpilogueOp(lib.UK_EPI_CLAMP, is_int, p=(lo, hi, *has)))
        elif isinstance(op, O.Scale):
            to_float()
            if op.axis not in ("column", "row"):
                raise ValueError(f"{where}: axis must be 'column' or 'row', got {op.axis!r}")
            arr, v = _per_channel_or_scalar(f"{where}.scale", op.scale, N if op.axis == "column" else M,
                                            op.axis)
            if op.axis == "row" and arr is not None:
                out.append(CEpilogueOp(lib.UK_EPI_SCALE_ROW, False, arr, 1))
            else:
                out.append(CEpilogueOp(lib.UK_EPI_SCALE, False, arr, 1, p=(v, 0.0, 0.0, 0.0)))
        elif isinstance(op, O.Gelu):
            if op.approximate not in ("none", "tanh"):
                raise ValueError(f"{where}: approximate must be 'none' or 'tanh', got {op.approximate!r}")
            to_float()
            out.append(CEpilogueOp(lib.UK_EPI_GELU_ERF if op.approximate == "none" else lib.UK_EPI_GELU_TANH))
        elif isinstance(op, (O.Silu, O.Sigmoid, O.Tanh)):
            to_float()
            kind = {O.Silu: lib.UK_EPI_SILU, O.Sigmoid: lib.UK_EPI_SIGMOID, O.Tanh: lib.UK_EPI_TANH}[type(op)]
            out.append(CEpilogueOp(kind))
        elif isinstance(op, O.Requantize):
            qd = np.dtype(op.dtype)
            if qd not in (np.dtype(np.int8), np.dtype(np.uint8)):
                raise TypeError(f"{where}: dtype must be np.int8 or np.uint8, got {qd}")
            info = np.iinfo(qd)
            zp = op.zero_point
            if isinstance(zp, bool) or not isinstance(zp, (int, np.integer)) or not info.min <= zp <= info.max:
                raise ValueError(f"{where}: zero_point must be an int in [{info.min}, {info.max}] for {qd}, got {zp!r}")
            to_float()
            arr, v = _per_channel_or_scalar(f"{where}.scale", op.scale, N)
            out.append(CEpilogueOp(lib.UK_EPI_REQUANTIZE, False, arr, 1,
                                   p=(v, float(zp), float(info.min), float(info.max))))
            quant_dtype = qd
            domain = "int"
        else:
            raise TypeError(f"{where}: unknown epilogue op {op!r}")

    natural = quant_dtype if quant_dtype is not None else (np.dtype(np.float32) if domain == "float" else acc_dtype)
    want = natural if out_dtype is None else np.dtype(out_dtype)
    if want != natural:
        if quant_dtype is None and domain == "int" and want == np.dtype(np.float32):
            to_float()  # the final cast
        elif quant_dtype is None and domain == "float" and want in _NARROW_FLOATS:
            pass  # the write-back rounds the f32 result once, to nearest even
        elif want in (np.dtype(np.int8), np.dtype(np.uint8)) and quant_dtype is None:
            raise TypeError(f"out_dtype={want}: add Requantize(scale, zero_point, dtype=np.{want.name}) "
                            "as the last epilogue op to produce quantized output")
        else:
            raise TypeError(f"out_dtype={want} is not available for this epilogue, whose result is {natural}; "
                            "float results may be written as float32, float16 or bfloat16, int32 results as "
                            "int32 or float32, Requantize results as its dtype")
    return LoweredEpilogue(out, want, _OUT_TYPES[want])


def to_c(ops: Sequence[CEpilogueOp]):
    """(uk_epilogue_op_t[] or NULL, count, arrays to keep alive during the call)."""
    if not ops:
        return ffi.NULL, 0, []
    arr = ffi.new("uk_epilogue_op_t[]", len(ops))
    keep: List[np.ndarray] = []
    for i, op in enumerate(ops):
        c = arr[i]
        c.kind = op.kind
        c.is_int = 1 if op.is_int else 0
        if op.operand is not None:
            c.data = address_of(op.operand)
            c.data_stride, c.data_stride1 = op.stride0, op.stride1
            c.data_batch_stride = op.batch_stride
            keep.append(op.operand)
        c.p0, c.p1, c.p2, c.p3 = op.p
    return arr, len(ops), keep
