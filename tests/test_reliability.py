"""Process-level reliability: interpreter exit with a daemon thread inside a
call, same-thread re-entry from a signal handler, fork while another thread
holds the library's locks (and while it compiles), Ctrl-C during a long
call, bounded memo tables, validated thread settings, the CLI on a bad
environment. Each test fails without the fix it covers (see the closing note
of the reliability issue)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import ukernels
from conftest import wait_child
from ukernels.runtime import workspace

PY = sys.executable


def _default_sigint() -> None:
    # A shell's background job (`pytest &`) starts with SIGINT ignored, and a child inherits that:
    # Python then installs no KeyboardInterrupt handler. The scripts test the default behaviour.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_script(code: str, timeout: float = 60, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})), preexec_fn=_default_sigint)


# ---- 1. exit while a daemon thread is inside a call ---------------------------------------------

EXIT_SCRIPT = """
import threading, time, numpy as np, ukernels
a = np.ones((700, 700), np.float32)
lin = ukernels.Linear(np.ones((600, 700), np.float32))
def loop(i):
    while True:
        if i % 2:
            ukernels.matmul(a, a)
        else:
            lin(a)
for i in range(3):
    threading.Thread(target=loop, args=(i,), daemon=True).start()
time.sleep(0.1)   # the main thread ends while the daemons are inside calls
"""


def test_interpreter_exit_with_daemon_threads_inside_calls():
    # Before the fix: a segfault in 10 of 10 runs (the workspace was freed under the kernel).
    codes = []
    for _ in range(3):
        procs = [subprocess.Popen([PY, "-c", EXIT_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            codes.append((p.returncode, err.decode()[-300:]))
    assert all(rc == 0 for rc, _ in codes), codes


# ---- 2. re-entry on the same thread -----------------------------------------------------------

def test_nested_lease_never_touches_the_outer_calls_buffers():
    with workspace.lease() as outer:
        a1 = outer.address("lhs", 1000)
        with workspace.lease() as inner:  # e.g. a signal handler running a matmul meanwhile
            b1 = inner.address("lhs", 10_000_000)
        assert outer.address("lhs", 1000) == a1 and b1 != a1
    with workspace.lease() as again:  # the thread's own buffers are reused afterwards
        assert again.address("lhs", 1000) == a1


def test_matmul_from_a_signal_handler_while_the_thread_is_inside_a_matmul():
    rng = np.random.default_rng(1)
    # nested calls need bigger buffers than the outer one: without the fix each
    # replaced (and freed) the buffers the interrupted outer call was about to use
    nested_ops = [rng.integers(-3, 4, (m, k)).astype(np.float32) for m, k in ((120, 300), (200, 260), (160, 340))]
    outer_a = rng.integers(-3, 4, (30, 40)).astype(np.float32)
    outer_b = rng.integers(-3, 4, (40, 50)).astype(np.float32)
    outer_ref = outer_a @ outer_b
    nested = {"calls": 0, "bad": 0, "busy": False}

    def handler(signum, frame):
        if nested["busy"]:  # the timer outpaces a handler: do not stack handlers up
            return
        nested["busy"] = True
        try:
            x = nested_ops[nested["calls"] % len(nested_ops)]
            y = ukernels.matmul(x, x.T.copy())
            nested["calls"] += 1
            if not np.array_equal(y, x @ x.T):
                nested["bad"] += 1
        finally:
            nested["busy"] = False

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.0007, 0.0007)
    bad_outer = outer_calls = 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            ukernels.release_workspace()  # small buffers again: the next nested call must grow them
            outer_calls += 1
            if not np.array_equal(ukernels.matmul(outer_a, outer_b), outer_ref):
                bad_outer += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert nested["calls"] > 10 and outer_calls > 100
    assert bad_outer == 0 and nested["bad"] == 0, (bad_outer, outer_calls, nested)


# ---- 3. fork while another thread holds a lock ---------------------------------------------------

def _locks():
    from ukernels.codegen import cache, prebuilt, tuning
    from ukernels.runtime import threads
    lin = ukernels.Linear(np.ones((4, 4), np.float32))
    return {"cache memo": cache._memo_lock, "prebuilt index": prebuilt._lock, "tuned tiles": tuning._lock,
            "thread pool": threads._lock, "Linear packs": lin._lock}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
@pytest.mark.parametrize("name", ["cache memo", "prebuilt index", "tuned tiles", "thread pool", "Linear packs"])
def test_fork_while_another_thread_holds_a_lock(name):
    lock = _locks()[name]
    held, release = threading.Event(), threading.Event()

    def holder():
        with lock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # child: the holder thread does not exist here
            code = 1
            try:
                with lock:
                    code = 0
            finally:
                os._exit(code)
        code = wait_child(pid, 20)
        assert code is not None, f"the forked child hung on the {name} lock"
        assert code == 0
    finally:
        release.set()
        t.join()


FORK_COMPILE_SCRIPT = """
import os, signal, sys, threading, time
from ukernels.codegen import cache
from ukernels.codegen.render import KernelSpec
t = threading.Thread(target=lambda: cache.get_kernel(KernelSpec("f32f32f32", 3, 8, "generic", 7)))
t.start()
time.sleep(0.3)            # the thread is compiling (slow compiler), holding the memo lock
pid = os.fork()
if pid == 0:
    k = cache.get_kernel(KernelSpec("f32f32f32", 5, 8, "generic", 9))
    os._exit(0 if k.origin in ("compiled", "disk") else 3)
