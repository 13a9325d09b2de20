"""The demo: multiply real matrices through numpy and ukernels, check they
agree, and print GFLOP/s side by side (same thread count for both)."""
from typing import List, Tuple

import numpy as np

import ukernels
from ukernels import cpu
from ukernels._timing import interleaved


def _pin_numpy_threads(n: int):
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=n), f"numpy BLAS pinned to {n} thread(s)"
    except ImportError:
        import contextlib
        return contextlib.nullcontext(), "numpy BLAS threads not pinned (pip install threadpoolctl to pin)"


def run(quick: bool = False) -> int:
    """Runs the demo; returns 0 if every result agreed with numpy, 1 otherwise."""
    rng = np.random.default_rng(0)
    threads = ukernels.get_num_threads()
    ctx, note = _pin_numpy_threads(threads)
    print(f"ukernels {ukernels.__version__} on {cpu.cpu_model()}: isa {cpu.active_isa()}, {threads} thread(s); {note}")
    cases: List[Tuple[str, int, int, int]] = [
        ("MLP up-projection, bias+gelu", 256, 4096, 1024),
        ("square", 1024, 1024, 1024),
        ("odd shape, bias+relu", 127, 255, 511),
        ("int8 -> int32 (quantized)", 512, 1024, 1024),
    ]
    if quick:
        cases = [(n, max(1, m // 4), max(1, nn // 4), max(1, k // 4)) for n, m, nn, k in cases]
    rounds = 2 if quick else 4
    ok = True
    print(f"{'case':<30} {'M x N x K':>18} {'numpy':>10} {'ukernels':>10} {'ratio':>6}  check")
    with ctx:
        for name, M, N, K in cases:
            if name.startswith("int8"):
                a = rng.integers(-128, 128, (M, K), dtype=np.int8)
                b = rng.integers(-128, 128, (K, N), dtype=np.int8)
                ref_fn = lambda: a.astype(np.int32) @ b.astype(np.int32)  # noqa: E731
                uk_fn = lambda: ukernels.matmul(a, b)  # noqa: E731
                agree = np.array_equal(uk_fn(), ref_fn())
                check = "exact" if agree else "MISMATCH"
            else:
                a = rng.standard_normal((M, K), dtype=np.float32)
                b = (rng.standard_normal((K, N), dtype=np.float32) / np.sqrt(K)).astype(np.float32)
                bias = rng.standard_normal(N, dtype=np.float32)
                act = "gelu" if "gelu" in name else ("relu" if "relu" in name else None)
                if act == "gelu":
                    from math import erf, sqrt
                    verf = np.vectorize(erf, otypes=[np.float64])
                    def ref_fn():
                        x = a @ b + bias
                        return (0.5 * x * (1 + verf(x / sqrt(2.0)))).astype(np.float32)
                    ref_time_fn = lambda: a @ b + bias  # noqa: E731  (numpy gelu via vectorized erf is not a fair peer)
                elif act == "relu":
                    ref_fn = lambda: np.maximum(a @ b + bias, 0)  # noqa: E731
                    ref_time_fn = ref_fn
                else:
                    ref_fn = lambda: a @ b  # noqa: E731
                    ref_time_fn = ref_fn
                kwargs = {"bias": bias, "activation": act} if act else {}
                uk_fn = lambda: ukernels.matmul(a, b, **kwargs)  # noqa: E731
                err = float(np.max(np.abs(uk_fn().astype(np.float64) - ref_fn())))
                tol = 2 * K * np.finfo(np.float32).eps * float(np.max(np.abs(a) @ np.abs(b))) + 1e-5
                agree = err <= tol
                check = f"max|diff| {err:.1e} <= {tol:.1e}" if agree else f"MISMATCH {err:.1e} > {tol:.1e}"
                ref_fn = ref_time_fn
            ok &= agree
            flops = 2.0 * M * N * K
            tn, tu = interleaved([ref_fn, uk_fn], rounds, 3)
            print(f"{name:<30} {f'{M}x{N}x{K}':>18} {flops / tn / 1e9:>10.1f} {flops / tu / 1e9:>10.1f} "
                  f"{tn / tu:>6.2f}  {check}")
    print("GFLOP/s (int8: GOP/s) = 2*M*N*K / median time over alternating warm blocks (ukernels._timing).\n"
          "numpy is timed without its gelu (numpy has no vectorised erf); numpy has no int8 BLAS, so its\n"
          "int8 row is an int32 matmul.")
    print("all results agree with numpy" if ok else "SOME RESULTS DISAGREE WITH NUMPY")
    return 0 if ok else 1
