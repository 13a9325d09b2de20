"""Benchmark: decode-sized Linear layers (M = 1..4) with their weights coming from DRAM.

As in a real model, where every layer's weights were evicted by the other layers' since the
last token, each variant is built as enough copies of the layer to rotate through more weight
bytes than the last-level cache (--rotate-mib, default 4x L3), and one timed call runs the
copies in turn. The read bandwidth of the same run (ukernels.benchmark.machine.read_bandwidth,
the best of three readers, measured before and after the layers) is printed beside each
variant's GB/s (weight bytes read per call, scales and sums counted) and the share of it.
Peers in the same run where installed: torch f32 and torch's dynamic int8 (fbgemm), pinned to
the same thread count. Variants interleave (ukernels._timing.interleaved). Nothing is asserted.

    python bench/bench_decode.py [--shapes 576x192,2048x5632] [--threads 1,2] [--m 1]
    python bench/bench_decode.py --threshold     # one-thread vs two-thread call cost by size
"""
import argparse
import os
import time

import numpy as np

import ukernels
from ukernels import cpu
from ukernels._timing import interleaved
from ukernels.benchmark.machine import read_bandwidth
from ukernels.runtime.plan import l3_size

DEFAULT_SHAPES = "576x192,576x576,576x1536,1536x576,2048x5632,5632x2048,2048x32000"


def layer_bytes(lin: "ukernels.Linear") -> int:
    """Bytes one M <= 16 call reads: the decode layout (weights, scales, sums) of a quantized
    layer, else the packed weight."""
    if lin._decode_ok:
        return lin._decode_plan().nbytes
    return lin.packed_nbytes


def variants(w: np.ndarray, K: int):
    out = {"f32": {}, "bf16": {"weight_dtype": "bf16"}, "int8": {"weight_dtype": "int8"},
           "int4": {"weight_dtype": "int4"}}
    for g in (32, 128):
        if K % g == 0:
            out[f"int4 g{g}"] = {"weight_dtype": "int4", "group_size": g}
    return out


def torch_peers(w: np.ndarray, copies: int, x: np.ndarray):
    try:
        import torch
    except ImportError:
        return {}
    import warnings
    N, K = w.shape
    xt = torch.from_numpy(x)
    peers = {}
    base = torch.nn.Linear(K, N, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.from_numpy(w))
    f32 = [torch.nn.Linear(K, N, bias=False) for _ in range(copies)]
    for m in f32:
        with torch.no_grad():
            m.weight.copy_(base.weight)
    peers["torch f32"] = (f32, 4 * N * K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = [torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(base), {torch.nn.Linear},
                                                    dtype=torch.qint8) for _ in range(copies)]
    peers["torch dyn int8"] = (q, N * K + 8 * N)

    def caller(mods):
        def call():
            with torch.inference_mode():
                for m in mods:
                    m(xt)
        return call
    return {name: (caller(mods), nbytes) for name, (mods, nbytes) in peers.items()}


def threshold(args) -> None:
    """Per weight size, the int8 M = 1 call on one thread vs split over two (weights in cache:
    the cost of the wake-up and join is what decides)."""
    from ukernels.runtime import decode
    rng = np.random.default_rng(0)
    print(f"{cpu.cpu_model()}, ISA {cpu.active_isa()}; int8 M=1, weights in cache; us per call")
    saved = decode.PARALLEL_MIN_BYTES
    try:
        for N in (64, 128, 256, 512, 1024, 2048):
            K = 1024
            lin = ukernels.Linear(rng.standard_normal((N, K)).astype(np.float32), weight_dtype="int8")
            x = rng.standard_normal((1, K)).astype(np.float32)
            ukernels.set_num_threads(2)
            res = {}
            for label, limit in (("1 thread", 1 << 62), ("2 threads", 0)):
                decode.PARALLEL_MIN_BYTES = limit
                lin._decode = None
                lin(x)
                res[label] = interleaved([lambda: lin(x)], rounds=args.rounds, block=200)[0] * 1e6
            print(f"  {N * K // 1024:5d} KiB: " + ", ".join(f"{k} {v:.1f}" for k, v in res.items()))
    finally:
        decode.PARALLEL_MIN_BYTES = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="KxN layers (in_features x out_features)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--m", type=int, default=1, help="rows of x (decode: 1)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rotate-mib", type=int, default=0, help="weight bytes each variant rotates through "
                    "(default 4x the L3)")
    ap.add_argument("--variants", default="", help="comma-separated subset (f32,bf16,int8,int4,int4 g32,...)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--threshold", action="store_true", help="measure the one/two-thread crossover")
    args = ap.parse_args()
    if args.threshold:
        threshold(args)
        return
    rotate = (args.rotate_mib << 20) or 4 * l3_size()
    rng = np.random.default_rng(0)
    thread_counts = [int(t) for t in args.threads.split(",")]
    print(f"ukernels on {cpu.cpu_model()}, ISA {cpu.active_isa()}, M = {args.m}, weights rotated through "
          f">= {rotate >> 20} MiB per variant (L3 {l3_size() >> 20} MiB)")
    bw = {t: read_bandwidth(t, 512, 3) for t in thread_counts}
    print("read bandwidth (same run, before): " + ", ".join(f"{t}T {v:.1f} GB/s" for t, v in bw.items()))
    for shape in args.shapes.split(","):
        K, N = (int(v) for v in shape.lower().split("x"))
        w = rng.standard_normal((N, K)).astype(np.float32)
        x = rng.standard_normal((args.m, K)).astype(np.float32)
        calls, nbytes = {}, {}
        for name, kw in variants(w, K).items():
            if args.variants and name not in args.variants.split(","):
                continue
            first = ukernels.Linear(w, **kw)
            per = layer_bytes(first)
            copies = max(2, min(256, -(-rotate // per)))
            layers = [first] + [ukernels.Linear(w, **kw) for _ in range(copies - 1)]
            xin = x.astype(first.dtype) if kw.get("weight_dtype") in (None,) else x
            calls[name] = (lambda ls, xi: lambda: [lin(xi) for lin in ls])(layers, xin)
            nbytes[name] = (per, copies)
        if not args.no_peers:
            copies = max(2, min(256, -(-rotate // (N * K))))
            for name, (call, per) in torch_peers(w, copies, x).items():
                calls[name], nbytes[name] = call, (per, copies)
        names = list(calls)
        for t in thread_counts:
            ukernels.set_num_threads(t)
            try:
                import torch
                torch.set_num_threads(t)
            except ImportError:
                pass
            fns = [calls[n] for n in names]
            for f in fns:
                f()
            times = interleaved(fns, rounds=args.rounds, block=3)
            print(f"{t}T K={K} N={N} M={args.m}:")
            for n, tt in zip(names, times):
                per, copies = nbytes[n]
                us = tt / copies * 1e6
                gbs = per / (tt / copies) / 1e9
                print(f"    {n:15s} {us:9.1f} us  {gbs:6.1f} GB/s  {100 * gbs / bw[t]:5.1f}% of read bw  "
                      f"({per / 1e6:.2f} MB x {copies})")
    bw2 = {t: read_bandwidth(t, 512, 3) for t in thread_counts}
    print("read bandwidth (same run, after): " + ", ".join(f"{t}T {v:.1f} GB/s" for t, v in bw2.items()))


if __name__ == "__main__":
    main()
