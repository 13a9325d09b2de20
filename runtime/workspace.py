"""Per-thread reusable workspace (packed operands, accumulator scratch).

A fresh large buffer per call costs page faults on every call (DESIGN.md:
IREE's matvec spent most of its time faulting in a new packed buffer), so
each Python thread keeps its buffers and grows them geometrically. Buffers
are 64-byte aligned; nothing is zeroed (the pack writes every element,
padding included).
"""
import threading

import numpy as np

_ALIGN = 64
_local = threading.local()


class _Buffer:
    __slots__ = ("array", "address", "nbytes")

    def __init__(self, nbytes: int):
        self.array = np.empty(nbytes + _ALIGN, dtype=np.uint8)
        base = self.array.ctypes.data
        self.address = base + (-base % _ALIGN)
        self.nbytes = nbytes


def buffer_address(slot: str, nbytes: int) -> int:
    """Address of this thread's ``slot`` buffer, at least ``nbytes`` long."""
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    buf = bufs.get(slot)
    if buf is None or buf.nbytes < nbytes:
        grown = max(nbytes, (buf.nbytes * 3 // 2) if buf is not None else 0)
        buf = bufs[slot] = _Buffer(grown)
    return buf.address


def workspace_bytes() -> int:
    """Bytes of workspace held by the calling thread."""
    bufs = getattr(_local, "bufs", None) or {}
    return sum(b.nbytes for b in bufs.values())


def release_workspace() -> None:
    """Free the calling thread's workspace (it is re-created on the next call)."""
    _local.bufs = {}
