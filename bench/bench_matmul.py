"""Benchmark: ukernels vs numpy's BLAS, measured interleaved in one run.

GFLOP/s = 2*M*N*K / median time (after warm-up), 1 and 2 threads, for both
libraries with the same thread count (numpy's BLAS pinned with threadpoolctl).
Also: the FMA peak of one core (probe), and the tile kernel alone on
L1/L2-resident panels as a fraction of that peak, and int8 -> int32.

    python bench/bench_matmul.py                 # all of it
    python bench/bench_matmul.py --quick         # fewer shapes / repeats
    UKERNELS_ISA=avx2 python bench/bench_matmul.py  # force an ISA level
"""
import argparse
import os
import sys
import time

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    sys.exit("bench needs threadpoolctl to pin numpy's BLAS threads: pip install threadpoolctl")

import ukernels
from ukernels import _timing, cpu
from ukernels._timing import SETTLE_S
from ukernels._lib import lib
from ukernels.abi import F32F32F32, S8S8S32
from ukernels.runtime.plan import UKERNEL_TILES
from tile_probe import fma_peak_avx2 as fma_peak, tile_kernel_gops

SHAPES = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
          (256, 4096, 1024), (16, 4096, 4096), (1, 4096, 4096), (127, 255, 511)]


def interleaved(fns, rounds: int, block: int):
    """See ukernels._timing.interleaved (settle time: --settle)."""
    return _timing.interleaved(fns, rounds, block, SETTLE_S)


def tile_kernel_gflops(types, isa: str, reps: int = 2000) -> float:
    """The register tile of ``types`` at ``isa`` alone (bench/tile_probe.py)."""
    return tile_kernel_gops(types, isa, UKERNEL_TILES[(types.name, isa)], reps=reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer shapes and repeats")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--settle", type=float, default=SETTLE_S,
                    help="seconds of idle before each timed block (default %(default)s; see interleaved())")
    ap.add_argument("--shapes", default=None, help="e.g. 1024x1024x1024,16x4096x4096 (MxNxK), default: the issue's list")
    args = ap.parse_args()
    globals()["SETTLE_S"] = args.settle
    isa = cpu.active_isa()
    info = ukernels.info()
    print(f"# {info['cpu']} | isa {isa} | features {', '.join(info['features'])}")
    print(f"# numpy {np.__version__}; GFLOP/s = 2*M*N*K / median time over alternating blocks of 5 warm calls; "
          f"ratio = ukernels / numpy (same thread count)")

    peak = fma_peak() if cpu.isa_cpu_bits(isa) & lib.UK_CPU_X86_AVX2_FMA else float("nan")
    print(f"\nFMA peak, one core (12 chains of 256-bit FMA): {peak:.1f} GFLOP/s")
    for types in (F32F32F32, S8S8S32):
        g = tile_kernel_gflops(types, isa, reps=200 if isa == "generic" else 2000)
        unit = "GFLOP/s" if types is F32F32F32 else "GOP/s"
        print(f"tile kernel alone {types.name} {'x'.join(map(str, UKERNEL_TILES[(types.name, isa)]))} @ {isa}: "
              f"{g:.1f} {unit} = {100 * g / peak:.0f}% of the f32 FMA peak")

    shapes = SHAPES[:3] + SHAPES[5:] if args.quick else SHAPES
    if args.shapes:
        shapes = [tuple(int(x) for x in sh.split("x")) for sh in args.shapes.split(",")]
    reps = 2 if args.quick else 5  # rounds of alternating blocks
    rng = np.random.default_rng(0)
    print(f"\n{'M':>5} {'N':>5} {'K':>5} {'thr':>3} {'ukernel':>8} {'codegen':>8} {'numpy':>8} "
          f"{'uk/np':>6} {'cg/np':>6} {'cg/uk':>6}   (f32 GFLOP/s)")
    results = {}
    for (M, N, K) in shapes:
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
        for nt in [int(t) for t in args.threads.split(",")]:
            ukernels.set_num_threads(nt)
            with threadpool_limits(limits=nt):
                tu, tc, tn = interleaved([lambda: ukernels.matmul(a, b, backend="ukernel"),
                                          lambda: ukernels.matmul(a, b, backend="codegen"),
                                          lambda: a @ b], reps, 5)
            flops = 2.0 * M * N * K
            gu, gc, gn = flops / tu / 1e9, flops / tc / 1e9, flops / tn / 1e9
            results[(M, N, K, nt)] = (gu, gc, gn)
            print(f"{M:>5} {N:>5} {K:>5} {nt:>3} {gu:>8.1f} {gc:>8.1f} {gn:>8.1f} {gu / gn:>6.2f} {gc / gn:>6.2f} "
                  f"{gc / gu:>6.2f}", flush=True)

    print("\ncodegen: first-use compile and cached resolution")
    from ukernels.codegen import cache as kcache, prebuilt
    from ukernels.codegen.render import KernelSpec
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        os.environ["UKERNELS_CACHE_DIR"] = d
        saved_builtin = prebuilt.BUILTIN_DIR
        prebuilt.BUILTIN_DIR = os.path.join(d, "none")  # time a real compile, not the prebuilt library
        kcache.clear_memo()
        spec = KernelSpec("f32f32f32", 16 if isa == "avx512" else (6 if isa == "avx2" else 6),
                          16 if isa != "generic" else 8, {"avx512": "avx512", "avx2": "avx2"}.get(isa, "generic"), 128)
        t0 = time.perf_counter()
        kcache.get_kernel(spec)
        t_compile = time.perf_counter() - t0
        n = 20000
        t0 = time.perf_counter()
        for _ in range(n):
            kcache.get_kernel(spec)
        t_memo = (time.perf_counter() - t0) / n
        kcache.clear_memo()
        t0 = time.perf_counter()
        kcache.get_kernel(spec)
        t_disk = time.perf_counter() - t0
        del os.environ["UKERNELS_CACHE_DIR"]
        prebuilt.BUILTIN_DIR = saved_builtin
        kcache.clear_memo()
    print(f"  {spec.name}: compile {t_compile * 1e3:.0f} ms, memoised resolution {t_memo * 1e6:.2f} us, "
          f"disk-cache load {t_disk * 1e3:.1f} ms")

    print("\nint8 x int8 -> int32 vs our own f32 (1024^3; 2 ops per multiply-add)")
    M = N = K = 1024
    a8 = rng.integers(-128, 128, (M, K), dtype=np.int8)
    b8 = rng.integers(-128, 128, (K, N), dtype=np.int8)
    a = a8.astype(np.float32)
    b = b8.astype(np.float32)
    for nt in [int(t) for t in args.threads.split(",")]:
        ukernels.set_num_threads(nt)
        ti, tf = interleaved([lambda: ukernels.matmul(a8, b8), lambda: ukernels.matmul(a, b)], reps, 5)
        gi, gf = 2.0 * M * N * K / ti / 1e9, 2.0 * M * N * K / tf / 1e9
        print(f"  threads {nt}: int8 {gi:.1f} GOP/s, f32 {gf:.1f} GFLOP/s, ratio {gi / gf:.2f}")


if __name__ == "__main__":
    main()
