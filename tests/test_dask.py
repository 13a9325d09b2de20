"""ukernels.dask: blocks computed by ukernels, K blocks summed in a tree, the epilogue applied
once per output block on the complete sum; on the threaded scheduler and on a real
distributed.LocalCluster (2 worker processes, loopback), including a worker killed after it
held results. Small-integer data: results must equal numpy's exactly."""
import logging
import os
import time

import ml_dtypes
import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="needs dask[array] (pip install 'ukernels[dask]')")
import dask  # noqa: E402

import ukernels  # noqa: E402
import ukernels.dask as ud  # noqa: E402
from ukernels import ops as O  # noqa: E402


def _ints(rng, shape, dtype=np.float32, lo=-4, hi=5):
    return rng.integers(lo, hi, shape).astype(dtype)


CHUNKINGS = [  # (M chunks, K chunks, N chunks): regular, ragged in every dimension, one block
    ((32, 32), (24, 24, 24), (20, 20)),
    ((7, 40, 17), (5, 60, 7), (33, 1, 6)),
    ((64,), (72,), (40,)),
    ((1,) * 4 + (60,), (72,), (13, 27)),
]


@pytest.fixture(autouse=True)
def threaded():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.mark.parametrize("mc, kc, nc", CHUNKINGS, ids=["regular", "ragged", "single", "thin-rows"])
def test_matmul_is_exact_for_every_chunking(mc, kc, nc):
    rng = np.random.default_rng(sum(mc) + len(kc))
    a, b = _ints(rng, (sum(mc), sum(kc))), _ints(rng, (sum(kc), sum(nc)))
    C = ud.matmul(da.from_array(a, chunks=(mc, kc)), da.from_array(b, chunks=(kc, nc)))
    assert C.chunks == (mc, nc) and C.dtype == np.float32
    np.testing.assert_array_equal(C.compute(), a @ b)


@pytest.mark.parametrize("split_every", [2, 3, 8])
def test_epilogue_is_applied_once_on_the_complete_sum(split_every):
    """relu(p1) + relu(p2) != relu(p1 + p2) and a bias added per K block would be counted
    nk times: only the complete sum, once, gives numpy's result."""
    rng = np.random.default_rng(split_every)
    a, b = _ints(rng, (50, 96)), _ints(rng, (96, 30))
    bias = _ints(rng, 30)
    A, B = da.from_array(a, chunks=(25, 12)), da.from_array(b, chunks=(12, 15))  # 8 K blocks
    C = ud.matmul(A, B, bias=bias, activation="relu", epilogue=[O.Scale(0.5), O.Clamp(-3.0, 40.0)],
                  split_every=split_every)
    want = np.clip(np.maximum(a @ b + bias, 0) * 0.5, -3, 40)
    np.testing.assert_array_equal(C.compute(), want)
    # structure: the partial products carry no epilogue; one epilogue task per output block
    graph = dict(C.__dask_graph__())
    last = [v for k, v in graph.items() if isinstance(k, tuple) and k[0] == C.name]
    partial = [v for k, v in graph.items() if isinstance(k, tuple) and str(k[0]).endswith("-partial")]
    assert len(last) == 2 * 2 and len(partial) == 2 * 2 * 7
    assert all("epilogue" not in _task_args(v)[2] for v in partial)


def _task_args(task):
    """The arguments of a graph task (legacy tuple or dask's Task object)."""
    if isinstance(task, tuple):
        return task[1:]
    return tuple(getattr(a, "value", a) for a in task.args)


def test_int8_requantized_and_int32_results_are_exact():
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (40, 300), dtype=np.int8)
    b = rng.integers(-128, 128, (300, 24), dtype=np.int8)
    A, B = da.from_array(a, chunks=(16, 100)), da.from_array(b, chunks=(100, 8))
    C32 = ud.matmul(A, B)
    assert C32.dtype == np.int32
    np.testing.assert_array_equal(C32.compute(), a.astype(np.int64) @ b.astype(np.int64))
    scale = rng.uniform(1e-4, 1e-3, 24).astype(np.float32)
    ep = [O.Requantize(scale, 5, np.int8)]
    C8 = ud.matmul(A, B, epilogue=ep)
    assert C8.dtype == np.int8
    # numpy's reference of Requantize's documented arithmetic: the exact int32 sum (|sum| < 2^24,
    # exact in f32) times the f32 scale, rounded to nearest even, plus the zero point, saturated
    acc = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.float32)
    want = np.clip(np.rint(acc * scale) + np.float32(5), -128, 127).astype(np.int8)
    np.testing.assert_array_equal(C8.compute(), want)


