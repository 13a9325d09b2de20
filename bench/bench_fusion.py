"""Benchmark: the epilogue at the tile level vs in registers (fusion="tile" / "register"), per
shape, op list and thread count, in one interleaved run.

Workloads (a Linear, weight prepacked, generated kernels for both forms so only the epilogue's
place differs): bias+gelu (erf), bias+silu+residual (the residual passed per call), and int8
requantization (int8 x int8 weights, int32 bias, per-channel scales, int8 result). Per case:
the plain product (same kernel family, no epilogue, f32/int32 out) beside both forms, so the
epilogue's cost over the product is measured, and numpy's BLAS on the f32 product as the peer.
GOP/s = 2*M*N*K / median time of alternating warm blocks (ukernels._timing); numpy and our
pool pinned to the same thread count. Speed is never asserted in tests.

    python bench/bench_fusion.py [--shapes 256x4096x1024,...] [--threads 1,2] [--rounds 5]

Instruction and store counts (no timing noise): bench/cg_epilogue.py under callgrind.
"""
import argparse
import os

import numpy as np

import ukernels
from ukernels import cpu, ops as O
from ukernels._timing import interleaved

SHAPES = "256x4096x1024,1024x1024x1024,16x4096x4096,1x4096x4096,127x255x511"


def parse_shapes(text: str):
    try:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s]
    except ValueError:
        raise SystemExit(f"--shapes: expected MxNxK[,MxNxK...], got {text!r}") from None
    if any(len(s) != 3 or min(s) < 1 for s in shapes):
        raise SystemExit("--shapes: each shape is MxNxK with positive sizes")
    return shapes


def workloads(M: int, N: int, K: int, rng):
    """name -> (make_linear(fusion or None for the plain product), x, per-call epilogue, numpy peer or None)."""
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = (rng.standard_normal((N, K)) / np.sqrt(K)).astype(np.float32)
    bias = rng.standard_normal(N).astype(np.float32)
    res = rng.standard_normal((M, N)).astype(np.float32)
    xq = rng.integers(-128, 128, (M, K), dtype=np.int8)
    wq = rng.integers(-128, 128, (N, K), dtype=np.int8)
    bq = rng.integers(-5000, 5000, N).astype(np.int32)
    sq = rng.uniform(1e-4, 3e-4, N).astype(np.float32)

    def f32(ops, bias_=None):
        return lambda fusion: (ukernels.Linear(w, bias=bias_, epilogue=ops, backend="codegen", fusion=fusion)
                               if fusion else ukernels.Linear(w, backend="codegen", fusion="tile"))

    def q8(fusion):
        if fusion is None:
            return ukernels.Linear(wq, backend="codegen", fusion="tile")
        return ukernels.Linear(wq, bias=bq, epilogue=[O.Requantize(sq, 0, np.int8)], backend="codegen", fusion=fusion)

    wt = np.ascontiguousarray(w.T)
    return {
        "bias+gelu": (f32([O.Gelu()], bias), x, [], lambda: x @ wt),
        "bias+silu+residual": (f32([O.Silu()], bias), x, [O.Residual(res)], lambda: x @ wt),
        "int8 requantize": (q8, xq, [], None),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=SHAPES)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default="bias+gelu,bias+silu+residual,int8 requantize")
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    rng = np.random.default_rng(0)
    print(f"ukernels {ukernels.__version__} on {cpu.cpu_model()}, ISA {cpu.active_isa()}")
    print("GOP/s (epilogue cost over the plain product); register/tile > 1: registers faster")
    wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for M, N, K in parse_shapes(args.shapes):
        cases = workloads(M, N, K, rng)
        for name in wanted:
            make, x, per_call, peer = cases[name]
            lins = {"plain": make(None), "tile": make("tile"), "register": make("register")}
            for threads in (int(t) for t in args.threads.split(",")):
                ukernels.set_num_threads(threads)
                calls = [lambda: lins["plain"](x), lambda: lins["tile"](x, epilogue=per_call),
                         lambda: lins["register"](x, epilogue=per_call)]
                labels = ["plain", "tile", "register"]
                if peer is not None:
                    calls.append(peer)
                    labels.append("numpy")
                for c in calls:
                    c()
                block = max(1, min(20, int(0.05 / max(2 * M * N * K / 50e9, 1e-6))))
                limit = threadpool_limits(threads) if threadpool_limits else None
                try:
                    times = interleaved(calls, rounds=args.rounds, block=block)
                finally:
                    if limit is not None:
                        limit.unregister() if hasattr(limit, "unregister") else limit.restore_original_limits()
                t = dict(zip(labels, times))
                gop = {k: 2 * M * N * K / v / 1e9 for k, v in t.items()}
                line = (f"{threads}T {M}x{N}x{K} {name:<19} plain {gop['plain']:6.1f} | tile {gop['tile']:6.1f} "
                        f"(+{100 * (t['tile'] / t['plain'] - 1):5.1f}%) | register {gop['register']:6.1f} "
                        f"(+{100 * (t['register'] / t['plain'] - 1):5.1f}%) | register/tile "
                        f"{t['tile'] / t['register']:.3f}")
                if "numpy" in gop:
                    line += f" | numpy product {gop['numpy']:.1f} (plain/numpy {gop['plain'] / gop['numpy']:.2f})"
                print(line, flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
