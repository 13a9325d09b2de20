"""A/B of workgroup plans for one product: the planner's own plan against explicit MC x NC
workgroups, in finely interleaved blocks (this machine drifts by 5-30% between seconds, so
variants alternate in shuffled order every few milliseconds for the whole run).

    python bench/ab_plan.py 256x256x256 --threads 2 --kind linear 256x32 32x256
    python bench/ab_plan.py 512x512x512 --threads 1 --kind matmul 512x128

Each variant is a plan: "plan" (what runtime/plan.py chooses) or MCxNC (multiples of the
ukernel tile; lhs/rhs in-tile packing follow from the workgroup counts as the planner's
in_tile_packing derives them). Every variant's result is checked against float64 first.
Prints GFLOP/s: median, 25th percentile and best block. The planner's rules in runtime/plan.py cite its figures."""
import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import ukernels  # noqa: E402
from ukernels.runtime import dispatch  # noqa: E402
from ukernels.runtime import plan as plan_mod  # noqa: E402

_planner = plan_mod.plan_matmul
_override = {}


def _planned(*args, **kw):
    p = _planner(*args, **kw)
    if not _override:
        return p
    mc, nc = _override["mc"], _override["nc"]
    if mc % p.M0 or nc % p.N0:
        raise SystemExit(f"{mc}x{nc} is not a multiple of the ukernel tile {p.M0}x{p.N0}")
    prepacked = args[6] if len(args) > 6 else kw.get("prepacked", False)
    rhs_in_tile, lhs_in_tile = plan_mod.in_tile_packing(p.M1, p.N1, mc // p.M0, nc // p.N0, prepacked,
                                                        p.rhs_direct)
    return plan_mod.MatmulPlan(p.types, p.isa, p.M, p.N, p.K, p.M0, p.N0, p.K0, mc, nc, p.KC, p.threads,
                               rhs_in_tile, p.rhs_direct, lhs_in_tile)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", help="MxNxK")
    ap.add_argument("variants", nargs="*", default=[], help='"plan" or MCxNC (the planner\'s plan always runs)')
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--kind", choices=("matmul", "linear"), default="linear",
                    help="matmul(a, b) packs b per call; linear: a prepacked Linear without epilogue")
    ap.add_argument("--dtype", choices=("float32", "int8", "int4"), default="float32",
                    help="int8: int8 x int8 -> int32 (GOP/s); int4: a Linear of int4 weights, groups of 32 "
                         "(float32 activations; --kind linear)")
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_intermixed_args()
    M, N, K = map(int, args.shape.lower().split("x"))
    ukernels.set_num_threads(args.threads)
    dispatch.plan_matmul = _planned
    rng = np.random.default_rng(0)
    if args.dtype == "int8":
        a = rng.integers(-128, 128, (M, K), dtype=np.int8)
        b = rng.integers(-128, 128, (K, N), dtype=np.int8)
    elif args.dtype == "int4":
        if args.kind != "linear" or K % 32:
            raise SystemExit("--dtype int4 needs --kind linear and K a multiple of 32")
        a = rng.standard_normal((M, K), dtype=np.float32)
        q = rng.integers(-8, 8, (N, K), dtype=np.int8)
        scales = rng.uniform(0.01, 0.02, (N, K // 32)).astype(np.float32)
        b = (q.reshape(N, K // 32, 32) * scales[:, :, None]).reshape(N, K).T
    else:
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
    ref = a.astype(np.float64) @ b
    names = ["plan"] + [v for v in args.variants if v != "plan"]
    lins = []

    def make(name):
        if args.dtype == "int4":
            lin = ukernels.Linear.from_quantized(q, scales, group_size=32, bits=4, backend="ukernel")
            lins.append(lin)
            return lambda: lin(a)
        if args.kind == "linear":
            lin = ukernels.Linear(np.ascontiguousarray(b.T))
            lins.append(lin)
            return lambda: lin(a)
        bb = b.copy()
        return lambda: ukernels.matmul(a, bb)

    def select(name):  # each block plans afresh (no memoised plan or recorded replay carries over)
        _override.clear()
        if name != "plan":
            mc, nc = map(int, name.lower().split("x"))
            _override.update(mc=mc, nc=nc)
        dispatch.forget_resolutions()
        dispatch._small.clear()
        for lin in lins:
            lin._replays.clear()

    fns = [make(n) for n in names]
    for n, f in zip(names, fns):
        select(n)
        err = np.abs(f() - ref).max()
        tol = {"int8": 0.5, "int4": 0.05 * np.abs(ref).max()}.get(args.dtype, 1e-3 * np.sqrt(K))
        if not err < tol:
            raise SystemExit(f"{n}: wrong result (max error {err})")
    flop = 2 * M * N * K
    reps = max(3, int(2e-3 / (flop / 100e9 / args.threads)))
    times = [[] for _ in fns]
    order = list(range(len(fns)))
    end = time.time() + args.seconds
    while time.time() < end:
        random.shuffle(order)
        for i in order:
            select(names[i])
            fns[i]()  # plans, records, warms
            t0 = time.perf_counter()
            for _ in range(reps):
                fns[i]()
            times[i].append((time.perf_counter() - t0) / reps)
    print(f"{args.kind} {args.shape}, {args.threads} thread(s), {len(times[0])} blocks of {reps} calls, GFLOP/s:")
    for n, ts in zip(names, times):
        ts.sort()
        print(f"  {n:<12} median {flop / statistics.median(ts) / 1e9:6.1f}   p25 {flop / ts[len(ts) // 4] / 1e9:6.1f}"
              f"   best {flop / ts[0] / 1e9:6.1f}")


if __name__ == "__main__":
    main()
