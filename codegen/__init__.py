"""ukernels.codegen: mmt4d ukernels rendered from Jinja2 templates for one
tile, element-type triple and ISA, compiled by the system C compiler on first
use into an on-disk cache, and called through the same ABI as the
handwritten kernels (``uk_mmt4d_fn_t``)."""
# Relative imports only at module level: setup.py loads this package standalone
# (before ukernels is installed) to run the build-time generator.
from .compiler import CacheError, CodegenError, CompileError, CompilerNotFound
from .render import KernelSpec, render

__all__ = ["KernelSpec", "render", "CodegenError", "CompileError", "CompilerNotFound", "CacheError", "get_kernel",
           "tune"]


def tune(m: int, n: int, k: int, *, dtype="float32", target=None, repeats: int = 5, verbose: bool = False,
         epilogue=(), out_dtype=None):
    """Benchmark candidate tiles for this problem on this machine and persist the winner; with
    ``epilogue``, also whether it runs faster at the tile level or in registers (see
    ukernels.codegen.tuning.tune)."""
    from ukernels.codegen.tuning import tune as _tune
    return _tune(m, n, k, dtype=dtype, target=target, repeats=repeats, verbose=verbose, epilogue=epilogue,
                 out_dtype=out_dtype)


def get_kernel(spec: KernelSpec):
    """The compiled kernel for ``spec`` (memo, disk cache, or compiled now)."""
    from ukernels.codegen.cache import get_kernel as _get
    return _get(spec)
