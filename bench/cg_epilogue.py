"""Instruction counts of one Linear call, for epilogue costs without timing noise.

Run under callgrind, collecting only inside the C dispatch (valgrind 3.19 has no
AVX-512, hence the AVX2 level):

    for mode in plain fused raw8 q8; do
      UKERNELS_ISA=avx2 UKERNELS_NUM_THREADS=1 valgrind --tool=callgrind \
        --toggle-collect=uk_matmul_run --callgrind-out-file=cg.$mode.out \
        python bench/cg_epilogue.py $mode 256x4096x1024
      grep summary cg.$mode.out
    done

fused / plain = cost of bias + gelu(tanh) fused; q8 / raw8 = cost of requantization.
Measured here: 256x4096x1024 +2.63% and +1.25%; 1024^3 +2.66% and +1.22%.
"""
import sys, numpy as np, ukernels
from ukernels import ops as O
M, N, K = (int(v) for v in sys.argv[2].split("x"))
rng = np.random.default_rng(0)
x = rng.standard_normal((M, K), dtype=np.float32)
w = rng.standard_normal((K, N), dtype=np.float32)
b = rng.standard_normal(N, dtype=np.float32)
mode = sys.argv[1]
if mode == "fused":
    lin = ukernels.Linear(w, bias=b, epilogue=[O.Gelu("tanh")], layout="kn")
elif mode == "plain":
    lin = ukernels.Linear(w, layout="kn")
else:
    lin = ukernels.Linear(w.astype(np.int8), bias=b.astype(np.int32), layout="kn",
                          epilogue=[O.Requantize(0.001, 0, np.int8)] if mode == "q8" else [])
    x = x.astype(np.int8)
lin(x)
