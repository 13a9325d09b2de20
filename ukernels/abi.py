"""The ukernel ABI from Python: element-type triples, flags, and thin,
checked bindings of ``uk_mmt4d`` and ``uk_pack`` over flat numpy buffers.

These are the low-level entry points the tests drive directly (offsets,
outer strides, ACCUMULATE); ``ukernels.matmul`` never goes through them per
tile: the C dispatch calls the ukernel itself.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import ml_dtypes
import numpy as np

from ukernels import cpu
from ukernels._lib import ffi, lib


@dataclass(frozen=True)
class ElementTypes:
    """An element-type triple lhs x rhs -> accumulator (the ukernel's types).

    This table is the one place the per-type facts live on the Python side
    (dtypes, the C type code, whether the accumulator is float); the C side's
    counterpart is ``uk_type_info`` (element sizes) and the tile table."""

    name: str  # e.g. "f32f32f32"
    uk_type: int  # UK_TYPE_* (low byte of the flags word)
    lhs: np.dtype
    rhs: np.dtype
    acc: np.dtype

    @property
    def acc_is_float(self) -> bool:
        return self.acc.kind == "f"

    @property
    def rhs_bits(self) -> int:
        """Bits per rhs element in the packed layout (4 for int4: two per byte)."""
        return 4 if self.rhs == _INT4 else self.rhs.itemsize * 8


_BF16 = np.dtype(ml_dtypes.bfloat16)
_INT4 = np.dtype(ml_dtypes.int4)
F32F32F32 = ElementTypes("f32f32f32", lib.UK_TYPE_F32F32F32, np.dtype(np.float32), np.dtype(np.float32),
                         np.dtype(np.float32))
S8S8S32 = ElementTypes("s8s8s32", lib.UK_TYPE_S8S8S32, np.dtype(np.int8), np.dtype(np.int8), np.dtype(np.int32))
F16F16F32 = ElementTypes("f16f16f32", lib.UK_TYPE_F16F16F32, np.dtype(np.float16), np.dtype(np.float16),
                         np.dtype(np.float32))
BF16BF16F32 = ElementTypes("bf16bf16f32", lib.UK_TYPE_BF16BF16F32, _BF16, _BF16, np.dtype(np.float32))
S16S16S32 = ElementTypes("s16s16s32", lib.UK_TYPE_S16S16S32, np.dtype(np.int16), np.dtype(np.int16),
                         np.dtype(np.int32))
U8S8S32 = ElementTypes("u8s8s32", lib.UK_TYPE_U8S8S32, np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.int32))
S8S4S32 = ElementTypes("s8s4s32", lib.UK_TYPE_S8S4S32, np.dtype(np.int8), _INT4, np.dtype(np.int32))

ELEMENT_TYPES: Dict[str, ElementTypes] = {t.name: t for t in (F32F32F32, S8S8S32, F16F16F32, BF16BF16F32,
                                                              S16S16S32, U8S8S32, S8S4S32)}
_BY_INPUT: Dict[Tuple[np.dtype, np.dtype], ElementTypes] = {(t.lhs, t.rhs): t for t in ELEMENT_TYPES.values()}

# Narrow-output triples (IREE's names): the f32-accumulating tiles with a write-back
# that rounds the finished f32 value once to the output type (out_dtype=...).
NARROW_OUTPUT_TRIPLES = {"f16f16f16": (F16F16F32, np.dtype(np.float16)),
                         "bf16bf16bf16": (BF16BF16F32, _BF16)}


def supported_combinations() -> str:
    """The supported dtype combinations, for error messages."""
    names = {np.dtype(np.float32): "float32", np.dtype(np.int8): "int8", np.dtype(np.float16): "float16",
             _BF16: "bfloat16 (ml_dtypes)", np.dtype(np.int16): "int16", np.dtype(np.uint8): "uint8",
             _INT4: "int4 (ml_dtypes)"}
    return ", ".join(f"{names[t.lhs]} x {names[t.rhs]} -> {t.acc.name}" for t in ELEMENT_TYPES.values())


def element_types_for(lhs: np.dtype, rhs: np.dtype) -> Optional[ElementTypes]:
    """The triple for these input dtypes, or None if unsupported."""
    return _BY_INPUT.get((np.dtype(lhs), np.dtype(rhs)))


STATUS_MESSAGES = {
    lib.UK_STATUS_UNSUPPORTED_TYPE: "element type not supported by the C kernels",
    lib.UK_STATUS_NO_TILE_FUNCTION: "no tile function for this tile shape and CPU (generic fallback disabled)",
    lib.UK_STATUS_BAD_ARGUMENT: "invalid argument (negative size, zero tile size, or invalid epilogue)",
}


class UkernelError(RuntimeError):
    """A C kernel returned a non-zero status."""

    def __init__(self, what: str, status: int):
        super().__init__(f"{what} failed with status {status}: {STATUS_MESSAGES.get(status, 'unknown status')}")
        self.status = status


_CPU_DATA = {}


def cpu_data_for(isa: str):
    """A ``uint64_t[1]`` with the CPU bits usable at ISA level ``isa`` (shared, read-only)."""
    data = _CPU_DATA.get(isa)
    if data is None:
        data = _CPU_DATA[isa] = ffi.new("uint64_t[1]", [cpu.isa_cpu_bits(isa)])
    return data


def kernel_array(x: np.ndarray) -> np.ndarray:
    """``x`` as the C side may read it: native byte order, aligned to its element
    size, strides whole elements. Copies only when one of those fails (a copy
    made by numpy is always aligned; ``np.ascontiguousarray`` alone is not enough:
    it returns an already-contiguous but misaligned array as it is)."""
    flags = x.flags
    if flags.c_contiguous and flags.aligned and x.dtype.isnative:
        return x  # the common case, decided without looking at the strides
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))  # byte order only: lossless, a new aligned array
    if not x.flags.aligned or any(s % x.itemsize for s in x.strides):
        x = np.array(x, order="C", copy=True)
    return x


def address_of(arr: np.ndarray):
    """A ``void*`` to ``arr``'s first element (any strides; the array must stay alive)."""
    if arr.flags.c_contiguous and arr.size:
        return ffi.from_buffer(arr)
    return ffi.cast("void*", arr.ctypes.data)


def tile_function_name(types: ElementTypes, M0: int, N0: int, K0: int, isa: Optional[str] = None,
                       allow_generic_fallback: bool = True, flags: int = 0) -> str:
    """Name of the tile function ``uk_mmt4d`` selects for this tile at ``isa`` (with these
    extra call ``flags``, e.g. UK_FLAG_LHS_S8_SYMMETRIC)."""
    isa = isa or cpu.active_isa()
    flags |= types.uk_type | (lib.UK_FLAG_ALLOW_GENERIC_FALLBACK if allow_generic_fallback else 0)
    return ffi.string(lib.uk_mmt4d_tile_name(flags, M0, N0, K0, cpu_data_for(isa))).decode()


def _ptr(arr: np.ndarray):
    return ffi.cast("void*", arr.ctypes.data)


def _check_flat(name: str, arr: np.ndarray, dtype: np.dtype, needed: int) -> None:
    if not isinstance(arr, np.ndarray) or arr.ndim != 1 or not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be a 1-D C-contiguous numpy array")
    if arr.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {arr.dtype}")
    if arr.size < needed:
        raise ValueError(f"{name} has {arr.size} elements but the call reads/writes up to {needed}")


def mmt4d(lhs: np.ndarray, rhs: np.ndarray, out: np.ndarray, *, types: ElementTypes,
          M: int, N: int, K: int, M0: int, N0: int, K0: int,
          lhs_offset: int = 0, lhs_stride0: Optional[int] = None,
          rhs_offset: int = 0, rhs_stride0: Optional[int] = None,
          out_offset: int = 0, out_stride0: Optional[int] = None,
          accumulate: bool = False, isa: Optional[str] = None,
          allow_generic_fallback: bool = True, cpu_bits: Optional[int] = None, fn=None,
          rhs_stride1: int = 0) -> None:
    """One call of ``uk_mmt4d`` on flat buffers (sizes in tiles, strides in elements).

    Strides default to tight packing (``K*M0*K0``, ``K*N0*K0``, ``N*M0*N0``);
    ``rhs_stride1`` (elements between the K steps of an rhs panel; 0: ``N0*K0``) lets a
    K0 = 1 tile read the rows of a row-major rhs in place.
    Bounds are checked here so a bad call raises instead of corrupting memory.
    ``cpu_bits`` (tests) overrides the CPU bits of ``isa``; it may only remove
    bits this CPU has. ``fn`` calls another function of the same ABI (a
    generated kernel's ``uk_mmt4d_fn_t``) instead of ``uk_mmt4d``.
    """
    lhs_stride0 = K * M0 * K0 if lhs_stride0 is None else lhs_stride0
    rhs_stride0 = K * N0 * K0 if rhs_stride0 is None else rhs_stride0
    out_stride0 = N * M0 * N0 if out_stride0 is None else out_stride0
    if M > 0 and N > 0:
        _check_flat("lhs", lhs, types.lhs, lhs_offset + (M - 1) * lhs_stride0 + K * M0 * K0)
        if rhs_stride1 < 0:
            raise ValueError(f"rhs_stride1 must be >= 0 here, got {rhs_stride1}")
        k_step = rhs_stride1 or N0 * K0
        _check_flat("rhs", rhs, types.rhs,
                    rhs_offset + (N - 1) * rhs_stride0 + (K - 1) * k_step + N0 * K0 if K > 0 else 0)
        _check_flat("out", out, types.acc, out_offset + (M - 1) * out_stride0 + N * M0 * N0)
    if cpu_bits is None:
        cpu_data = cpu_data_for(isa or cpu.active_isa())
    else:
        cpu_data = ffi.new("uint64_t[1]", [cpu_bits & cpu.cpu_bits()])
    p = ffi.new("uk_mmt4d_params_t*")
    p.lhs_buffer, p.lhs_offset, p.lhs_stride0 = _ptr(lhs), lhs_offset, lhs_stride0
    p.rhs_buffer, p.rhs_offset, p.rhs_stride0 = _ptr(rhs), rhs_offset, rhs_stride0
    p.rhs_stride1 = rhs_stride1
    p.out_buffer, p.out_offset, p.out_stride0 = _ptr(out), out_offset, out_stride0
    p.M, p.N, p.K, p.M0, p.N0, p.K0 = M, N, K, M0, N0, K0
    p.flags = (types.uk_type | (lib.UK_FLAG_ACCUMULATE if accumulate else 0)
               | (lib.UK_FLAG_ALLOW_GENERIC_FALLBACK if allow_generic_fallback else 0))
    p.cpu_data = cpu_data
    status = lib.uk_mmt4d(p) if fn is None else fn(p)
    if status != lib.UK_STATUS_OK:
        raise UkernelError("uk_mmt4d" if fn is None else "generated mmt4d", status)
