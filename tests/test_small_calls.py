"""Small plain calls are recorded and replayed (runtime/dispatch.py: run_small): the replay must
give exactly what the full path gives, for new operand values every time, and must not be used
where anything the full path reads has changed (ISA, threads, settings) or where the operands
need conversion."""
import threading

import ml_dtypes
import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from ukernels.runtime import dispatch


def _ints(rng, shape, dtype):
    return rng.integers(-8, 9, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16, np.int8, np.int16],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(8, 8, 8), (1, 33, 7), (17, 5, 64), (40, 40, 40)], ids=str)
def test_replayed_calls_are_exact_for_new_operands(isa, dtype, shape):
    M, N, K = shape
    rng = np.random.default_rng(M + N + K)
    dispatch._small.clear()
    for i in range(4):  # call 1 records, calls 2-4 replay with new values in new arrays
        a, b = _ints(rng, (M, K), dtype), _ints(rng, (K, N), dtype)
        want = a.astype(np.int64) @ b.astype(np.int64)
        got = ukernels.matmul(a, b)
        np.testing.assert_array_equal(got, want.astype(got.dtype))
        assert got.shape == (M, N) and got.flags.c_contiguous
    assert len(dispatch._small) == 1  # recorded once, then replayed


def test_replay_follows_strides_and_settings(monkeypatch):
    monkeypatch.delenv("UKERNELS_ISA", raising=False)
    rng = np.random.default_rng(0)
    a, b = _ints(rng, (9, 12), np.float32), _ints(rng, (12, 10), np.float32)
    dispatch._small.clear()
    ukernels.matmul(a, b)
    ukernels.matmul(np.asfortranarray(a), b)  # other strides: another record
    assert len(dispatch._small) == 2
    for isa in ukernels.cpu.supported_isas():  # each ISA level: its own record (and its own kernels)
        monkeypatch.setenv("UKERNELS_ISA", isa)
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
    assert len(dispatch._small) == 2 + len(ukernels.cpu.supported_isas())
    from ukernels.runtime import threads
    monkeypatch.setattr(threads, "_requested", None)  # (set_num_threads would override the variable)
    monkeypatch.setenv("UKERNELS_NUM_THREADS", "oops")  # a bad setting is reported, not replayed past
    with pytest.raises(ValueError, match="UKERNELS_NUM_THREADS"):
        ukernels.matmul(a, b)


def test_operands_that_need_conversion_are_never_replayed():
    rng = np.random.default_rng(1)
    a, b = _ints(rng, (8, 8), np.float32), _ints(rng, (8, 8), np.float32)
    raw = np.zeros(a.nbytes + 1, np.uint8)
    mis = np.frombuffer(raw[1:].data, np.float32).reshape(8, 8)  # 1 byte off: copied for the C side
    mis[...] = a
    swapped = b.astype(">f4")
    dispatch._small.clear()
    for _ in range(3):
        np.testing.assert_array_equal(ukernels.matmul(mis, swapped), a @ b)
    assert len(dispatch._small) == 0


def test_calls_with_anything_else_are_not_replayed():
    rng = np.random.default_rng(2)
    a, b = _ints(rng, (8, 8), np.float32), _ints(rng, (8, 8), np.float32)
    dispatch._small.clear()
    for i in range(3):
        bias = np.full(8, i, np.float32)  # new values each call
        np.testing.assert_array_equal(ukernels.matmul(a, b, bias=bias), a @ b + bias)
        out = np.empty((8, 8), np.float32)
        assert ukernels.matmul(a, b, out=out) is out
        np.testing.assert_array_equal(out, a @ b)
    assert len(dispatch._small) == 0


