"""Concurrency: many Python threads calling at once, pool resizing."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import ukernels
from conftest import run_in_threads


def test_eight_python_threads_at_once():
    rng = np.random.default_rng(0)
    problems = []
    for i in range(8):
        M, N, K = 40 + 13 * i, 150 + 7 * i, 300 - 11 * i
        dtype = np.float32 if i % 2 == 0 else np.int8
        a = rng.integers(-4, 5, (M, K)).astype(dtype)
        b = rng.integers(-4, 5, (K, N)).astype(dtype)
        ref = a.astype(np.int64) @ b.astype(np.int64)
        problems.append((a, b, ref))

    def worker(i):
        a, b, ref = problems[i]
        for _ in range(20):
            out = ukernels.matmul(a, b, activation="relu")
            np.testing.assert_array_equal(out, np.maximum(ref, 0).astype(out.dtype))

    run_in_threads(worker, 8)


@pytest.mark.filterwarnings("ignore:.*more threads than the:RuntimeWarning")
def test_resizing_the_pool_while_other_threads_compute():
    a = np.ones((200, 300), np.float32)
    b = np.ones((300, 250), np.float32)
    stop = threading.Event()
    errors = []

    def compute():
        while not stop.is_set():
            try:
                assert (ukernels.matmul(a, b) == 300).all()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
                return

    old = ukernels.get_num_threads()
    ts = [threading.Thread(target=compute) for _ in range(3)]
    for t in ts:
        t.start()
    try:
        for n in (1, 2, 3, 2, 1, 2):
            ukernels.set_num_threads(n)
            assert ukernels.get_num_threads() == n
            assert (ukernels.matmul(a, b) == 300).all()
    finally:
        stop.set()
        for t in ts:
            t.join()
        ukernels.set_num_threads(old)
    assert not errors, errors[0]


_STEER_CHILD = r"""
import os, sys, time, numpy as np, ukernels
a = np.arange(256 * 256, dtype=np.float32).reshape(256, 256) % 7  # large enough for 2 threads
b = np.arange(256 * 512, dtype=np.float32).reshape(256, 512) % 5
want = a.astype(np.float64) @ b
for _ in range(3):  # UKERNELS_SPIN_US=0: the worker sleeps between calls and is woken each time
    time.sleep(0.05)  # (time to reach its sleep even on a loaded machine)
    assert np.array_equal(ukernels.matmul(a, b), want)
pid = os.getpid()
allowed = os.sched_getaffinity(0)
masks = {int(t): os.sched_getaffinity(int(t)) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid}
print(sorted(allowed), sorted(sorted(m) for m in masks.values()))
steered = [m for m in masks.values() if len(m) == len(allowed) - 1 and m < allowed]
sys.exit(0 if steered else 3)
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="steering pool workers needs Linux and at least 2 usable CPUs")
def test_sleeping_workers_are_woken_off_the_callers_cpu():
    """uk_pool.c: before waking sleeping workers the caller restricts them to its own CPUs
    minus the one it runs on (a woken worker placed on the caller's CPU waited behind it)."""
    env = dict(os.environ, UKERNELS_NUM_THREADS="2", UKERNELS_SPIN_US="0")
    env.pop("UKERNELS_ISA", None)
    r = subprocess.run([sys.executable, "-c", _STEER_CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux and at least 2 usable CPUs")
def test_a_caller_limited_to_one_cpu_leaves_worker_masks_alone():
    env = dict(os.environ, UKERNELS_NUM_THREADS="2", UKERNELS_SPIN_US="0")
    env.pop("UKERNELS_ISA", None)
    cpu = min(os.sched_getaffinity(0))
    child = ("import os, sys\nos.sched_setaffinity(0, {%d})\n" % cpu) + _STEER_CHILD.replace("sys.exit(0 if steered else 3)",
                                                                                                "sys.exit(3 if steered else 0)")
    r = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_thread_limit_never_resizes_the_pool():
    from ukernels.runtime import threads
    rng = np.random.default_rng(9)
    a, b = rng.integers(-4, 5, (256, 256)).astype(np.float32), rng.integers(-4, 5, (256, 256)).astype(np.float32)
    ukernels.matmul(a, b)
    pool = threads.get_pool()
    with ukernels.thread_limit(1):
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
        assert threads.get_pool() is pool
    assert threads.get_pool() is pool