@pytest.mark.parametrize("dtype_a, dtype_b", [(ml_dtypes.bfloat16,) * 2, (np.float16,) * 2, (np.int16,) * 2,
                                              (np.uint8, np.int8)], ids=["bf16", "f16", "s16", "u8s8"])
def test_element_types(dtype_a, dtype_b):
    rng = np.random.default_rng(2)
    lo = 0 if dtype_a == np.uint8 else -4
    a, b = _ints(rng, (33, 70), dtype_a, lo), _ints(rng, (70, 21), dtype_b)
    C = ud.matmul(da.from_array(a, chunks=(11, 30)), da.from_array(b, chunks=(30, 10)))
    want = a.astype(np.int64) @ b.astype(np.int64)
    np.testing.assert_array_equal(C.compute(), want.astype(C.dtype))


def test_residual_operands_numpy_and_dask_and_row_scales():
    rng = np.random.default_rng(3)
    a, b = _ints(rng, (30, 40)), _ints(rng, (40, 26))
    r1, r2 = _ints(rng, (30, 26)), _ints(rng, (30, 26))
    rows = _ints(rng, 30, lo=1, hi=4)
    A, B = da.from_array(a, chunks=(12, 15)), da.from_array(b, chunks=(15, 9))
    C = ud.matmul(A, B, epilogue=[O.Residual(r1), O.Residual(da.from_array(r2, chunks=(7, 26))),
                                  O.Scale(rows, axis="row")])
    np.testing.assert_array_equal(C.compute(), (a @ b + r1 + r2) * rows[:, None])


def test_numpy_inputs_are_accepted_and_chunked():
    rng = np.random.default_rng(4)
    a, b = _ints(rng, (60, 50)), _ints(rng, (50, 40))
    C = ud.matmul(a, b, chunks=20)
    assert C.chunks[0] == (20, 20, 20)
    np.testing.assert_array_equal(C.compute(), a @ b)
    C2 = ud.matmul(a, da.from_array(b, chunks=(25, 40)))  # numpy A follows B's K chunks
    np.testing.assert_array_equal(C2.compute(), a @ b)


def test_clear_errors():
    a, b = np.ones((8, 12), np.float32), np.ones((12, 6), np.float32)
    A = da.from_array(a, chunks=(4, 6))
    with pytest.raises(ValueError, match=r"A's column chunks \(6, 6\) differ from B's row chunks \(4, 4, 4\).*rechunk"):
        ud.matmul(A, da.from_array(b, chunks=(4, 6)))
    with pytest.raises(ValueError, match="must equal B's rows"):
        ud.matmul(A, da.ones((10, 6), chunks=5, dtype=np.float32))
    with pytest.raises(TypeError, match="same dtype"):
        ud.matmul(A, da.from_array(b.astype(np.int8), chunks=(6, 6)))
    with pytest.raises(TypeError, match="precision='f32'"):
        ud.matmul(A.astype(np.float64), da.from_array(b.astype(np.float64), chunks=(6, 6)))
    with pytest.raises(ValueError, match="split_every"):
        ud.matmul(A, da.from_array(b, chunks=(6, 6)), split_every=1)
    with pytest.raises(ValueError, match="threads"):
        ud.matmul(A, da.from_array(b, chunks=(6, 6)), threads=0)
    with pytest.raises(ValueError, match="2-D"):
        ud.matmul(da.ones((2, 3, 4), chunks=2), da.ones((4, 5), chunks=2))
    with pytest.raises(ValueError, match="bias"):
        ud.matmul(A, da.from_array(b, chunks=(6, 6)), bias=np.ones(5, np.float32))
    lin = ukernels.Linear(np.ones((6, 12), np.float32))
    with pytest.raises(ValueError, match=r"rechunk\(\{-1: -1\}\)"):
        ud.linear(lin, A)
    with pytest.raises(ValueError, match="in_features=12"):
        ud.linear(lin, da.ones((4, 10), chunks=2, dtype=np.float32))
    with pytest.raises(TypeError, match="ukernels.Linear"):
        ud.linear("not a layer", A)


def test_linear_over_row_chunks_any_leading_dims():
    rng = np.random.default_rng(5)
    w, bias = _ints(rng, (24, 40)), _ints(rng, 24)
    lin = ukernels.Linear(w, bias, activation="relu")
    x = _ints(rng, (3, 50, 40))
    X = da.from_array(x, chunks=(2, (7, 43), 40))
    Y = lin.map_blocks(X)
    assert Y.chunks == ((2, 1), (7, 43), (24,)) and Y.dtype == np.float32
    np.testing.assert_array_equal(Y.compute(), np.maximum(x @ w.T + bias, 0))
    np.testing.assert_array_equal(ud.linear(lin, x[0], chunks=16).compute(), np.maximum(x[0] @ w.T + bias, 0))


