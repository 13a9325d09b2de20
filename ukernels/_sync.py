"""Process-wide state that must survive ``fork`` and long-running processes.

* ``ForkSafeLock``: a lock that a child process gets back unlocked. ``os.fork()`` copies a lock held by another thread (one that is
  compiling a kernel, reading a manifest, packing a weight ...) in its locked
  state, and that thread does not exist in the child, so the child's first
  use of the lock would hang forever. Every lock of the library's in-process
  tables is one of these; the child gets fresh locks (the tables themselves
  stay valid: they are only written under the lock, by whole entries).
* ``BoundedMemo``: a dict that keeps at most ``capacity`` entries (oldest
  evicted first), for memo tables keyed by call shape: a process that sees
  millions of distinct shapes keeps a bounded table instead of growing
  without limit.
"""
import os
import threading
import weakref

_locks: "weakref.WeakSet[ForkSafeLock]" = weakref.WeakSet()


class ForkSafeLock:
    """A lock (``with lock: ...``) that is new and unlocked in a forked child.

    Reentrant on the thread that holds it: a signal handler that calls ukernels
    while its thread is inside one of these critical sections must not wait for
    that thread (it cannot continue until the handler returns). The guarded
    sections are "look up, else compute and store" steps, which a nested
    entry simply repeats."""

    __slots__ = ("_lock", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        _locks.add(self)

    def __enter__(self) -> "ForkSafeLock":
        self._lock.acquire()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # forked inside the section: the child's new lock was never taken
            pass

    def _reset(self) -> None:
        self._lock = threading.RLock()


def _after_fork_in_child() -> None:
    for lock in list(_locks):
        lock._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

class BoundedMemo(dict):
    """A dict memo holding at most ``capacity`` entries: ``put`` evicts the oldest first
    (FIFO). ``get`` is dict's own (a lookup on the per-call path costs nothing extra).

    Reads take no lock (a dict lookup is atomic under the GIL); writes may race,
    which at worst evicts one entry too many."""

    __slots__ = ("capacity",)

    def __init__(self, capacity: int) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity

    def put(self, key, value):
        while len(self) >= self.capacity:
            try:
                del self[next(iter(self))]
            except (StopIteration, KeyError, RuntimeError):  # raced with another writer
                break
        self[key] = value
        return value