def test_linear_replays_only_its_plain_calls():
    rng = np.random.default_rng(3)
    w, bias = _ints(rng, (24, 16), np.float32), _ints(rng, 24, np.float32)
    lin = ukernels.Linear(w, bias=bias, activation="relu")
    for i in range(3):
        x = _ints(rng, (5, 16), np.float32)
        np.testing.assert_array_equal(lin(x), np.maximum(x @ w.T + bias, 0))
        res = _ints(rng, (5, 24), np.float32)  # per-call ops: never replayed with old data
        np.testing.assert_array_equal(lin(x, epilogue=[O.Residual(res)]), np.maximum(x @ w.T + bias, 0) + res)
    assert len(lin._replays) == 1
    other = ukernels.Linear(2 * w)  # another Linear's records are its own
    x = _ints(rng, (5, 16), np.float32)
    np.testing.assert_array_equal(other(x), x @ (2 * w).T)
    np.testing.assert_array_equal(lin(x), np.maximum(x @ w.T + bias, 0))


def test_replays_from_many_threads_at_once():
    rng = np.random.default_rng(4)
    w = _ints(rng, (32, 32), np.float32)
    lin = ukernels.Linear(w)
    errors = []

    def work(seed):
        r = np.random.default_rng(seed)
        try:
            for _ in range(200):
                a, b = _ints(r, (16, 32), np.float32), _ints(r, (32, 24), np.float32)
                if not np.array_equal(ukernels.matmul(a, b), a @ b) or not np.array_equal(lin(a), a @ w.T):
                    errors.append(seed)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []


def test_reentered_replay_uses_its_own_work_area(monkeypatch):
    """A replay entered while this thread's replay work area is in use (a signal handler
    calling matmul mid-call) must take a buffer of its own and still be exact."""
    rng = np.random.default_rng(5)
    a, b = _ints(rng, (12, 20), np.float32), _ints(rng, (20, 9), np.float32)
    dispatch._small.clear()
    ukernels.matmul(a, b)  # recorded
    work = dispatch._replay_work
    monkeypatch.setattr(work, "busy", True)
    before = work.buf
    np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
    assert work.busy and work.buf is before  # untouched by the re-entered call


def test_replayed_strided_operands_are_exact():
    """Keys fix the strides: views with gaps are passed by address, not as buffers."""
    rng = np.random.default_rng(6)
    dispatch._small.clear()
    for _ in range(3):
        big_a, big_b = _ints(rng, (16, 40), np.float32), _ints(rng, (40, 22), np.float32)
        a, b = big_a[::2, 3:33], big_b[5:35, 4:13]  # rows with gaps (unit inner strides)
        assert not a.flags.c_contiguous and not b.flags.c_contiguous
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
    assert len(dispatch._small) == 1


def test_explicit_ukernel_backend_replays_under_its_own_key():
    rng = np.random.default_rng(7)
    a, b = _ints(rng, (10, 24), np.float32), _ints(rng, (24, 12), np.float32)
    dispatch._small.clear()
    for _ in range(3):
        np.testing.assert_array_equal(ukernels.matmul(a, b, backend="ukernel"), a @ b)
    assert len(dispatch._small) == 1
    np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)  # "auto": a key of its own
    assert len(dispatch._small) == 2
    np.testing.assert_array_equal(ukernels.matmul(a, b, backend="codegen"), a @ b)  # never replayed
    assert len(dispatch._small) == 2


def test_calls_on_the_pool_replay_too(monkeypatch):
    """Products big enough for 2 threads (but below the Ctrl-C threshold) replay on the pool."""
    from ukernels.runtime import threads
    monkeypatch.setattr(threads, "_requested", 2)
    rng = np.random.default_rng(8)
    dispatch._small.clear()
    for _ in range(4):
        a, b = _ints(rng, (256, 192), np.float32), _ints(rng, (192, 160), np.float32)
        assert ukernels.explain(256, 160, 192)["threads"] == 2
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
    assert len(dispatch._small) == 1
    (template, *_), = dispatch._small.values()
    assert template.max_threads == 2


