"""ukernels: CPU matrix multiplication for numpy in the style of IREE's CPU backend.

Operands are packed into tiled layouts, the output is walked in workgroup
tiles on a persistent thread pool, each tile's matmul core is one mmt4d
ukernel call, and the epilogue (bias, activation) is applied to the tile in
cache before write-back.

Public API::

    ukernels.matmul(a, b, *, bias=None, activation=None, epilogue=(), out_dtype=None, backend="auto")
    ukernels.ops: BiasAdd, Residual, Scale, Clamp, Relu, Relu6, Gelu, Silu, Sigmoid, Tanh, Requantize
    ukernels.Linear(weight, bias=None, activation=None, epilogue=(), layout="nk", backend="auto")
    ukernels.set_num_threads(n) / ukernels.get_num_threads() / ukernels.thread_limit(n) (this thread only)
    ukernels.dask.matmul(A, B, ...) / ukernels.dask.linear(lin, x)  (Dask arrays; optional extra)
    ukernels.workspace_bytes() / ukernels.release_workspace()  (this thread's reusable buffers)
    ukernels.explain(M, N, K, dtype=..., backend=..., source=False) -> dict
    ukernels.info() -> dict
"""
from ukernels import ops
from ukernels.explain import explain
from ukernels.info import info
from ukernels.gated import GatedLinear
from ukernels.linear import Linear
from ukernels.matmul import matmul
from ukernels.runtime.threads import get_num_threads, set_num_threads, thread_limit
from ukernels.runtime.workspace import release_workspace, workspace_bytes

__version__ = "0.1.0"
__all__ = ["matmul", "Linear", "GatedLinear", "ops", "explain", "set_num_threads", "get_num_threads", "thread_limit",
           "workspace_bytes", "release_workspace", "info", "__version__"]


def __getattr__(name: str):
    # ``ukernels.codegen`` / ``ukernels.runtime`` after a plain ``import ukernels``,
    # imported on first use (codegen pulls in Jinja2, which matmul never needs).
    if name in ("codegen", "runtime"):
        import importlib
        return importlib.import_module(f"ukernels.{name}")
    raise AttributeError(f"module 'ukernels' has no attribute {name!r}")
