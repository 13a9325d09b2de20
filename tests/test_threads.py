"""Concurrency: many Python threads calling at once, pool resizing."""
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
