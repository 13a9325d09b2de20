"""Ctrl-C during a long call.

Python runs signal handlers only between bytecodes, so without help a SIGINT
that arrives while the main thread is inside the C dispatch waits for the
whole product (seconds for a large one). For calls of at least
``MIN_FLOPS`` made on the main thread while a Python SIGINT handler is
installed, the dispatch arms a C handler in front of Python's
(csrc/uk_interrupt.c): it raises a flag the workers check between
workgroups, K blocks and pack tasks, and forwards the signal to Python. The
call then stops early and Python's handlers run at once: the default one
raises KeyboardInterrupt; a handler that does not raise lets the call start
again and complete (its result is never partial).
"""
import ctypes
import signal
import threading

from ukernels._lib import ffi, lib

MIN_FLOPS = 50_000_000  # ~1 ms at this machine's speed: shorter calls return before anyone notices


def should_arm(flops: int) -> bool:
    """Whether a call of ``flops`` on this thread arms the early-stop handler."""
    return (flops >= MIN_FLOPS and threading.current_thread() is threading.main_thread()
            and callable(signal.getsignal(signal.SIGINT)))


def arm():
    """The flag pointer to put in the descriptor, or NULL if arming failed."""
    return lib.uk_interrupt_flag() if lib.uk_interrupt_arm() == 0 else ffi.NULL


def disarm() -> None:
    lib.uk_interrupt_disarm()


def deliver() -> None:
    """Run Python's pending signal handlers now (a cancelled call's KeyboardInterrupt
    is raised here); returns if none raised."""
    ctypes.pythonapi.PyErr_CheckSignals()
