"""``ukernels.explain``: what a matmul call would run, without running it."""
from typing import Any, Dict

import numpy as np

from ukernels import cpu
import ml_dtypes

from ukernels.abi import ELEMENT_TYPES, element_types_for
from ukernels.matmul import BACKENDS
from ukernels.runtime.dispatch import fusion_for, resolve
from ukernels.runtime.epilogue import lower
from ukernels.runtime.fusion import Fusion, check_fusion


def explain(M: int, N: int, K: int, *, dtype="float32", backend: str = "auto",
            source: bool = False, epilogue=(), out_dtype=None, fusion: str = "auto") -> Dict[str, Any]:
    """Describe how ``matmul`` on an (M, K) x (K, N) problem of ``dtype`` resolves.

    ``dtype``: the input dtype (both operands) or a triple name such as ``"u8s8s32"``.
    Returns the backend, the ukernel function (handwritten tile function or
    generated kernel name), the register tile, the workgroup tiles and their
    count, the K block, the threads, how the rhs is packed (in a phase of its own, in-tile,
    or not at all: small-M calls read a contiguous b in place), and with
    ``source=True`` the generated C source (codegen only), and where the epilogue runs
    (``fusion``: "tile" or "register", with the reason: what was asked, or what ``tune``
    measured for this shape and op list; ``epilogue``/``out_dtype`` as ``matmul`` takes them,
    operands of the (M, N) result's shape). Resolving the codegen backend compiles the kernel
    if it is not cached yet.
    """
    for name, v in (("M", M), ("N", N), ("K", K)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"explain: {name} must be an int >= 0, got {v!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if isinstance(dtype, str) and dtype in ELEMENT_TYPES:
        types = ELEMENT_TYPES[dtype]  # a triple name, e.g. "u8s8s32"
    else:
        dt = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
        types = element_types_for(dt, dt)
        if types is None:
            raise TypeError(f"explain: unsupported dtype {dt}; use one of {sorted(ELEMENT_TYPES)} or an input "
                            "dtype such as float32, float16, bfloat16, int8, int16")
    isa = cpu.active_isa()
    check_fusion(fusion)
    lowered = lower(list(epilogue), types, int(M), int(N), out_dtype)
    fz = fusion_for(fusion, backend, types, int(M), int(N), int(K), isa, lowered)
    # as for a C-contiguous b: small-M calls may read it in place
    r = resolve(types, int(M), int(N), int(K), isa, "codegen" if fz.register else backend, describe=True,
                rhs_in_place=True, fused=(fz.ops, fz.out) if fz.register else None)
    p = r.plan
    info: Dict[str, Any] = {
        "shape": (int(M), int(N), int(K)),
        "types": types.name,
        "isa": isa,
        "backend": r.backend,
        "kernel_types": p.types.name + (" (operands widened while packed)" if p.types.name != types.name else ""),
        "function": r.function,
        "ukernel_tile": f"{p.M0}x{p.N0}x{p.K0}",
        "workgroup_tile": f"{p.MC}x{p.NC}",
        "workgroups": p.workgroups,
        "k_block": p.KC,
        "threads": p.threads,
        "rhs_packing": ("none: rows of b read in place (a contiguous b; a partial last column tile is "
                        "packed)" if p.rhs_direct else "in-tile (per workgroup, before use)" if p.rhs_pack_in_tile
                        else "separate parallel phase"),
        "lhs_packing": "in-tile (per workgroup, before use)" if p.lhs_pack_in_tile else "separate parallel phase",
        "fusion": "register" if fz.register else "tile",
        "fusion_reason": fz.reason,
    }
    if fz.register:
        info["fused_ops"] = Fusion(True, "", fz.ops, fz.out).signature
    if r.kernel is not None:
        info["kernel_path"] = r.kernel.path
        info["kernel_origin"] = r.kernel.origin
        if source:
            from ukernels.codegen.render import render
            info["source"] = render(r.kernel.spec)
    return info


def format_explain(d: Dict[str, Any]) -> str:
    lines = [f"{k:<15} {v}" for k, v in d.items() if k != "source"]
    if "source" in d:
        lines += ["", d["source"]]
    return "\n".join(lines)
