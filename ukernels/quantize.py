"""Symmetric integer quantization for weight-quantized ``Linear`` layers.

Weights (at construction): per output channel, or per group of ``group_size``
consecutive input features of each output channel,

    scale = max|w| / qmax          (qmax = 127 for int8, 7 for int4)
    q     = clip(rint(w / scale), -qmax, qmax)      rint: round half to even

(an all-zero channel or group gets scale 0 and q = 0). Activations (per call):
per row of x, the same with qmax = 127, to int8. A product is then

    y[i, j] = sx[i] * sum_g sw[g, j] * sum_{k in g} qx[i, k] * qw[k, j]

with the inner sums exact in int32 (the integer ukernel) and the rest in float32.
"""
from typing import Optional, Tuple

import numpy as np

GROUP_SIZES = (32, 64, 128, 256)
QMAX = {8: 127, 4: 7}


def check_group_size(group_size: Optional[int], K: int, what: str = "group_size") -> None:
    """ValueError unless group_size is None or one of GROUP_SIZES dividing K."""
    if group_size is None:
        return
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size not in GROUP_SIZES:
        raise ValueError(f"{what} must be None (per output channel) or one of {list(GROUP_SIZES)}, got {group_size!r}")
    if K % group_size:
        raise ValueError(f"{what}={group_size} does not divide in_features={K}; use a group size that divides it "
                         f"(or None for per-channel scales)")


def quantize_weight(w_nk: np.ndarray, bits: int, group_size: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """(q, scales) of a float (N, K) weight: q int8 (N, K) in [-qmax, qmax]; scales float32
    (N,) per channel (group_size None) or (N, K // group_size) per group."""
    qmax = QMAX[bits]
    w = np.asarray(w_nk, dtype=np.float32)
    if not np.isfinite(w).all():
        raise ValueError("weight has NaN or Inf values; they cannot be quantized")
    N, K = w.shape
    g = group_size or max(K, 1)
    blocks = w.reshape(N, K // g, g) if K else np.zeros((N, 1, 1), np.float32)
    scales = (np.abs(blocks).max(axis=2) / np.float32(qmax)).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1))
    q = np.clip(np.rint(blocks / safe[:, :, None]), -qmax, qmax).astype(np.int8).reshape(N, -1)[:, :K]
    return np.ascontiguousarray(q), (scales[:, 0].copy() if group_size is None else scales)


def quantize_rows(x: np.ndarray, isa: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(qx int8 (M, K), sx float32 (M,)): symmetric per-row int8 of a float32 (M, K) x, in C
    (csrc/uk_quantize.c: the same f32 arithmetic as ``quantize_rows_reference``, one pass per
    row instead of numpy's six over the whole array; SIMD at ``isa``, default the active level;
    rows split over the thread pool when large). qx never holds -128."""
    from ukernels import cpu
    from ukernels._lib import ffi, lib
    from ukernels.abi import cpu_data_for
    from ukernels.runtime import threads
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (rows, features), got shape {x.shape}")
    if x.strides[1] != x.itemsize or x.strides[0] % x.itemsize:
        x = np.ascontiguousarray(x)
    M, K = x.shape
    qx = np.empty((M, K), np.int8)
    sx = np.zeros(M, np.float32)
    if M == 0:
        return qx, sx
    nthreads = threads.get_num_threads()  # (C splits the rows only when there are enough elements)
    pool = threads.get_pool() if nthreads > 1 else ffi.NULL
    status = lib.uk_quantize_rows_s8(ffi.cast("const float*", x.ctypes.data), M, K, x.strides[0] // x.itemsize,
                                     ffi.cast("int8_t*", qx.ctypes.data), K, ffi.cast("float*", sx.ctypes.data),
                                     cpu_data_for(isa or cpu.active_isa()), pool, nthreads)
    if status != lib.UK_STATUS_OK:
        raise ValueError("x has NaN or Inf values; a weight-quantized Linear quantizes x to int8 per row and "
                         "cannot represent them")
    return qx, sx


def quantize_rows_reference(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """quantize_rows in numpy (the definition the C version is tested against)."""
    amax = np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0], np.float32)
    sx = (amax / np.float32(127)).astype(np.float32)
    safe = np.where(sx > 0, sx, np.float32(1))
    qx = np.rint(x / safe[:, None])
    np.clip(qx, -127, 127, out=qx)
    return qx.astype(np.int8), sx
