"""Instruction counts per phase of one matmul / Linear call (callgrind; counts, not times).

    python bench/cg_phases.py                      # the issue-10 shapes, matmul and Linear
    python bench/cg_phases.py 256x256x256 ...      # other shapes

Each case runs in a child under ``valgrind --tool=callgrind --toggle-collect=uk_matmul_run``
(only the C dispatch is counted; valgrind 3.19 has no AVX-512, so the AVX2 level runs, on one
thread) and is split with callgrind_annotate's exclusive costs into: the ukernel (tile
functions), the lhs pack (the SIMD lhs pack), the portable packs ("rhs pack": the rhs's
16x1 row copies, and the lhs's partial edge panels), write-back (the rest of the tile task: copying accumulator rows
to the output, epilogue) and the rest (dispatch, pool). Percentages of uk_matmul_run.
"""
import os
import re
import subprocess
import sys
import tempfile

SHAPES = ["1024x1024x1024", "256x4096x1024", "4096x128x4096", "127x255x511", "256x256x256"]

CHILD = r"""
import sys, numpy as np, ukernels
M, N, K = (int(v) for v in sys.argv[2].split("x"))
rng = np.random.default_rng(0)
a = rng.standard_normal((M, K), dtype=np.float32)
b = rng.standard_normal((K, N), dtype=np.float32)
if sys.argv[1] == "linear":
    lin = ukernels.Linear(b, layout="kn")
    lin(a)
else:
    ukernels.matmul(a, b)
"""


def costs(annotate: str, pattern: str) -> list:
    """The Ir of each callgrind_annotate line whose function matches ``pattern`` (a function
    inlined from several source files has a line per file)."""
    out = []
    for line in annotate.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?\S*:(\S+)", line)
        if m and re.search(pattern, m.group(2)):
            out.append(int(m.group(1).replace(",", "")))
    return out


def summed(annotate: str, pattern: str) -> int:
    """The sum of a pattern's exclusive costs (inclusive ones would count a function once per
    line: take the largest line instead, as main() does for the total)."""
    return sum(costs(annotate, pattern))


def run(kind: str, shape: str) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        env = dict(os.environ, UKERNELS_ISA="avx2", UKERNELS_NUM_THREADS="1")
        subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=uk_matmul_run",
                        f"--callgrind-out-file={out}", sys.executable, "-c", CHILD, kind, shape],
                       check=True, env=env, capture_output=True)
        incl = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                              check=True, capture_output=True, text=True).stdout
        excl = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", out],
                              check=True, capture_output=True, text=True).stdout
    total = max(costs(incl, r"^uk_matmul_run$") or [0])
    tile = summed(excl, r"^uk_mmt4d_tile_")
    lhs = summed(excl, r"^uk_pack_lhs_f32_avx2('\d+)?$")
    rhs = summed(excl, r"^uk_pack_(x32|impl_x32)('\d+)?$")
    wb = summed(excl, r"^(uk_tile_task|uk_pack_then_tile_task|__memcpy|__memmove|memcpy|uk_epilogue)")
    return {"total": total, "ukernel": tile, "lhs pack": lhs, "rhs pack": rhs, "write-back": wb,
            "other": total - tile - lhs - rhs - wb}


def main() -> None:
    shapes = sys.argv[1:] or SHAPES
    print(f"{'case':<26} {'instructions':>14} {'ukernel':>8} {'lhs pack':>9} {'rhs pack':>9} "
          f"{'write-back':>11} {'other':>6}")
    for shape in shapes:
        for kind in ("matmul", "linear"):
            r = run(kind, shape)
            t = max(r["total"], 1)
            print(f"{kind + ' ' + shape:<26} {r['total']:>14,} " + " ".join(
                f"{100 * r[k] / t:>{w}.1f}%" for k, w in (("ukernel", 7), ("lhs pack", 8), ("rhs pack", 8),
                                                         ("write-back", 10), ("other", 5))))


if __name__ == "__main__":
    main()
