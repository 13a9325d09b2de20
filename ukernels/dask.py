"""Dask arrays with ukernels as the block kernel (optional extra: ``pip install 'ukernels[dask]'``).

    import ukernels.dask
    C = ukernels.dask.matmul(A, B, bias=b, activation="gelu")   # lazy dask array
    C.compute()                                                 # any scheduler: threads, processes, distributed
    Y = ukernels.dask.linear(lin, X)                            # a prepacked Linear over row chunks

``matmul``: output block (i, j) is ``epilogue(sum_k A[i, k] @ B[k, j])``. Every K block
but the last is one ``ukernels.matmul`` into the accumulator type (float32 or int32), those
partial sums are added in a tree (fan-in ``split_every``), and the last K block's product
is computed with the tree's sum as a ``Residual`` followed by the epilogue: the epilogue
(bias, activation, requantization, ...) runs exactly once per output block, on the complete
sum, fused into the last block's write-back -- never on a partial sum.

``linear``: the Linear is one key of the graph, so a distributed cluster sends it to each
worker once (it pickles its arguments, not its packed panels); the worker keeps that one
object for every task that uses it, and the object packs its weight on first use -- once
per worker process. (The ``processes`` scheduler pickles inputs per task instead, so there
it is packed once per task.)

Threads: a Dask worker runs several tasks at once, and each ukernels call may use several
threads. Inside a task, calls use at most ``threads`` threads (``ukernels.thread_limit``); by
default, on a ``distributed`` worker, ``max(1, cores // T)`` where T is the number of worker
threads of all workers on that host (asked from the scheduler once per worker process: 2
single-threaded workers or 1 two-threaded worker on 2 cores: 1 each; 1 single-threaded
worker: 2), and 1 on the local threaded and processes schedulers, which already run one
task per core. The rule: worker threads x ukernels threads <= cores.
"""
import math
from dataclasses import fields, is_dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

import ukernels
from ukernels import ops as O
from ukernels.matmul import BACKENDS, _typed, build_epilogue, shorthand_ops
from ukernels.runtime.threads import thread_limit, usable_cores

try:
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("ukernels.dask needs Dask: pip install 'ukernels[dask]' "
                      "(dask[array] and distributed)") from exc

__all__ = ["matmul", "linear"]


# ---- threads inside a task ------------------------------------------------------------------

_host_threads: Dict[str, int] = {}  # worker address -> threads of all workers on its host


