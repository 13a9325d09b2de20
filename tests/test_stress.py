"""Stress: the failure modes of the reliability issue at once, in bounded loops
(about 10 s): worker threads computing and checking, while the main thread
resizes the pool, frees workspaces, re-enters ukernels from a signal
handler, forks children that compute, and drops the codegen memo."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import ukernels
from conftest import wait_child
from ukernels.codegen import cache

DURATION_S = float(os.environ.get("UKERNELS_STRESS_S", "8"))


def test_everything_at_once():
    rng = np.random.default_rng(7)
    cases = []
    for i in range(6):
        M, N, K = 20 + 31 * i, 40 + 17 * i, 60 + 23 * i
        a = rng.integers(-3, 4, (M, K)).astype(np.float32)
        b = rng.integers(-3, 4, (K, N)).astype(np.float32)
        cases.append((a, b, a @ b))
    lin_w = rng.integers(-3, 4, (96, 80)).astype(np.float32)
    lin = ukernels.Linear(lin_w, backend="auto")
    x = rng.integers(-3, 4, (50, 80)).astype(np.float32)
    lin_ref = x @ lin_w.T
    stop = threading.Event()
    errors = []
    counts = [0] * 4

    def worker(i):
        try:
            j = 0
            while not stop.is_set():
                a, b, ref = cases[(i + j) % len(cases)]
                backend = ("ukernel", "codegen", "auto")[j % 3]
                if not np.array_equal(ukernels.matmul(a, b, backend=backend), ref):
                    errors.append(f"worker {i}: wrong matmul result")
                if not np.array_equal(lin(x), lin_ref):
                    errors.append(f"worker {i}: wrong Linear result")
                j += 1
                counts[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"worker {i}: {type(exc).__name__}: {exc}")

    nested = {"n": 0, "busy": False}

    def handler(signum, frame):
        if nested["busy"]:
            return
        nested["busy"] = True
        try:
            a, b, ref = cases[nested["n"] % len(cases)]
            if not np.array_equal(ukernels.matmul(a, b), ref):
                errors.append("signal handler: wrong result")
            nested["n"] += 1
        finally:
            nested["busy"] = False

    old_threads = ukernels.get_num_threads()
    old_handler = signal.signal(signal.SIGALRM, handler)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    forks = 0
    signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
    try:
        deadline = time.monotonic() + DURATION_S
        k = 0
        while time.monotonic() < deadline:
            ukernels.set_num_threads(1 + k % 2)
            ukernels.release_workspace()
            a, b, ref = cases[k % len(cases)]
            if not np.array_equal(ukernels.matmul(a, b), ref):
                errors.append("main: wrong result")
            if k % 25 == 0:
                cache.clear_memo()
            if k % 40 == 0 and hasattr(os, "fork"):
                pid = os.fork()
                if pid == 0:
                    ok = np.array_equal(ukernels.matmul(a, b), ref) and np.array_equal(lin(x), lin_ref)
                    os._exit(0 if ok else 1)
                code = wait_child(pid, 30)
                if code != 0:
                    errors.append("a forked child hung" if code is None else f"a forked child failed: {code}")
                forks += 1
            k += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old_handler)
        stop.set()
        for t in threads:
            t.join(60)
        ukernels.set_num_threads(old_threads)
    assert not errors, errors[:5]
    assert all(c > 0 for c in counts) and nested["n"] > 0
    if hasattr(os, "fork"):
        assert forks > 0
    else:  # pragma: no cover
        pytest.skip("no os.fork on this platform: the fork part did not run")
