"""Per-thread reusable workspace (packed operands, accumulator scratch).

A fresh large buffer per call costs page faults on every call (DESIGN.md:
IREE's matvec spent most of its time faulting in a new packed buffer), so
each Python thread keeps its buffers and grows them geometrically. Buffers
are 64-byte aligned; nothing is zeroed (the pack writes every element,
padding included).

A call takes its buffers through a ``Lease`` that it keeps in its own frame
until the C call has returned. Two failure modes follow from that rule and
are covered by tests (tests/test_reliability.py):

* interpreter exit while a daemon thread is inside a call: module teardown
  drops the thread-local table, but the lease in the running call's frame
  still owns the buffers, so the kernel never writes into freed memory;
* re-entry on the same thread (a signal handler or a callback that calls
  ukernels while this thread is inside a call): the nested lease sees the
  thread's buffers in use and gets private ones instead of replacing (and
  freeing) the buffers the outer call is still using.
"""
import threading
from typing import Dict, List

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


class Lease:
    """The buffers one call uses; keep it alive until the C call returns.

    ``with workspace.lease() as ws: addr = ws.address("lhs", n)``."""

    __slots__ = ("_bufs", "_held", "_shared")

    def __init__(self, bufs: Dict[str, _Buffer], shared: bool):
        self._bufs = bufs
        self._held: List[_Buffer] = []
        self._shared = shared

    def address(self, slot: str, nbytes: int) -> int:
        """Address of a 64-byte aligned buffer of at least ``nbytes`` for ``slot``."""
        buf = self._bufs.get(slot)
        if buf is None or buf.nbytes < nbytes:
            grown = max(nbytes, (buf.nbytes * 3 // 2) if buf is not None else 0)
            buf = self._bufs[slot] = _Buffer(grown)
        self._held.append(buf)  # owned by this call until it ends, whatever happens to the table
        return buf.address

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        if self._shared:
            _local.busy = False
        self._held = []


def lease() -> Lease:
    """This thread's buffers for one call; private ones if the thread is already inside a call."""
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
        _local.busy = False
    if _local.busy:  # re-entered (signal handler, callback): never touch the outer call's buffers
        return Lease({}, False)
    _local.busy = True
    return Lease(bufs, True)


class _ReplayArea(threading.local):
    """This thread's work area for replayed calls (runtime/dispatch.py: run_small), grown as
    needed up to dispatch.REPLAY_MAX_WORK. ``buf`` is (array, aligned pointer, bytes), replaced
    whole by one assignment: a signal handler that runs between two statements of a release or
    a replay (and calls ukernels itself) sees the old area or the new one, never half of each,
    and a replay holds its tuple in its own frame, so releasing never frees memory a call still
    uses. ``busy`` while a replay on this thread is in its C call (a re-entered call takes a
    lease instead)."""
    buf = None
    busy = False


replay_area = _ReplayArea()


def workspace_bytes() -> int:
    """Bytes of workspace held by the calling thread (leased buffers and the replay area)."""
    bufs = getattr(_local, "bufs", None) or {}
    area = replay_area.buf
    return sum(b.nbytes for b in bufs.values()) + (area[2] if area is not None else 0)


def release_workspace() -> None:
    """Free the calling thread's workspace (it is re-created on the next call).
    Buffers a call on this thread is still using stay alive until that call ends."""
    _local.bufs = {}
    _local.busy = getattr(_local, "busy", False)
    replay_area.buf = None
