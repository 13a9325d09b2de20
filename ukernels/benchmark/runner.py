"""Running the workloads: every implementation checked against the reference, then timed
in blocks of back-to-back calls that alternate between implementations (so drift in the
machine's speed hits all alike), with every library pinned to the same thread count."""
import contextlib
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import ukernels
from ukernels._timing import median_time
from ukernels.benchmark import peers as P
from ukernels.benchmark.shapes import Shape
from ukernels.benchmark.workloads import NotApplicable, Workload


@dataclass
class Settings:
    threads: List[int]
    rounds: int  # alternating blocks per implementation
    block_seconds: float  # aim for blocks about this long (calls per block adapt to the shape)
    max_block: int
    settle: float  # idle seconds before each block on more than one thread (peer threads that spin)
    # timed seconds per implementation and case, at most (about): slow implementations get fewer
    # rounds and calls per block (at least one of each) instead of minutes per case
    case_seconds: float = 10.0


SETTINGS = {"quick": Settings([1, 2], 3, 0.03, 10, 0.05, 2.0), "full": Settings([1, 2], 5, 0.1, 30, 0.12, 8.0),
            "llm": Settings([1, 2], 5, 0.05, 30, 0.12, 4.0)}


def timing_plan(first: float, settings: Settings) -> Tuple[int, int]:
    """(calls per block, rounds) for an implementation whose warm call took ``first`` seconds:
    blocks of about block_seconds (up to max_block calls), and as many of the rounds as fit
    case_seconds (each block is calls + 1 calls, the warm-up included); never fewer than one."""
    first = max(first, 1e-7)
    calls = int(min(settings.max_block, max(1, settings.block_seconds // first)))
    rounds = int(min(settings.rounds, max(1, settings.case_seconds // (first * (calls + 1)))))
    return calls, rounds


@dataclass
class Result:
    workload: str
    shape: str
    M: int
    N: int
    K: int
    label: str
    threads: int
    impl: str
    library: str
    status: str  # ok | wrong | error | n/a
    reason: str = ""
    seconds: float = 0.0  # median over blocks of the block median
    seconds_min: float = 0.0
    seconds_max: float = 0.0
    calls: int = 0
    gflops: float = 0.0
    weight_gbs: float = 0.0  # bytes of the weight (b) per second: decode shapes' measure

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


@dataclass
class Impl:
    name: str
    library: str
    fn: Callable[[], object]
    times: List[float] = field(default_factory=list)
    rounds: int = 0
    calls: int = 1


@contextlib.contextmanager
def pinned_blas(threads: int) -> Iterator[None]:
    """numpy's BLAS limited to ``threads`` (threadpoolctl; without it, BLAS runs as configured:
    the report says so)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(threads):
        yield


def blas_pinning() -> str:
    import importlib.util
    return "threadpoolctl" if importlib.util.find_spec("threadpoolctl") else "not pinned (pip install threadpoolctl)"


def _build(workload: Workload, inp, shape: Shape, threads: int, peers: Sequence[str],
           record: Callable[..., None]) -> List[Impl]:
    impls = []
    for name, builder in workload.ours(inp, shape):
        try:
            impls.append(Impl(name, "ukernels", builder()))
        except NotApplicable as exc:
            record(name, "ukernels", "n/a", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            record(name, "ukernels", "error", f"{type(exc).__name__}: {exc}")
    for peer in peers:
        try:
            impls += [Impl(n, peer, fn) for n, fn in P.build(peer, workload.name, inp, shape, threads)]
        except NotApplicable as exc:
            record(peer, peer, "n/a", str(exc))
        except Exception as exc:  # noqa: BLE001 - a peer that fails to build is reported, not fatal
            record(peer, peer, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return impls


def run_case(workload: Workload, shape: Shape, inp, threads: int, peers: Sequence[str],
             settings: Settings) -> List[Result]:
    """All implementations of one workload at one shape and thread count."""
    results: List[Result] = []

    def record(impl, library, status, reason="", **kw):
        results.append(Result(workload.name, shape.name, shape.M, shape.N, shape.K, shape.label, threads, impl,
                              library, status, reason, **kw))

    ukernels.set_num_threads(threads)
    with pinned_blas(threads):
        impls = _build(workload, inp, shape, threads, peers, record)
        checked = []
        for im in impls:  # checked before timed; the first calls also warm up
            try:
                err = workload.check_result(im.fn(), inp, shape)
                t0 = time.perf_counter()
                im.fn()
                first = time.perf_counter() - t0
            except Exception as exc:  # noqa: BLE001
                record(im.name, im.library, "error", f"{type(exc).__name__}: {exc}")
                continue
            if err:
                record(im.name, im.library, "wrong", err)
                continue
            im.calls, im.rounds = timing_plan(first, settings)
            checked.append(im)
        for r in range(settings.rounds):
            for im in checked:
                if r >= im.rounds:
                    continue
                if threads > 1 and settings.settle:
                    time.sleep(settings.settle)
                im.times.append(median_time(im.fn, im.calls))  # (a warm call after the pause first)
    flops = shape.flops * inp.batch
    wbytes = workload.weight_bytes(shape)
    for im in checked:
        med = statistics.median(im.times)
        record(im.name, im.library, "ok", seconds=med, seconds_min=min(im.times), seconds_max=max(im.times),
               calls=im.calls, gflops=flops / med / 1e9, weight_gbs=wbytes / med / 1e9)
    return results


class Progress:
    """tqdm when installed, else a bar of its own redrawn in place on a terminal, else a line
    per step on stderr."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.n, self.enabled = total, 0, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, file=sys.stderr, unit="case", dynamic_ncols=True)
            except ImportError:
                pass

    def step(self, what: str) -> None:
        self.n += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description(what)
            self.bar.update(1)
        elif sys.stderr.isatty():
            done = 30 * self.n // max(self.total, 1)
            print(f"\r[{'#' * done}{'.' * (30 - done)}] {self.n}/{self.total} {what[:60]:<60}", end="",
                  file=sys.stderr, flush=True)
        else:
            print(f"[{self.n}/{self.total}] {what}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and sys.stderr.isatty():
            print(file=sys.stderr)


def run_all(workloads: Sequence[Workload], shapes: Sequence[Shape], peers: Sequence[str], settings: Settings,
            progress: bool = True, seed: int = 0) -> List[Result]:
    results: List[Result] = []
    bar = Progress(len(workloads) * len(shapes) * len(settings.threads), progress)
    rng = np.random.default_rng(seed)
    try:
        for w in workloads:
            for s in shapes:
                why = w.applies(s)
                if why:
                    for t in settings.threads:
                        results.append(Result(w.name, s.name, s.M, s.N, s.K, s.label, t, "(workload)", "", "n/a", why))
                        bar.step(f"{w.name} {s.name} {t}T")
                    continue
                inp = w.make(s, rng)
                for t in settings.threads:
                    bar.step(f"{w.name} {s.name} {t}T")
                    results += run_case(w, s, inp, t, peers, settings)
    finally:
        bar.close()
    return results


def best(results: Sequence[Result], library_is_ours: bool) -> Optional[Result]:
    """The fastest ok result of ukernels (True) or of any peer (False)."""
    pool = [r for r in results if r.status == "ok" and (r.library == "ukernels") == library_is_ours]
    return max(pool, key=lambda r: r.gflops) if pool else None
