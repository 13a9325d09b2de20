"""``ukernels.codegen.tune`` (this module: tuning): benchmark candidate register tiles for one
problem on this machine and persist the winner beside the kernel cache
(``<cache root>/tuned.json``); later resolutions of that (types, target,
shape) use it, and ``backend="auto"`` then prefers the generated kernel.

Given an epilogue, ``tune`` also measures it applied at the tile level and in registers
(runtime/fusion.py) on the winning tile and persists which is faster for that shape and op list
(``"types:target:MxNxK:ops->out": "register" | "tile"``); ``fusion="auto"`` follows it."""
import json
import os
import tempfile
import time
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from ukernels._sync import ForkSafeLock
from ukernels._untrusted import UntrustedFileError, read_json
from ukernels.codegen import targets
from ukernels.codegen.cache import cache_dir
from ukernels.codegen.render import KernelSpec
from ukernels.codegen.tiles import k0_of

_lock = ForkSafeLock()
_loaded: Dict[str, Dict[str, List[int]]] = {}


def tuned_path() -> str:
    return os.path.join(os.path.dirname(cache_dir()), "tuned.json")


def _key(types: str, target: str, M: int, N: int, K: int) -> str:
    return f"{types}:{target}:{M}x{N}x{K}"


def _fusion_key(types: str, target: str, M: int, N: int, K: int, signature: str) -> str:
    return f"{_key(types, target, M, N, K)}:{signature}"


def _valid_fusion_entry(key: str, value) -> bool:
    """``"types:target:MxNxK:op,op->out": "register" | "tile"`` with a valid op list."""
    from ukernels.codegen import epilogue
    types, target, _, sig = key.split(":")
    if value not in ("register", "tile") or "->" not in sig or types not in targets.ELEMENT_TYPES:
        return False
    ops, out = sig.rsplit("->", 1)
    try:
        targets.target(target)
        epilogue.check(tuple(ops.split(",")) if ops else (), out, targets.ELEMENT_TYPES[types].family)
    except ValueError:
        return False
    return True


def _valid_entry(key, value) -> bool:
    """``"types:target:MxNxK": [M0, N0]`` with a tile the target can generate (or a fusion entry)."""
    if isinstance(key, str) and key.count(":") == 3:
        return _valid_fusion_entry(key, value)
    if not isinstance(key, str) or key.count(":") != 2:
        return False
    types, target, _ = key.split(":")
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return False
    try:
        KernelSpec.from_json({"types": types, "target": target, "M0": value[0], "N0": value[1]})
    except ValueError:
        return False
    return True


def _table() -> Dict[str, List[int]]:
    """The tuned tiles of tuned.json; a damaged file or entry is ignored (one warning)."""
    path = tuned_path()
    table = _loaded.get(path)
    if table is None:
        table = {}
        try:
            doc = read_json(path)
            if not isinstance(doc, dict):
                raise UntrustedFileError(f"{path}: expected a JSON object, got {type(doc).__name__}")
            bad = [k for k, v in doc.items() if not _valid_entry(k, v)]
            table = {k: v for k, v in doc.items() if k not in bad}
            if bad:
                warnings.warn(f"ukernels: ignoring {len(bad)} malformed entries of {path} (e.g. {bad[0]!r}); "
                              "re-run ukernels.codegen.tune for those shapes", RuntimeWarning, stacklevel=2)
        except UntrustedFileError as exc:
            if os.path.lexists(path):
                warnings.warn(f"ukernels: ignoring tuned tiles: {exc}", RuntimeWarning, stacklevel=2)
        _loaded[path] = table
    return table


def tuned_tile(types: str, target: str, M: int, N: int, K: int) -> Optional[Tuple[int, int, int]]:
    """The persisted winner for this problem, if tuned."""
    hit = _table().get(_key(types, target, M, N, K))
    return (hit[0], hit[1], k0_of(types, target)) if hit else None


def tuned_fusion(types: str, target: str, M: int, N: int, K: int, signature: str) -> Optional[str]:
    """"register" or "tile" if ``tune`` measured this shape with this op list, else None."""
    return _table().get(_fusion_key(types, target, M, N, K, signature))


def candidates(types: str, target: str, M: int) -> List[Tuple[int, int]]:
    """Register tiles that fit ``target`` (N0 multiples of the vector width)."""
    t = targets.target(target)
    lanes = t.f32_lanes if targets.ELEMENT_TYPES[types].family == "float" else (t.s32_lanes or 8)
    out = []
    for nv in (1, 2, 3, 4):
        N0 = nv * lanes
        for M0 in (1, 2, 4, 6, 8, 12, 16):
            if M0 > max(M, 1) * 2 and M0 > 1:
                continue
            spec = KernelSpec(types, M0, N0, target)
            try:
                spec.check()
            except ValueError:
                continue
            out.append((M0, N0))
    return out


