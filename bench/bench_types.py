"""Benchmark: every element-type triple beside our f32, measured interleaved in one run.

GOP/s = 2*M*N*K / median time (alternating warm blocks, ukernels._timing), at
1024^3 and 256x4096x1024 on 1 and 2 threads; plus precision="bf16" on float32
inputs (the rounding included) and f16/bf16 outputs. Ratios are to f32 in the
same run. Speed is never asserted in tests.

    python bench/bench_types.py [--quick]
    UKERNELS_ISA=avx2 python bench/bench_types.py
"""
import argparse

import ml_dtypes
import numpy as np

import ukernels
from ukernels import cpu
from ukernels._timing import interleaved

BF16 = ml_dtypes.bfloat16


def tile_table() -> None:
    """Each triple's tile kernel alone, as a fraction of its instruction's peak (probes)."""
    from tile_probe import dot_peak_avx512, instruction_for, tile_kernel_gops
    from ukernels.abi import ELEMENT_TYPES, tile_function_name
    from ukernels.runtime.plan import ukernel_tile
    isa = cpu.active_isa()
    peaks = {}
    print("tile kernels alone (operands in L1), one core:")
    for name, types in ELEMENT_TYPES.items():
        tile = ukernel_tile(types, isa, 1 << 20)
        fn = tile_function_name(types, *tile, isa)
        g = tile_kernel_gops(types, isa, tile)
        ins = instruction_for(name, fn)
        line = f"  {name:<12} {'x'.join(map(str, tile)):<8} {g:7.1f} GOP/s"
        if ins is not None:
            if ins[0] not in peaks:
                peaks[ins[0]] = dot_peak_avx512(ins[0])
            line += f"  {g / peaks[ins[0]]:5.1%} of {ins[1]}'s {peaks[ins[0]]:.0f} GOP/s"
        print(line + f"  ({fn})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tiles", action="store_true", help="also each tile kernel alone vs its instruction's peak")
    args = ap.parse_args()
    if args.tiles:
        tile_table()
    shapes = [(256, 1024, 512)] if args.quick else [(1024, 1024, 1024), (256, 4096, 1024)]
    rng = np.random.default_rng(0)
    print(f"ukernels {ukernels.__version__} on {cpu.cpu_model()}, ISA {cpu.active_isa()}")
    for threads in (1, 2):
        ukernels.set_num_threads(threads)
        for M, N, K in shapes:
            a = rng.standard_normal((M, K)).astype(np.float32)
            b = rng.standard_normal((K, N)).astype(np.float32)
            a8, b8 = rng.integers(-128, 128, (M, K)).astype(np.int8), rng.integers(-128, 128, (K, N)).astype(np.int8)
            cases = {
                "f32f32f32": lambda: ukernels.matmul(a, b),
                "f16f16f32": (lambda x, y: lambda: ukernels.matmul(x, y))(a.astype(np.float16), b.astype(np.float16)),
                "bf16bf16f32": (lambda x, y: lambda: ukernels.matmul(x, y))(a.astype(BF16), b.astype(BF16)),
                "bf16bf16bf16": (lambda x, y: lambda: ukernels.matmul(x, y, out_dtype=BF16))(a.astype(BF16),
                                                                                           b.astype(BF16)),
                "precision=bf16 (f32 in)": lambda: ukernels.matmul(a, b, precision="bf16"),
                "s8s8s32": lambda: ukernels.matmul(a8, b8),
                "u8s8s32": (lambda x: lambda: ukernels.matmul(x, b8))(a8.view(np.uint8)),
                "s16s16s32": (lambda x, y: lambda: ukernels.matmul(x, y))(a8.astype(np.int16), b8.astype(np.int16)),
                "s8s4s32": (lambda y: lambda: ukernels.matmul(a8, y))((b8 >> 4).astype(ml_dtypes.int4)),
            }
            names = list(cases)
            times = interleaved([cases[n] for n in names], rounds=3 if args.quick else 5, block=3)
            gop = {n: 2 * M * N * K / t / 1e9 for n, t in zip(names, times)}
            for n in names:
                print(f"{threads}T {M}x{N}x{K:<6} {n:<24} {gop[n]:7.1f} GOP/s  {gop[n] / gop['f32f32f32']:.2f}x f32")


if __name__ == "__main__":
    main()
