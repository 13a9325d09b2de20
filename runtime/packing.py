"""Packing a 2-D array into the tiled layouts of the ukernels (via ``uk_pack``)."""
from typing import Optional

import ml_dtypes
import numpy as np

from ukernels import cpu
from ukernels._lib import ffi, lib
from ukernels.abi import UkernelError, cpu_data_for, kernel_array

_PACK_BY_SIZE = {4: lib.UK_PACK_TYPE_F32, 2: lib.UK_PACK_TYPE_X16, 1: lib.UK_PACK_TYPE_I8}  # pack moves bits


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pack(x: np.ndarray, tile0: int, tile1: int, *, transpose_inner: bool = False,
         transpose_outer: bool = False, isa: Optional[str] = None, int4: bool = False) -> np.ndarray:
    """Pack ``x`` into a 4-D array ``[out0][out1][tile0][tile1]``, zero padded.

    Without transposes ``out[o0, o1, t0, t1] = x[o0*tile0 + t0, o1*tile1 + t1]``.
    ``transpose_inner`` makes the tile ``[t1][t0]`` of x's dims (so an rhs
    ``[K][N]`` packs as ``[N0][K0]`` tiles with ``tile0=N0, tile1=K0``);
    ``transpose_outer`` swaps the two outer dims. ``x`` may have any strides.
    ``isa`` (default: the active level) selects SIMD pack code where it exists.
    ``int4`` (or an ``ml_dtypes.int4`` x): the values (int8 in [-8, 7], or int4) are
    written as nibbles, two per byte (element 2i in the low nibble), and the result is a
    uint8 array ``[out0][out1][tile0 * tile1 / 2]``; tile1 must be even.
    """
    x = np.asarray(x)
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if x.ndim != 2:
        raise ValueError(f"pack: x must be 2-D, got shape {x.shape}")
    if x.dtype.itemsize not in _PACK_BY_SIZE or x.dtype.kind not in "fiuV" or x.dtype.fields is not None:
        raise TypeError(f"pack: x.dtype must be a 1-, 2- or 4-byte numeric type, got {x.dtype}")
    for name, t in (("tile0", tile0), ("tile1", tile1)):
        if not isinstance(t, (int, np.integer)) or t < 1:
            raise ValueError(f"pack: {name} must be an int >= 1, got {t!r}")
    x = kernel_array(x)
    int4 = int4 or x.dtype == np.dtype(ml_dtypes.int4)
    if int4 and tile1 % 2:
        raise ValueError(f"pack: int4 packing needs an even tile1, got {tile1}")
    rows_tile, cols_tile = (tile1, tile0) if transpose_inner else (tile0, tile1)
    o_rows, o_cols = _ceil_div(x.shape[0], rows_tile), _ceil_div(x.shape[1], cols_tile)
    out_size0, out_size1 = (o_cols, o_rows) if transpose_outer else (o_rows, o_cols)
    if int4:
        out = np.empty((out_size0, out_size1, tile0 * tile1 // 2), dtype=np.uint8)
    else:
        out = np.empty((out_size0, out_size1, tile0, tile1), dtype=x.dtype)
    p = ffi.new("uk_pack_params_t*")
    p.in_buffer = ffi.cast("void*", x.ctypes.data)
    p.in_offset = 0
    p.in_stride0, p.in_stride1 = (s // x.itemsize for s in x.strides)
    p.out_buffer = ffi.cast("void*", out.ctypes.data)
    p.out_offset = 0
    p.out_stride0 = out_size1 * tile0 * tile1
    p.in_size0, p.in_size1 = x.shape
    p.out_size0, p.out_size1 = out_size0, out_size1
    p.tile_size0, p.tile_size1 = tile0, tile1
    cpu_data = cpu_data_for(isa or cpu.active_isa())
    p.cpu_data = cpu_data
    p.flags = ((lib.UK_PACK_TYPE_S4 if int4 else _PACK_BY_SIZE[x.dtype.itemsize])
               | (lib.UK_PACK_TRANSPOSE_INNER if transpose_inner else 0)
               | (lib.UK_PACK_TRANSPOSE_OUTER if transpose_outer else 0))
    status = lib.uk_pack(p)
    if status != lib.UK_STATUS_OK:
        raise UkernelError("uk_pack", status)
    return out
