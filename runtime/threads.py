"""The persistent thread pool and the thread count.

Threads are created once (on first use) and reused by every call; the count
comes from ``set_num_threads``, else ``UKERNELS_NUM_THREADS``, else the number
of cores this process may run on (its CPU affinity). Between jobs idle pool
threads spin for ``UKERNELS_SPIN_US`` microseconds (default 1000, read when
the pool is created) before sleeping: on VMs waking a sleeping vCPU costs
more than a small matmul (measured here, 512^3 on 2 threads in blocks of
back-to-back calls: ~90 GFLOP/s with no spin, bimodal 70/170 with 200 us,
mostly 150-190 with 1000 us). Set it to 0 on a machine shared with other
busy processes.
"""
import contextlib
import os
import threading
import warnings
from functools import lru_cache
from typing import Iterator, Optional

from ukernels._env import getenv
from ukernels._lib import ffi, lib
from ukernels._sync import ForkSafeLock

NUM_THREADS_ENV = "UKERNELS_NUM_THREADS"
SPIN_ENV = "UKERNELS_SPIN_US"
DEFAULT_SPIN_US = 1000  # idle pool threads spin this long before sleeping
MAX_THREADS = 1024  # more is a typo, not a machine: refused with a clear error
MAX_SPIN_US = 10_000_000  # 10 s

_lock = ForkSafeLock()
_pool = None  # cdata uk_pool_t* with a destructor
_requested: Optional[int] = None


class _Local(threading.local):
    """Per-thread state: ``limit``, the thread_limit() in force on this thread (None: none).
    A class default, so reading it never raises and catches AttributeError (0.7 us per call)."""
    limit: Optional[int] = None


_local = _Local()


@lru_cache(maxsize=None)
def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity at first use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=64)
def _parse_int(name: str, raw: str, minimum: int, maximum: int, meaning: str) -> Optional[int]:
    if raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer; set it to {meaning}") from None
    if not minimum <= value <= maximum:
        raise ValueError(f"{name}={raw!r} must be in [{minimum}, {maximum}] ({meaning})")
    return value


def _int_env(name: str, minimum: int, maximum: int, meaning: str) -> Optional[int]:
    """The validated integer value of environment variable ``name`` (None if unset or empty)."""
    raw = getenv(name)
    return None if raw is None else _parse_int(name, raw, minimum, maximum, meaning)


def get_num_threads() -> int:
    """Threads a call may use (including the calling thread).

    Validates ``UKERNELS_NUM_THREADS`` and ``UKERNELS_SPIN_US`` on every call (a
    cached parse), so a bad value is reported by the first call, not only by the
    first call large enough to use the pool."""
    raw = getenv(SPIN_ENV)
    if raw is not None:
        _parse_int(SPIN_ENV, raw, 0, MAX_SPIN_US, "microseconds, 0 to never spin")
    n = _configured()
    limit = _local.limit
    return n if limit is None or limit >= n else limit


def _configured() -> int:
    """The process-wide count (set_num_threads, else the variable, else the cores): the pool's
    size. A thread_limit only lowers how many of its threads one call uses."""
    if _requested is not None:
        return _requested
    return _int_env(NUM_THREADS_ENV, 1, MAX_THREADS, "a thread count >= 1") or usable_cores()


@contextlib.contextmanager
def thread_limit(n: int) -> Iterator[None]:
    """Calls made on *this* Python thread inside the block use at most ``n`` threads
    (other threads are unaffected). For code that already runs one task per core (a Dask
    worker thread, a thread pool of your own): with W such threads, ``thread_limit(cores //
    W)`` keeps W x ukernels threads within the cores. Nests; the innermost limit applies."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"thread_limit(n): n must be an int >= 1, got {n!r}")
    previous = _local.limit
    _local.limit = n
    try:
        yield
    finally:
        _local.limit = previous


_warned_oversubscribed = False


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (1..1024) for later calls; the pool is rebuilt once, lazily.
    More threads than usable cores is allowed (with one RuntimeWarning): it only adds
    context switches to a compute-bound matmul."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads(n): n must be an int >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads(n): n must be >= 1, got {n}")
    if n > MAX_THREADS:
        raise ValueError(f"set_num_threads(n): n must be <= {MAX_THREADS}, got {n} "
                         f"(this process may use {usable_cores()} cores)")
    global _requested, _warned_oversubscribed
    if n > usable_cores() and not _warned_oversubscribed:
        _warned_oversubscribed = True
        warnings.warn(f"ukernels.set_num_threads({n}): more threads than the {usable_cores()} cores this process "
                      "may use; expect no speed-up", RuntimeWarning, stacklevel=2)
    with _lock:
        _requested = n


def spin_us() -> int:
    """Microseconds idle pool threads spin before sleeping (``UKERNELS_SPIN_US``)."""
    value = _int_env(SPIN_ENV, 0, MAX_SPIN_US, "microseconds, 0 to never spin")
    return DEFAULT_SPIN_US if value is None else value


def get_pool():
    """The pool sized for the process-wide thread count (created or resized lazily; a
    thread_limit never resizes it: calls under one use fewer of its threads).

    The returned object keeps the pool alive; a pool replaced by a resize is
    destroyed only when the last caller using it lets go."""
    global _pool
    n = _configured()
    pool = _pool
    if pool is not None and lib.uk_pool_size(pool) == n:
        return pool
    with _lock:
        if _pool is None or lib.uk_pool_size(_pool) != n:
            raw = lib.uk_pool_create(n, spin_us() * 1000)
            if raw == ffi.NULL:
                raise MemoryError("could not create the ukernels thread pool")
            _pool = ffi.gc(raw, lib.uk_pool_destroy)
        return _pool


def _forget_pool_after_fork() -> None:
    # The child has no worker threads: drop the parent's pool without joining
    # (its memory is leaked in the child, once). _lock is a ForkSafeLock.
    global _pool
    if _pool is not None:
        ffi.gc(_pool, None)
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
