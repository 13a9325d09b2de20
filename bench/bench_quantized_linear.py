"""Benchmark: weight-quantized Linear layers beside the f32 Linear, interleaved in one run.

Per shape and thread count: f32 Linear (prepacked), int8 weights per channel (x quantized
per row per call), int4 weights with per-group scales (g32, g128). GOP/s = 2*M*N*K / median
time of alternating warm blocks (ukernels._timing); ratios to the f32 Linear in the same run.
Speed is never asserted in tests.

    python bench/bench_quantized_linear.py [--shapes 1x4096x4096,16x4096x4096,1024x1024x1024]
    UKERNELS_ISA=avx2 python bench/bench_quantized_linear.py
"""
import argparse

import numpy as np

import ukernels
from ukernels import cpu
from ukernels._timing import interleaved


def parse_shapes(text: str):
    try:
        return [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s]
    except ValueError:
        raise SystemExit(f"--shapes: expected MxNxK[,MxNxK...], got {text!r}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="1x4096x4096,16x4096x4096,1024x1024x1024,256x256x256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    shapes = parse_shapes(args.shapes)
    if any(len(s) != 3 or min(s) < 1 for s in shapes):
        raise SystemExit("--shapes: each shape is MxNxK with positive sizes")
    rng = np.random.default_rng(0)
    print(f"ukernels {ukernels.__version__} on {cpu.cpu_model()}, ISA {cpu.active_isa()}")
    for M, N, K in shapes:
        x = rng.standard_normal((M, K)).astype(np.float32)
        w = rng.standard_normal((N, K)).astype(np.float32)
        layers = {"f32": ukernels.Linear(w), "int8": ukernels.Linear(w, weight_dtype="int8")}
        for g in (32, 128):
            if K % g == 0:
                layers[f"int4 g{g}"] = ukernels.Linear(w, weight_dtype="int4", group_size=g)
        names = list(layers)
        for threads in (int(t) for t in args.threads.split(",")):
            ukernels.set_num_threads(threads)
            calls = [(lambda lin: lambda: lin(x))(layers[n]) for n in names]
            for c in calls:
                c()
            block = max(1, min(20, int(0.05 / max(2 * M * N * K / 50e9, 1e-6))))
            times = interleaved(calls, rounds=args.rounds, block=block)
            gop = {n: 2 * M * N * K / t / 1e9 for n, t in zip(names, times)}
            print(f"{threads}T {M}x{N}x{K}: " + ", ".join(
                f"{n} {gop[n]:.1f}" + ("" if n == "f32" else f" ({gop[n] / gop['f32']:.2f}x)") for n in names))


if __name__ == "__main__":
    main()
