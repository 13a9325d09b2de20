"""What the machine can do, measured before the workloads: per-core peaks of the
instructions the tiles are built on, read bandwidth, a STREAM-like triad, the caches."""
import os
import platform
import threading
import time
from typing import Callable, Dict, List

import numpy as np

from ukernels import cpu
from ukernels._lib import ffi, lib
from ukernels.runtime.plan import cache_entries, cache_sizes

# uk_probe_dot_peak_avx512's `which`, with the CPU feature bit each instruction needs
_AVX512_DOTS = [("f32 vfmadd231ps zmm", 0, "UK_CPU_X86_AVX512_BASE"), ("bf16 vdpbf16ps", 1, "UK_CPU_X86_AVX512_BF16"),
                ("s16 vpdpwssd", 2, "UK_CPU_X86_AVX512_VNNI"), ("int8 vpdpbusd", 3, "UK_CPU_X86_AVX512_VNNI")]


def best_rate(run: Callable[[], float], tries: int) -> float:
    """Best G ops/s of ``run`` (which returns the ops it did) over ``tries``."""
    best = 0.0
    for _ in range(tries):
        t0 = time.perf_counter()
        ops = run()
        best = max(best, ops / (time.perf_counter() - t0) / 1e9)
    return best


def instruction_peaks(quick: bool) -> Dict[str, float]:
    """G ops/s (a multiply-add counts 2) of one core on each dot-product instruction this CPU has."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return {}
    bits = cpu.cpu_bits()
    tries = 3 if quick else 5
    peaks = {}
    if bits & lib.UK_CPU_X86_AVX2_FMA:
        peaks["f32 vfmadd231ps ymm"] = best_rate(lambda: lib.uk_probe_fma_peak_avx2(10_000_000), tries)
    if bits & lib.UK_CPU_X86_AVX512_BASE:
        for name, which, feature in _AVX512_DOTS:
            if bits & getattr(lib, feature):
                peaks[name] = best_rate(lambda w=which: lib.uk_probe_dot_peak_avx512(w, 2_500_000), tries)
    return peaks


def f32_peak(peaks: Dict[str, float]) -> float:
    """The f32 FMA peak of one core (the widest vector the CPU has), 0 when unknown."""
    return max([v for k, v in peaks.items() if k.startswith("f32")] or [0.0])


def _threaded(threads: int, work: Callable[[int], None]) -> float:
    """Seconds for ``threads`` Python threads running work(i) (C calls release the GIL)."""
    ths = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return time.perf_counter() - t0


def read_bandwidth(threads: int, mib: int, tries: int) -> float:
    """GB/s of ``threads`` threads each reading its share of a ``mib`` MiB buffer, best of
    ``tries`` and of three readers: the C probe with 1 and with 8 sequential streams per thread
    (decode kernels read a weight as 8 streams) and numpy's SIMD reduction (measured here on one
    core: 17-21, 21.5 and 28 GB/s: the best is what a kernel can reach)."""
    buf = np.ones((mib << 20) // 8, np.uint64)
    share = buf.nbytes // threads // 4096 * 4096
    base = buf.ctypes.data
    n = share // 8
    best = 0.0
    for streams in (1, 8, 0):  # 0: numpy's SIMD xor-reduction (releases the GIL) of each share
        for _ in range(tries):
            if streams:
                s = _threaded(threads, lambda i: lib.uk_probe_read(ffi.cast("void*", base + i * share), share, streams))
            else:
                s = _threaded(threads, lambda i: np.bitwise_xor.reduce(buf[i * n:(i + 1) * n]))
            best = max(best, share * threads / s / 1e9)
    return best


def triad_bandwidth(threads: int, mib: int, tries: int) -> float:
    """GB/s of a STREAM triad a = b + s*c (3 arrays of ``mib`` MiB; bytes read + written),
    split over ``threads`` threads, best of ``tries``."""
    n = (mib << 20) // 4
    a, b, c = np.zeros(n, np.float32), np.ones(n, np.float32), np.full(n, 2.0, np.float32)
    part = n // threads
    pa, pb, pc = (ffi.cast("float*", x.ctypes.data) for x in (a, b, c))
    best = 0.0
    for _ in range(tries):
        s = _threaded(threads, lambda i: lib.uk_probe_triad(pa + i * part, pb + i * part, pc + i * part, 3.0, part))
        best = max(best, 3 * 4 * part * threads / s / 1e9)
    return best


def _cache_levels() -> List[str]:
    """Each cache level as Linux describes cpu0's ("L1d 48K shared by CPUs 0", ...); empty elsewhere."""
    kinds = {"Data": "d", "Instruction": "i", "Unified": ""}
    return [f"L{e['level']}{kinds.get(e['type'], '')} {e['size']} shared by CPUs {e.get('shared_cpu_list', '?')}"
            for e in cache_entries()]


def measure(threads: List[int], quick: bool) -> Dict[str, object]:
    """Everything above, for the report's machine section."""
    l1d, l2 = cache_sizes()
    peaks = instruction_peaks(quick)
    mib, tries = (64, 3) if quick else (256, 5)
    return {
        "cpu": cpu.cpu_model(),
        "machine": platform.machine(),
        "isa": cpu.active_isa(),
        "features": cpu.feature_names(cpu.cpu_bits()),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "caches": _cache_levels() or [f"L1d {l1d // 1024} KiB", f"L2 {l2 // 1024} KiB"],
        "peaks_gops_per_core": peaks,
        "f32_peak_gflops_per_core": f32_peak(peaks),
        "read_gbs": {str(t): read_bandwidth(t, mib, tries) for t in threads},
        "triad_gbs": {str(t): triad_bandwidth(t, mib // 4, tries) for t in threads},
    }