def test_replays_arm_ctrl_c_and_rerun_a_cancelled_call(monkeypatch):
    """Products above the Ctrl-C threshold replay too (recorded on any thread), and a replay
    arms the handler as the slow path does: a cancelled replay is re-run to a complete result
    once Python's handlers ran without raising (the real signal: test_reliability.py)."""
    from ukernels._lib import ffi
    from ukernels.runtime import interrupt
    rng = np.random.default_rng(9)
    a, b = _ints(rng, (400, 400), np.float32), _ints(rng, (400, 400), np.float32)
    assert 2 * 400 ** 3 >= interrupt.MIN_FLOPS
    dispatch._small.clear()
    t = threading.Thread(target=lambda: ukernels.matmul(a, b))  # recorded on another thread
    t.start()
    t.join()
    assert len(dispatch._small) == 1
    flag = ffi.new("int32_t*", 1)  # as if SIGINT had arrived: the first replay stops at once
    armed, asked = [], []
    monkeypatch.setattr(interrupt, "should_arm", lambda flops: asked.append(flops) or True)
    monkeypatch.setattr(interrupt, "arm", lambda: armed.append(1) or (flag if len(armed) == 1 else ffi.NULL))
    monkeypatch.setattr(interrupt, "disarm", lambda: armed.append(-1))
    out = ukernels.matmul(a, b)
    np.testing.assert_array_equal(out, a @ b)
    assert asked[0] == 2 * 400 ** 3 and armed == [1, -1, 1, -1]  # armed, cancelled, re-run armed


def test_replays_keep_at_most_their_work_area_cap(monkeypatch):
    """A call whose packed operands and scratch exceed REPLAY_MAX_WORK is never recorded (a
    replay's work area stays allocated for its thread)."""
    monkeypatch.setattr(dispatch, "REPLAY_MAX_WORK", 64 * 1024)
    rng = np.random.default_rng(3)
    a, b = _ints(rng, (300, 300), np.float32), _ints(rng, (300, 300), np.float32)
    dispatch._small.clear()
    for _ in range(2):
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
    assert len(dispatch._small) == 0


def test_a_replayed_call_runs_only_its_few_python_frames():
    """The replay path's cost is counted, not timed: matmul / Linear -> small_call_key (+ the
    settings snapshot) -> run_small -> the C call: at most 5 Python frames, a bounded number of
    bytecodes and no import statement (an in-function import cost 0.8 us per call, as much as
    the C call of an 8x8x8 product)."""
    import dis
    import sys
    rng = np.random.default_rng(4)
    a, b = _ints(rng, (8, 8), np.float32), _ints(rng, (8, 8), np.float32)
    lin = ukernels.Linear(np.ascontiguousarray(b.T))
    for fn in (lambda: ukernels.matmul(a, b), lambda: lin(a)):
        fn()
        fn()  # recorded: the next one replays
        calls, ops = [], []

        def trace(frame, event, arg):
            frame.f_trace_opcodes = True
            if event == "call":
                calls.append(frame.f_code.co_name)
            elif event == "opcode":
                ops.append(dis.opname[frame.f_code.co_code[frame.f_lasti]])
            return trace
        previous = sys.gettrace()
        sys.settrace(trace)
        try:
            fn()
        finally:
            sys.settrace(previous)
        assert "run_small" in calls and len(calls) <= 5, calls  # lambda, entry, key, settings, run_small
        assert "IMPORT_NAME" not in ops and len(ops) <= 300, (len(ops), calls)


def test_release_workspace_frees_the_replay_work_area():
    """The replay work area (up to REPLAY_MAX_WORK per thread) counts in workspace_bytes() and
    release_workspace() frees it; the next replay allocates it again and stays exact."""
    rng = np.random.default_rng(5)
    a, b = _ints(rng, (64, 48), np.float32), _ints(rng, (48, 40), np.float32)
    dispatch._small.clear()
    ukernels.release_workspace()
    for _ in range(2):
        np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)  # recorded, then replayed
    area = dispatch._replay_work.buf[2]
    assert area > 0 and ukernels.workspace_bytes() >= area
    ukernels.release_workspace()
    assert dispatch._replay_work.buf is None and ukernels.workspace_bytes() == 0
    np.testing.assert_array_equal(ukernels.matmul(a, b), a @ b)
    assert dispatch._replay_work.buf[2] == area
