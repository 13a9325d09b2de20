"""Benchmark: stacked (batched) matmul, one ukernels dispatch vs np.matmul, interleaved.

    python bench/bench_batched.py

Shapes: 32 x (128x64 @ 64x128) with per-item b, 8 x (512x512) @ a shared 512x512 b, 64 x
(16x256 @ 256x256) shared (decode-like heads), 1 and 2 threads, numpy's BLAS pinned alike.
"""
import sys

import numpy as np

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    sys.exit("bench needs threadpoolctl to pin numpy's BLAS threads: pip install threadpoolctl")

import ukernels
from ukernels._timing import interleaved

CASES = [("32x128x64 @ 32x64x128", (32, 128, 64), (32, 64, 128)),
         ("8x512x512 @ 512x512 (shared b)", (8, 512, 512), (512, 512)),
         ("64x16x256 @ 256x256 (shared b)", (64, 16, 256), (256, 256))]


def main() -> None:
    rng = np.random.default_rng(0)
    for name, sa, sb in CASES:
        a = rng.standard_normal(sa, dtype=np.float32)
        b = rng.standard_normal(sb, dtype=np.float32)
        flops = 2 * np.prod(sa) * sb[-1]
        np.testing.assert_allclose(ukernels.matmul(a, b), np.matmul(a, b), rtol=1e-4, atol=1e-3)
        for t in (1, 2):
            ukernels.set_num_threads(t)
            with threadpool_limits(t):
                tn, tu = interleaved([lambda: np.matmul(a, b), lambda: ukernels.matmul(a, b)], 5, 5)
            print(f"{name:<34} {t}T  numpy {flops / tn / 1e9:6.1f}  ukernels {flops / tu / 1e9:6.1f} GFLOP/s  "
                  f"ratio {tn / tu:4.2f}x")


if __name__ == "__main__":
    main()