def _best_time(fn, repeats: int) -> float:
    """Seconds per call of fn: the best of ``repeats`` batches of ~10 ms, after two warm-up calls."""
    fn()  # compile + warm up
    fn()
    t1 = time.perf_counter()
    fn()
    batch = max(1, int(0.01 / max(time.perf_counter() - t1, 1e-7)))
    best_t = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        best_t = min(best_t, (time.perf_counter() - t0) / batch)
    return best_t


def tune(m: int, n: int, k: int, *, dtype="float32", target: Optional[str] = None, repeats: int = 5,
         verbose: bool = False, epilogue=(), out_dtype=None) -> Dict[str, object]:
    """Benchmarks every candidate tile for an (m, k) x (k, n) product of ``dtype``
    on ``target`` (default: the best for the active ISA), persists the fastest,
    and returns {"tile": (M0, N0, K0), "results": {tile: seconds}}.

    With ``epilogue`` (ops from ``ukernels.ops``, operands of the problem's shape) and
    ``out_dtype`` as ``matmul`` takes them, it then times that epilogue at the tile level and
    in registers on the winning tile (interleaved), persists the faster for this shape and op
    list (``fusion="auto"`` follows it) and adds {"fusion": "register" | "tile",
    "fusion_results": {"tile": s, "register": s}}."""
    from ukernels import cpu
    from ukernels.abi import element_types_for
    from ukernels.runtime.dispatch import run_matmul
    dt = np.dtype(dtype)
    types = element_types_for(dt, dt)
    if types is None:
        raise TypeError(f"tune: unsupported dtype {dt}; use float32 or int8")
    isa = cpu.active_isa()
    target = target or targets.target_for_isa(isa, types.name)
    if target not in targets.host_targets():
        raise ValueError(f"tune: this CPU cannot run target {target!r}; runnable: {targets.host_targets()}")
    rng = np.random.default_rng(0)
    if types.name == "f32f32f32":
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
    else:
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    results: Dict[Tuple[int, int, int], float] = {}
    for M0, N0 in candidates(types.name, target, m):
        tile = (M0, N0, k0_of(types.name, target))
        fn = lambda: run_matmul(a, b, types, None, isa, "codegen", tile=tile, target=target)  # noqa: E731
        results[tile] = _best_time(fn, repeats)
        if verbose:
            print(f"  {M0}x{N0}: {2 * m * n * k / results[tile] / 1e9:.1f} GOP/s")
    best = min(results, key=results.get)
    entries = {_key(types.name, target, m, n, k): [best[0], best[1]]}
    out: Dict[str, object] = {"tile": best, "target": target, "results": results}
    if epilogue:
        from ukernels.runtime.epilogue import lower
        from ukernels.runtime.fusion import Fusion, register_form
        lowered = lower(list(epilogue), types, m, n, out_dtype)
        form, why = register_form(lowered)
        if form is None:
            raise ValueError(f"tune: this epilogue has no register form ({why})")
        times = {"tile": float("inf"), "register": float("inf")}
        for _ in range(2):  # interleaved: each strategy timed twice, the best kept
            for how in ("tile", "register"):
                fn = lambda: run_matmul(a, b, types, lowered, isa, "codegen", tile=best, target=target,  # noqa: E731
                                        fusion=how)
                times[how] = min(times[how], _best_time(fn, max(1, repeats // 2)))
        winner = min(times, key=times.get)
        entries[_fusion_key(types.name, target, m, n, k, Fusion(True, "", *form).signature)] = winner
        out.update(fusion=winner, fusion_results=times)
        if verbose:
            print(f"  epilogue {Fusion(True, '', *form).signature}: tile {2 * m * n * k / times['tile'] / 1e9:.1f}, "
                  f"register {2 * m * n * k / times['register'] / 1e9:.1f} GOP/s -> {winner}")
    with _lock:
        table = dict(_table())
        table.update(entries)
        path = tuned_path()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
            with os.fdopen(fd, "w") as f:
                json.dump(table, f, indent=1)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            from ukernels.codegen.compiler import CacheError
            raise CacheError(f"tune: cannot save {path}: {exc.strerror or exc} (set UKERNELS_CACHE_DIR "
                             "to a writable directory)") from None
        _loaded[path] = table
    from ukernels.runtime import dispatch
    dispatch.forget_resolutions()  # "auto" and codegen resolutions may now pick the tuned tile
    return out


def forget() -> None:
    """Drop the in-process view of tuned.json (tests)."""
    _loaded.clear()