deadline = time.monotonic() + 60
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, signal.SIGKILL)
        print("child hung"); sys.exit(1)
    time.sleep(0.02)
t.join()
sys.exit(os.WEXITSTATUS(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_fork_while_a_thread_compiles_a_kernel(tmp_path):
    slow_cc = tmp_path / "slowcc"
    slow_cc.write_text('#!/bin/sh\ncase "$1" in --version) exec cc --version;; esac\nsleep 1\nexec cc "$@"\n')
    slow_cc.chmod(0o755)
    proc = _run_script(FORK_COMPILE_SCRIPT, timeout=120,
                       env={"CC": str(slow_cc), "UKERNELS_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- 10. Ctrl-C during a long call --------------------------------------------------------------

SIGINT_SCRIPT = """
import os, signal, threading, time, numpy as np, ukernels
ukernels.set_num_threads(2)
a = np.ones((3072, 3072), np.float32)
t0 = time.perf_counter(); ukernels.matmul(a[:256], a); part = time.perf_counter() - t0
full = part * 3072 / 256
threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
t0 = time.perf_counter()
try:
    ukernels.matmul(a, a)
    print("COMPLETED", full)
except KeyboardInterrupt:
    print("INTERRUPTED", time.perf_counter() - t0, full)
hits = []
signal.signal(signal.SIGINT, lambda s, f: hits.append(s))   # a handler that does not raise
threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
out = ukernels.matmul(a[:1024], a)
print("HANDLED", len(hits), bool((out == 3072).all()))
"""


def test_ctrl_c_stops_a_long_call_early():
    # generic kernels: slow enough that the call lasts seconds on any CPU
    proc = _run_script(SIGINT_SCRIPT, timeout=300, env={"UKERNELS_ISA": "generic"})
    assert proc.returncode == 0, proc.stderr
    lines = dict((ln.split()[0], ln.split()[1:]) for ln in proc.stdout.splitlines())
    assert "INTERRUPTED" in lines, (proc.stdout, proc.stderr[-2000:])
    waited, full = map(float, lines["INTERRUPTED"])
    # the interrupt was honoured long before the product could have finished
    assert waited < 0.2 + max(1.0, 0.25 * full), (waited, full)
    assert lines["HANDLED"] == ["1", "True"]  # non-raising handler: ran once, result complete and right


# ---- 8. bounded tables, validated settings -------------------------------------------------------

def test_memo_tables_are_bounded(monkeypatch):
    from ukernels._sync import BoundedMemo
    from ukernels.runtime import dispatch
    small = BoundedMemo(32)
    monkeypatch.setattr(dispatch, "_resolved", small)
    monkeypatch.setattr(dispatch, "_auto_choice", BoundedMemo(32))
    for m in range(1, 120):
        a = np.ones((m, 3), np.float32)
        assert (ukernels.matmul(a, np.ones((3, 2), np.float32)) == 3).all()
    assert len(small) <= 32 and len(dispatch._auto_choice) <= 32


@pytest.mark.parametrize("name,value,match", [
    ("UKERNELS_NUM_THREADS", "99999999999999999999", r"must be in \[1, 1024\]"),
    ("UKERNELS_NUM_THREADS", "0", r"must be in \[1, 1024\]"),
    ("UKERNELS_SPIN_US", "1e99", r"UKERNELS_SPIN_US='1e99' is not an integer"),
    ("UKERNELS_SPIN_US", str(10**30), r"must be in \[0, 10000000\]"),
])
def test_bad_thread_settings_fail_on_the_first_call(monkeypatch, name, value, match):
    from ukernels.runtime import threads
    monkeypatch.setattr(threads, "_requested", None)
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        ukernels.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))  # tiny: no pool involved


def test_set_num_threads_bounds(monkeypatch):
    from ukernels.runtime import threads
    with pytest.raises(ValueError, match=r"n must be <= 1024"):
        ukernels.set_num_threads(10**6)
    monkeypatch.setattr(threads, "_warned_oversubscribed", False)
    old = ukernels.get_num_threads()
    try:
        with pytest.warns(RuntimeWarning, match="more threads than the"):
            ukernels.set_num_threads(threads.usable_cores() + 3)
    finally:
        ukernels.set_num_threads(old)


def test_cli_reports_a_bad_environment_without_a_traceback():
    proc = subprocess.run([PY, "-m", "ukernels", "info"], capture_output=True, text=True,
                          env=dict(os.environ, UKERNELS_NUM_THREADS="lots"))
    assert proc.returncode == 2
    assert "UKERNELS_NUM_THREADS='lots' is not an integer" in proc.stderr and "Traceback" not in proc.stderr
