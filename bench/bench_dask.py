"""Benchmark: ukernels as Dask's block kernel (ukernels.dask) vs Dask's own matmul on numpy
blocks vs plain ukernels.matmul on one machine, in one run.

Configurations: a distributed LocalCluster of 2 single-threaded worker processes, one of 1
worker process with 2 threads, and the local threaded scheduler; products 4096^3 and
8192x8192x4096 (f32), and batch inference: a 4096x4096 Linear over 65536 rows.
GFLOP/s = 2MNK / median wall time of `--reps` computes (inputs already in the workers'
memory: persisted before timing; results gathered to the client). numpy's BLAS is pinned to 1
thread per worker thread (threadpoolctl in each worker), like ukernels' own rule.

    python bench/bench_dask.py            # all of it (several minutes)
    python bench/bench_dask.py --quick    # 4096^3 and a 16384-row Linear only
"""
import argparse
import logging
import warnings

import numpy as np

import dask
import dask.array as da
from distributed import Client, LocalCluster, wait
from threadpoolctl import threadpool_limits

import ukernels
import ukernels.dask as ud
from ukernels._timing import median_time


def _pin_blas(n=1):
    from threadpoolctl import threadpool_limits as tl
    tl(n)
    return n


def main():
    # the inputs go into the cluster inside the graph once, before timing (persist): say nothing
    warnings.filterwarnings("ignore", message="Sending large graph")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--layer-reps", type=int, default=1, help="repetitions of the 65536-row Linear (~10 s each)")
    args = ap.parse_args()
    shapes = [(4096, 4096, 4096)] + ([] if args.quick else [(8192, 8192, 4096)])
    rows = 16384 if args.quick else 65536
    chunk = 2048
    rng = np.random.default_rng(0)
    print(f"# ukernels.dask vs dask.array on numpy blocks; chunks {chunk}; median of {args.reps}")
    configs = [("LocalCluster 2 workers x 1 thread", dict(n_workers=2, threads_per_worker=1)),
               ("LocalCluster 1 worker x 2 threads", dict(n_workers=1, threads_per_worker=2))]
    for M, N, K in shapes:
        a = rng.standard_normal((M, K), dtype=np.float32)
        b = rng.standard_normal((K, N), dtype=np.float32)
        flops = 2 * M * N * K
        ukernels.set_num_threads(2)
        with threadpool_limits(2):
            t_plain = median_time(lambda: ukernels.matmul(a, b), args.reps)
            t_np = median_time(lambda: a @ b, args.reps)
        print(f"\n{M}x{N}x{K}: plain ukernels.matmul (2 threads) {flops / t_plain / 1e9:.1f} GFLOP/s; "
              f"numpy (2 threads) {flops / t_np / 1e9:.1f}")
        with dask.config.set(scheduler="threads"), threadpool_limits(1):
            A, B = da.from_array(a, chunks=chunk), da.from_array(b, chunks=chunk)
            t_u = median_time(lambda: ud.matmul(A, B).compute(), args.reps)
            t_d = median_time(lambda: (A @ B).compute(), args.reps)
        print(f"  threaded scheduler: ukernels.dask {flops / t_u / 1e9:.1f}, dask numpy blocks "
              f"{flops / t_d / 1e9:.1f} GFLOP/s ({t_d / t_u:.2f}x); overhead vs plain {t_u / t_plain:.2f}x")
        for label, kw in configs:
            with LocalCluster(processes=True, host="127.0.0.1", dashboard_address=None,
                              silence_logs=logging.ERROR, **kw) as cluster, Client(cluster) as client:
                client.run(_pin_blas)
                A = client.persist(da.from_array(a, chunks=chunk))
                B = client.persist(da.from_array(b, chunks=chunk))
                wait([A, B])
                t_u = median_time(lambda: client.compute(ud.matmul(A, B)).result(), args.reps)
                t_d = median_time(lambda: client.compute(A @ B).result(), args.reps)
            print(f"  {label}: ukernels.dask {flops / t_u / 1e9:.1f}, dask numpy blocks {flops / t_d / 1e9:.1f} "
                  f"GFLOP/s ({t_d / t_u:.2f}x); overhead vs plain {t_u / t_plain:.2f}x")
    # batch inference
    K = N = 4096
    w = (rng.standard_normal((N, K), dtype=np.float32) / 64).astype(np.float32)
    x = rng.standard_normal((rows, K), dtype=np.float32)
    lin = ukernels.Linear(w)
    flops = 2 * rows * N * K
    ukernels.set_num_threads(2)
    t_plain = median_time(lambda: lin(x), args.layer_reps)
    print(f"\nLinear 4096x4096 over {rows} rows: plain Linear (2 threads) {flops / t_plain / 1e9:.1f} GFLOP/s")
    wt = np.ascontiguousarray(w.T)
    for label, kw in configs:
        with LocalCluster(processes=True, host="127.0.0.1", dashboard_address=None,
                          silence_logs=logging.ERROR, **kw) as cluster, Client(cluster) as client:
            client.run(_pin_blas)
            X = client.persist(da.from_array(x, chunks=(chunk, K)))
            wait(X)
            t_u = median_time(lambda: client.compute(lin.map_blocks(X)).result(), args.layer_reps)
            W = da.from_array(wt, chunks=(K, N))  # one block: sent to each worker once, like the Linear
            t_d = median_time(lambda: client.compute(X @ W).result(), args.layer_reps)
        print(f"  {label}: ukernels.dask.linear {flops / t_u / 1e9:.1f}, dask X @ W on numpy blocks "
              f"{flops / t_d / 1e9:.1f} GFLOP/s ({t_d / t_u:.2f}x); overhead vs plain {t_u / t_plain:.2f}x")


if __name__ == "__main__":
    main()