def task_threads(threads: Optional[int] = None) -> int:
    """The ukernels threads one task uses (the rule in the module doc)."""
    if threads is not None:
        return threads
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return 1  # local threaded / processes scheduler: one task per core already
    n = _host_threads.get(worker.address)
    if n is None:
        n = _host_threads[worker.address] = _threads_on_host(worker)
    return max(1, usable_cores() // n)


def _worker_nthreads(worker) -> int:
    return int(getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", 1) or 1)


def _threads_on_host(worker) -> int:
    """Worker threads of every worker on this worker's host (asked once per worker process;
    this worker's own count if the scheduler cannot be asked)."""
    own = _worker_nthreads(worker)
    try:
        from distributed import get_client
        info = get_client().scheduler_info(n_workers=-1)
        host = worker.address.rsplit(":", 1)[0]
        total = sum(int(w.get("nthreads", 0)) for addr, w in info["workers"].items()
                    if addr.rsplit(":", 1)[0] == host)
        return max(total, own)
    except Exception:  # noqa: BLE001 - a hint only: fall back to this worker's threads
        return own


def _check_threads(threads: Optional[int]) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be None (the rule in ukernels.dask's doc) or an int >= 1, got {threads!r}")


# ---- block tasks ------------------------------------------------------------------------------

def _partial(a: np.ndarray, b: np.ndarray, kw: Dict[str, Any], threads: Optional[int]) -> np.ndarray:
    """One K block's product, in the accumulator type, no epilogue."""
    with thread_limit(task_threads(threads)):
        return ukernels.matmul(a, b, **kw)


def _add(parts: List[np.ndarray]) -> np.ndarray:
    out = parts[0].copy()
    for p in parts[1:]:
        out += p  # float32 adds; int32 wraps like the ukernels accumulator
    return out


def _last(a: np.ndarray, b: np.ndarray, rest: Optional[np.ndarray], ops: List[O.EpilogueOp],
          residuals: List[np.ndarray], kw: Dict[str, Any], threads: Optional[int]) -> np.ndarray:
    """The last K block's product + the other blocks' sum (a Residual), then the epilogue."""
    ops = _fill_residuals(ops, residuals)
    if rest is not None:
        ops = [O.Residual(rest)] + ops
    with thread_limit(task_threads(threads)):
        return ukernels.matmul(a, b, epilogue=ops, **kw)


def _apply_linear(lin: "ukernels.Linear", x: np.ndarray, threads: Optional[int]) -> np.ndarray:
    with thread_limit(task_threads(threads)):
        return lin(x)


# ---- epilogue operands per output block ------------------------------------------------------

class _DaskOperand:
    """Placeholder for a dask-array epilogue operand: block index into the task's list."""

    def __init__(self, index: int):
        self.index = index


def _fill_residuals(ops: List[O.EpilogueOp], blocks: List[np.ndarray]) -> List[O.EpilogueOp]:
    return [replace(op, residual=blocks[op.residual.index]) if isinstance(op, O.Residual)
            and isinstance(op.residual, _DaskOperand) else op for op in ops]


def _slice_op(op: O.EpilogueOp, rows: slice, cols: slice) -> O.EpilogueOp:
    """``op`` with its array operands cut to the output block [rows, cols]."""
    if not is_dataclass(op):
        return op
    changes = {}
    for f in fields(op):
        v = getattr(op, f.name)
        if isinstance(v, (np.ndarray, list, tuple)):  # (a _DaskOperand is none of these)
            arr = np.asarray(v)
            axis = getattr(op, "axis", "column")
            if arr.ndim == 2:
                changes[f.name] = arr[rows, cols]
            elif arr.ndim == 1:
                changes[f.name] = arr[rows] if axis == "row" else arr[cols]
    return replace(op, **changes) if changes else op


def _as_dask(x, name: str, chunks) -> "da.Array":
    if isinstance(x, da.Array):
        return x
    arr = np.asarray(x) if not hasattr(x, "dtype") else x
    if getattr(arr, "ndim", 0) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {getattr(arr, 'shape', None)}")
    return da.from_array(arr, chunks=chunks)


def _placeholder(x) -> np.ndarray:
    """A zero-cost stand-in of x's shape and dtype (for validating the epilogue up front)."""
    return np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)


def matmul(A, B, *, bias=None, activation: Optional[str] = None, epilogue: Sequence[O.EpilogueOp] = (),
           out_dtype=None, precision: Optional[str] = None, backend: str = "auto", split_every: int = 4,
           threads: Optional[int] = None, chunks="auto") -> "da.Array":
    """``activation(A @ B + bias)`` (and ``epilogue``) as a lazy dask array, each block by ukernels.

    Args:
        A: (M, K) dask array (or a numpy array: chunked with ``chunks``, along K like B).
        B: (K, N) dask array (or numpy). A's K chunks must equal B's: blocks are multiplied
            pairwise (``B.rechunk({0: A.chunks[1]})`` aligns them).
        bias, activation, epilogue, out_dtype, precision, backend: as ``ukernels.matmul``;
            operands of the epilogue (bias: length N; per-row scales: length M; Residual:
            M x N, numpy or dask) are cut to each output block.
        split_every: fan-in of the tree that adds the K blocks' partial sums (>= 2).
        threads: ukernels threads per task (default: the rule in the module doc).
        chunks: chunks for numpy inputs (dask's ``from_array`` argument; default "auto").

    Returns:
        A dask array of chunks (A.chunks[0], B.chunks[1]) and the dtype ``ukernels.matmul``
        would return; nothing is computed until ``.compute()`` (or ``persist``).

    Raises:
        ValueError: not 2-D, K differs, K chunks differ, bad split_every/threads, bad epilogue.
        TypeError: unsupported or mixed dtypes (as ``ukernels.matmul``).
    """
    _check_threads(threads)
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an int >= 2, got {split_every!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if not isinstance(A, da.Array) and isinstance(B, da.Array):
        A = _as_dask(A, "A", (chunks, B.chunks[0]))
    A = _as_dask(A, "A", chunks)
    if not isinstance(B, da.Array):
        arr = np.asarray(B)
        if arr.ndim != 2:
            raise ValueError(f"B must be 2-D, got shape {arr.shape}")
        B = da.from_array(arr, chunks=(A.chunks[1], chunks))
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(f"A and B must be 2-D, got shapes {A.shape} and {B.shape}")
    (M, K), (K2, N) = A.shape, B.shape
    if any(math.isnan(d) for d in (M, K, K2, N)):
        raise ValueError("A and B need known shapes (call .compute_chunk_sizes() first)")
    if K != K2:
        raise ValueError(f"shapes do not match: A is {A.shape} and B is {B.shape}; A's columns (K={K}) must "
                         f"equal B's rows ({K2})")
    if A.chunks[1] != B.chunks[0]:
        raise ValueError(f"A's column chunks {A.chunks[1]} differ from B's row chunks {B.chunks[0]}: the K blocks "
                         f"are multiplied pairwise; rechunk one, e.g. B = B.rechunk({{0: A.chunks[1]}})")
    # dtypes and the epilogue, validated now (errors at graph build, not inside a worker)
    _, _, types = _typed(np.zeros((1, 1), A.dtype), np.zeros((1, 1), B.dtype), precision)
    dask_ops: List[Tuple[int, "da.Array"]] = []
    user_ops: List[O.EpilogueOp] = []
    for i, op in enumerate(epilogue if isinstance(epilogue, (list, tuple)) else [epilogue]):
        if isinstance(op, O.Residual) and isinstance(op.residual, da.Array):
            dask_ops.append((i, op.residual))
            op = replace(op, residual=_DaskOperand(len(dask_ops) - 1))
        user_ops.append(op)
    check_ops = [replace(op, residual=_placeholder(dask_ops[op.residual.index][1]))
                 if isinstance(op, O.Residual) and isinstance(op.residual, _DaskOperand) else op for op in user_ops]
    lowered = build_epilogue(types, M, N, bias, activation, check_ops if isinstance(epilogue, (list, tuple))
                             else epilogue, out_dtype)
    ops = shorthand_ops(bias, activation) + user_ops
    kw: Dict[str, Any] = {"backend": backend, "precision": precision}
    last_kw = dict(kw, out_dtype=out_dtype)

    name = "ukernels-matmul-" + tokenize(A, B, tokenize(bias), activation, tokenize(epilogue), out_dtype, precision,
                                          backend, split_every, threads)
    residuals = [r.rechunk((A.chunks[0], B.chunks[1])) for _, r in dask_ops]
    dsk: Dict[Any, Any] = {}
    row_starts = np.cumsum((0,) + A.chunks[0])
    col_starts = np.cumsum((0,) + B.chunks[1])
    nk = len(A.chunks[1])
    for i in range(len(A.chunks[0])):
        rows = slice(int(row_starts[i]), int(row_starts[i + 1]))
        for j in range(len(B.chunks[1])):
            cols = slice(int(col_starts[j]), int(col_starts[j + 1]))
            parts = [(name + "-partial", i, j, k) for k in range(nk - 1)]
            for k, key in enumerate(parts):
                dsk[key] = (_partial, (A.name, i, k), (B.name, k, j), kw, threads)
            level = 0
            while len(parts) > 1:  # the tree of additions
                nxt = []
                for g in range(0, len(parts), split_every):
                    key = (f"{name}-sum{level}", i, j, g // split_every)
                    dsk[key] = (_add, parts[g:g + split_every])
                    nxt.append(key)
                parts, level = nxt, level + 1
            block_ops = [_slice_op(op, rows, cols) for op in ops]
            dsk[(name, i, j)] = (_last, (A.name, i, nk - 1), (B.name, nk - 1, j), parts[0] if parts else None,
                                 block_ops, [(r.name, i, j) for r in residuals], last_kw, threads)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[A, B] + residuals)
    return da.Array(graph, name, chunks=(A.chunks[0], B.chunks[1]), meta=np.empty((0, 0), lowered.out_dtype))


def linear(lin: "ukernels.Linear", x, *, threads: Optional[int] = None, chunks="auto") -> "da.Array":
    """``lin(x)`` over the row chunks of ``x`` (..., K): one task per chunk, the Linear one key
    of the graph (sent to each distributed worker once, packed once per worker process).

    ``x``'s last dimension must be one chunk (``x.rechunk({-1: -1})``); numpy inputs are
    chunked along the rows with ``chunks``. Returns a lazy dask array of x's row chunks and
    ``lin.out_features`` columns."""
    if not isinstance(lin, ukernels.Linear):
        raise TypeError(f"lin must be a ukernels.Linear, got {type(lin).__name__}")
    _check_threads(threads)
    if not isinstance(x, da.Array):
        arr = np.asarray(x)
        if arr.ndim < 1:
            raise ValueError(f"x must have at least 1 dimension, got shape {arr.shape}")
        x = da.from_array(arr, chunks=(chunks,) * (arr.ndim - 1) + (-1,) if arr.ndim > 1 else -1)
    if x.ndim < 1 or x.shape[-1] != lin.in_features:
        raise ValueError(f"x's last dimension must be in_features={lin.in_features}, got shape {x.shape}")
    if len(x.chunks[-1]) != 1:
        raise ValueError(f"x's last dimension is split into chunks {x.chunks[-1]}; a Linear needs whole rows: "
                         "x = x.rechunk({-1: -1})")
    lin_key = "ukernels-linear-" + tokenize(lin)
    name = "ukernels-linear-apply-" + tokenize(lin_key, x, threads)
    dsk: Dict[Any, Any] = {lin_key: lin}
    for idx in np.ndindex(*[len(c) for c in x.chunks[:-1]]):
        dsk[(name,) + idx + (0,)] = (_apply_linear, lin_key, (x.name,) + idx + (0,), threads)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    out_dtype = _linear_out_dtype(lin, x.dtype)
    return da.Array(graph, name, chunks=x.chunks[:-1] + ((lin.out_features,),),
                    meta=np.empty((0,) * x.ndim, out_dtype))


def _linear_out_dtype(lin: "ukernels.Linear", x_dtype) -> np.dtype:
    """The dtype lin(x) returns for inputs of x_dtype (one one-row call: cheap, validates x_dtype)."""
    return lin(np.zeros((1, lin.in_features), dtype=x_dtype)).dtype