def test_thread_limit_is_per_thread(monkeypatch):
    monkeypatch.delenv("UKERNELS_NUM_THREADS", raising=False)
    outer = ukernels.get_num_threads()
    with ukernels.thread_limit(1):
        assert ukernels.get_num_threads() == 1
        with ukernels.thread_limit(outer + 5):
            assert ukernels.get_num_threads() == outer  # a limit, never more than the setting
        assert ukernels.get_num_threads() == 1
    assert ukernels.get_num_threads() == outer
    with pytest.raises(ValueError, match="thread_limit"):
        with ukernels.thread_limit(0):
            pass
    assert ud.task_threads() == 1  # outside a distributed worker: one task per core already


# ---- a real cluster ---------------------------------------------------------------------

distributed = pytest.importorskip("distributed", reason="needs distributed (pip install 'ukernels[dask]')")


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.ERROR) as c, Client(c) as client:
        yield c, client


def test_cluster_matmul_and_linear_are_exact(cluster):
    _, client = cluster
    rng = np.random.default_rng(6)
    a, b, bias = _ints(rng, (96, 160)), _ints(rng, (160, 48)), _ints(rng, 48)
    C = ud.matmul(da.from_array(a, chunks=(32, 40)), da.from_array(b, chunks=(40, 24)), bias=bias,
                  activation="relu")
    np.testing.assert_array_equal(client.compute(C).result(), np.maximum(a @ b + bias, 0))
    lin = ukernels.Linear(b.T.copy(), bias)
    np.testing.assert_array_equal(client.compute(lin.map_blocks(da.from_array(a, chunks=(12, 160)))).result(),
                                  a @ b + bias)


def _count_packs(dask_worker=None):
    import ukernels.linear as L
    if not hasattr(L, "_test_pack_count"):
        L._test_pack_count = 0
        real = L.pack

        def counted(*args, **kw):
            L._test_pack_count += 1
            return real(*args, **kw)
        L.pack = counted
    return L._test_pack_count


def _ukernels_threads_in_task(_):
    return ud.task_threads()


def test_cluster_linear_travels_once_and_packs_once_per_worker(cluster):
    _, client = cluster
    before = client.run(_count_packs)  # installs a counter of weight packs in each worker process
    rng = np.random.default_rng(7)
    w = _ints(rng, (64, 96))
    lin = ukernels.Linear(w)
    x = _ints(rng, (16 * 32, 96))
    Y = ud.linear(lin, da.from_array(x, chunks=(32, 96)))  # 16 tasks, equal row chunks
    np.testing.assert_array_equal(client.compute(Y).result(), x @ w.T)
    after = client.run(_count_packs)
    packs = {addr: after[addr] - before[addr] for addr in after}
    assert sum(packs.values()) >= 1 and all(n <= 1 for n in packs.values()), packs  # not once per task
    # 2 single-threaded workers on this host: worker threads x ukernels threads <= cores
    threads = client.gather(client.map(_ukernels_threads_in_task, range(4), pure=False))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert all(t == max(1, cores // 2) for t in threads), threads


def test_cluster_recomputes_what_a_killed_worker_held(cluster):
    _, client = cluster
    rng = np.random.default_rng(8)
    a, b = _ints(rng, (128, 200)), _ints(rng, (200, 64))
    bias = _ints(rng, 64)
    C = ud.matmul(da.from_array(a, chunks=(32, 50)), da.from_array(b, chunks=(50, 32)), bias=bias)
    want = a @ b + bias  # small integers: exact in f32, whatever the order of the sums
    P = client.persist(C)
    distributed.wait(P)
    held = client.has_what()
    victim = max(held, key=lambda w: len(held[w]))
    assert any(str(k).startswith("('ukernels-matmul") or "ukernels-matmul" in str(k) for k in held[victim])
    try:  # the worker process dies (its nanny starts a new one) before it can answer
        client.run(os._exit, 1, workers=[victim])
    except (distributed.comm.core.CommClosedError, OSError):
        pass
    deadline = time.monotonic() + 60
    while victim in client.scheduler_info(n_workers=-1)["workers"]:  # the scheduler saw it go
        assert time.monotonic() < deadline, "the killed worker is still listed after 60 s"
        time.sleep(0.05)
    np.testing.assert_array_equal(client.compute(P).result(timeout=120), want)
