"""Instruction and data-access counts of one Linear call, for epilogue costs without timing
noise: the plain product, an epilogue at the tile level, the same epilogue in registers.

Run under callgrind, collecting only inside the C dispatch (valgrind 3.19 has no AVX-512,
hence the AVX2 level); --cache-sim=yes adds data reads (Dr) and writes (Dw):

    for mode in plain bias_gelu bias_silu_res raw8 q8; do for fusion in tile register; do
      UKERNELS_ISA=avx2 UKERNELS_NUM_THREADS=1 valgrind --tool=callgrind --cache-sim=yes \\
        --toggle-collect=uk_matmul_run --callgrind-out-file=cg.$mode.$fusion.out \\
        python bench/cg_epilogue.py $mode 256x4096x1024 $fusion
      grep summary cg.$mode.$fusion.out
    done; done

(bias_gelu|bias_silu_res) / plain = the cost of that epilogue over the f32 product, q8 / raw8
the cost of requantization over the int8 product (int32 out); tile vs register: where it runs.
Generated kernels (backend="codegen") for every mode, so only the epilogue's place differs.
"""
import sys

import numpy as np

import ukernels
from ukernels import ops as O

mode = sys.argv[1]
M, N, K = (int(v) for v in sys.argv[2].split("x"))
fusion = sys.argv[3] if len(sys.argv) > 3 else "tile"
rng = np.random.default_rng(0)
x = rng.standard_normal((M, K), dtype=np.float32)
w = rng.standard_normal((K, N), dtype=np.float32)
b = rng.standard_normal(N, dtype=np.float32)
res = rng.standard_normal((M, N), dtype=np.float32)
per_call = []
kw = dict(layout="kn", backend="codegen", fusion=fusion)
if mode == "plain":
    lin = ukernels.Linear(w, **kw)
elif mode == "bias_gelu":
    lin = ukernels.Linear(w, bias=b, epilogue=[O.Gelu()], **kw)
elif mode == "bias_silu_res":
    lin = ukernels.Linear(w, bias=b, epilogue=[O.Silu()], **kw)
    per_call = [O.Residual(res)]
elif mode in ("raw8", "q8"):
    lin = ukernels.Linear(w.astype(np.int8), bias=b.astype(np.int32),
                          epilogue=[O.Requantize(0.001, 0, np.int8)] if mode == "q8" else [], **kw)
    x = x.astype(np.int8)
else:
    raise SystemExit(f"mode must be plain, bias_gelu, bias_silu_res, raw8 or q8, got {mode!r}")
lin(x, epilogue=per_call)  # one call: the counts are of uk_matmul_run (compile and weight pack are outside it)
