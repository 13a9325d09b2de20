"""What this installation runs on: CPU, features, ISA, tiles, threads, compiler."""
import platform
from typing import Any, Dict

from ukernels import cpu
from ukernels._lib import ffi, lib
from ukernels.abi import ELEMENT_TYPES, NARROW_OUTPUT_TRIPLES, tile_function_name
from ukernels.runtime.plan import cache_sizes, ukernel_tile
from ukernels.runtime.threads import get_num_threads, usable_cores


def info() -> Dict[str, Any]:
    """A dict describing the CPU, the chosen ISA and what each element type runs."""
    isa = cpu.active_isa()
    l1d, l2 = cache_sizes()
    tiles = {}
    for name, types in ELEMENT_TYPES.items():
        M0, N0, K0 = ukernel_tile(types, isa, 1 << 30)  # with this CPU's dot-product feature tiles
        tiles[name] = {"tile": f"{M0}x{N0}x{K0}", "function": tile_function_name(types, M0, N0, K0, isa)}
    for name, (types, out) in NARROW_OUTPUT_TRIPLES.items():
        tiles[name] = dict(tiles[types.name], function=tiles[types.name]["function"] + f" + {out.name} write-back")
    return {
        "cpu": cpu.cpu_model(),
        "machine": platform.machine(),
        "features": cpu.feature_names(cpu.cpu_bits()),
        "supported_isas": cpu.supported_isas(),
        "isa": isa,
        "cache_l1d_bytes": l1d,
        "cache_l2_bytes": l2,
        "tiles": tiles,
        "threads": get_num_threads(),
        "usable_cores": usable_cores(),
        "compiler": ffi.string(lib.uk_build_compiler()).decode(),
        "cflags": ffi.string(lib.uk_build_flags()).decode(),
        "codegen": _codegen_info(isa),
    }


def _codegen_info(isa: str) -> Dict[str, Any]:
    from ukernels.codegen import cache, prebuilt, targets
    return {
        "runnable_targets": targets.host_targets(),
        "target_for_isa": {t: targets.target_for_isa(isa, t) for t in ELEMENT_TYPES},
        "cache_dir": cache.cache_dir(),
        "prebuilt_kernels": len(prebuilt.index()),
        "kernel_path": prebuilt.search_dirs(),
    }


def format_info(d: Dict[str, Any]) -> str:
    lines = [
        f"cpu:            {d['cpu']} ({d['machine']})",
        f"features:       {', '.join(d['features']) or 'none'}",
        f"isa:            {d['isa']} (supported: {', '.join(d['supported_isas'])}; UKERNELS_ISA lowers it)",
        f"caches:         L1d {d['cache_l1d_bytes'] // 1024} KiB, L2 {d['cache_l2_bytes'] // 1024} KiB per core",
        f"threads:        {d['threads']} (usable cores: {d['usable_cores']}; UKERNELS_NUM_THREADS overrides)",
        f"built with:     {d['compiler']}  [{d['cflags']} + per-ISA -m flags]",
        "tiles:",
    ]
    for name, t in d["tiles"].items():
        lines.append(f"  {name:<12} {t['tile']:<8} -> {t['function']}")
    cg = d["codegen"]
    lines += [
        f"codegen:        targets {', '.join(cg['runnable_targets'])}; used here: "
        + ", ".join(f"{k} -> {v}" for k, v in cg["target_for_isa"].items()),
        f"                {cg['prebuilt_kernels']} pre-generated kernels; cache {cg['cache_dir']}",
    ]
    return "\n".join(lines)
