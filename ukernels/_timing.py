"""Timing helpers shared by the demo and bench/: medians over alternating
warm blocks, with a settle pause before each block.

OpenBLAS's idle threads busy-wait for 2^28 cycles (~0.1 s) after a call, which
would take a core away from whatever runs next; and this kind of machine is
noisy. So each function is timed in blocks of back-to-back calls (the first,
warm-up, call discarded), the blocks of the different functions alternate,
and the machine settles for ``settle`` seconds before each block."""
import statistics
import time
from typing import Callable, List, Sequence

SETTLE_S = 0.15


def median_time(fn: Callable[[], object], reps: int) -> float:
    """Median of ``reps`` timed calls after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: Sequence[Callable[[], object]], rounds: int, block: int,
                settle: float = SETTLE_S) -> List[float]:
    """Median time of each fn over ``rounds`` alternating blocks of ``block`` calls."""
    per: List[List[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            time.sleep(settle)
            per[i].append(median_time(fn, block))
    return [statistics.median(p) for p in per]
