"""Benchmark: fused epilogues and prepared operators, in one interleaved run.

For (M, N, K) in (256,4096,1024), (16,4096,4096), (1024,1024,1024), 1 and 2 threads:

* ``Linear(w, bias, Gelu("tanh"))``        -- fused, weight prepacked
* ``Linear(w)`` alone                       -- the same without epilogue
* numpy unfused: ``x @ w + b`` then gelu (tanh form) in numpy
* ours unfused: ``ukernels.matmul(x, w)`` then the same numpy epilogue
* int8: ``Linear(w8, bias32, Requantize)`` vs ``Linear(w8)`` -> int32

The gelu is the tanh form everywhere (numpy has no vectorised erf), so all
columns compute the same function. Times are medians over alternating warm
blocks (see ukernels._timing.interleaved); numpy's BLAS is pinned to the same
thread count.

    python bench/bench_epilogue.py [--quick]
"""
import argparse
import math

import numpy as np

from threadpoolctl import threadpool_limits

import ukernels
from ukernels import ops as O
from ukernels._timing import interleaved

SHAPES = [(256, 4096, 1024), (16, 4096, 4096), (1024, 1024, 1024)]
C = math.sqrt(2.0 / math.pi)


def np_gelu_tanh(y):
    return 0.5 * y * (1.0 + np.tanh(C * (y + 0.044715 * y * y * y)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds = 2 if args.quick else 5
    rng = np.random.default_rng(0)
    print(f"# {ukernels.info()['cpu']} | isa {ukernels.info()['isa']}; GFLOP/s = 2*M*N*K / median time")
    print(f"{'M':>5} {'N':>5} {'K':>5} {'thr':>3} | {'fused':>7} {'plain':>7} {'np-unf':>7} {'uk-unf':>7} | "
          f"{'fused/np':>8} {'fused/uk-unf':>12} {'epi cost':>8} | {'q8 cost':>7}")
    for (M, N, K) in SHAPES:
        x = rng.standard_normal((M, K), dtype=np.float32)
        w = (rng.standard_normal((K, N), dtype=np.float32) / np.sqrt(K)).astype(np.float32)
        b = rng.standard_normal(N, dtype=np.float32)
        fused = ukernels.Linear(w, bias=b, epilogue=[O.Gelu("tanh")], layout="kn")
        plain = ukernels.Linear(w, layout="kn")
        x8 = rng.integers(-128, 128, (M, K), dtype=np.int8)
        w8 = rng.integers(-128, 128, (K, N), dtype=np.int8)
        b32 = rng.integers(-10000, 10000, N).astype(np.int32)
        q8 = ukernels.Linear(w8, bias=b32, epilogue=[O.Requantize(rng.uniform(1e-4, 1e-3, N).astype(np.float32),
                                                                  0, np.int8)], layout="kn")
        raw8 = ukernels.Linear(w8, layout="kn")
        for nt in (1, 2):
            ukernels.set_num_threads(nt)
            with threadpool_limits(limits=nt):
                t_f, t_p, t_np, t_uk, t_q, t_r = interleaved([
                    lambda: fused(x),
                    lambda: plain(x),
                    lambda: np_gelu_tanh(x @ w + b),
                    lambda: np_gelu_tanh(ukernels.matmul(x, w) + b),
                    lambda: q8(x8),
                    lambda: raw8(x8),
                ], rounds, 5)
            g = lambda t: 2.0 * M * N * K / t / 1e9  # noqa: E731
            print(f"{M:>5} {N:>5} {K:>5} {nt:>3} | {g(t_f):>7.1f} {g(t_p):>7.1f} {g(t_np):>7.1f} {g(t_uk):>7.1f} | "
                  f"{t_np / t_f:>7.2f}x {t_uk / t_f:>11.2f}x {100 * (t_f / t_p - 1):>7.1f}% | "
                  f"{100 * (t_q / t_r - 1):>6.1f}%", flush=True)
    print("fused/np: speedup of the fused Linear over numpy unfused; epi cost: fused vs plain Linear; "
          "q8 cost: int8 Linear + requantize vs int8 Linear -> int32")


if __name__ == "__main__":
    main()
