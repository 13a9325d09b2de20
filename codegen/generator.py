"""The build-time generator: render every kernel a spec file lists, compile
each with its target's flags, link them into one shared library, and write a
manifest the runtime loads (so pre-generated kernels need no compiler at run
time).

Spec file (JSON)::

    {"kernels": [
      {"types": "f32f32f32", "target": "avx2", "tiles": [[6, 16], [1, 16]], "static_k": [null, 186]},
      {"types": "s8s8s32", "target": "avx512_vnni", "tiles": [[16, 16]]},
      {"types": "f32f32f32", "target": "avx512", "shapes": [[16, 4096, 4096]]},
      {"types": "f32f32f32", "target": "avx2", "tiles": [[6, 16]], "epilogue": ["bias_col", "gelu_erf"], "out": "f32"}
    ]}

``tiles`` entries are [M0, N0]; ``static_k`` (default [null]) lists K trip
counts to specialise for (null: any K). ``shapes`` entries [M, N, K] derive
the tile the runtime would choose for that shape (and its narrow variant).
``epilogue`` (op names of codegen/epilogue.py) with ``out`` (the stored type) makes the
kernels apply that op list in registers (``fusion="register"``).

Manifest (``manifest.json`` beside the library)::

    {"format": "ukernels-kernels", "version": 1, "library": "libukernels_kernels.so",
     "library_sha256": "...", "compiler": "...", "kernels": [{"name": ..., "spec": {...}}, ...]}
"""
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Dict, Iterable, List, Optional

from . import compiler
from .render import KernelSpec, render
from .tiles import choose_tile

MANIFEST = "manifest.json"
FORMAT = "ukernels-kernels"
VERSION = 1


def specs_and_shapes_from_file(path: str):
    """(specs, {spec: [[M, N, K], ...]}): the shapes each kernel was generated for."""
    from ukernels._untrusted import read_json  # noqa: PLC0415 (setup.py loads this package standalone)
    try:
        doc = read_json(path)
    except ValueError as exc:
        raise ValueError(f"cannot read kernel spec file: {exc}") from None
    return specs_and_shapes(doc, path)


def specs_and_shapes(doc, path: str = "spec"):
    if not isinstance(doc, dict) or not isinstance(doc.get("kernels"), list):
        raise ValueError(f"{path}: expected a JSON object with a list 'kernels'")
    specs: List[KernelSpec] = []
    shapes_of: Dict[KernelSpec, List[List[int]]] = {}

    def ints(v, n, lo):
        return (isinstance(v, list) and len(v) == n
                and all(isinstance(x, int) and not isinstance(x, bool) and x >= lo for x in v))

    for i, entry in enumerate(doc["kernels"]):
        where = f"{path}: kernels[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("types"), str) \
                or not isinstance(entry.get("target"), str):
            raise ValueError(f"{where}: needs 'types' and 'target' (strings)")
        unknown = set(entry) - {"types", "target", "tiles", "shapes", "static_k", "epilogue", "out"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} (known: types, target, tiles, shapes, static_k, "
                             "epilogue, out)")
        ep, out = entry.get("epilogue", []), entry.get("out", "")
        if not isinstance(ep, list) or not all(isinstance(x, str) for x in ep) or not isinstance(out, str) \
                or (ep and not out):
            raise ValueError(f"{where}: 'epilogue' must be a list of op names with 'out' the stored type, e.g. "
                             f"\"epilogue\": [\"bias_col\", \"gelu_erf\"], \"out\": \"f32\"")
        ks = entry.get("static_k", [None])
        if not isinstance(ks, list) or not all(k is None or (isinstance(k, int) and not isinstance(k, bool) and k >= 1)
                                               for k in ks):
            raise ValueError(f"{where}: 'static_k' must be a list of null or positive integers, e.g. [null, 128], "
                             f"got {ks!r}")
        tile_list, shape_list = entry.get("tiles", []), entry.get("shapes", [])
        if not isinstance(tile_list, list) or not all(ints(t, 2, 1) for t in tile_list):
            raise ValueError(f"{where}: 'tiles' must be a list of [M0, N0] positive integers, got {tile_list!r}")
        if not isinstance(shape_list, list) or not all(ints(t, 3, 0) for t in shape_list):
            raise ValueError(f"{where}: 'shapes' must be a list of [M, N, K] integers >= 0, got {shape_list!r}")
        try:
            tiles = [(tuple(t), None) for t in tile_list]
            for shape in shape_list:
                M0, N0, _ = choose_tile(entry["types"], entry["target"], int(shape[0]))
                tiles.append(((M0, N0), [int(x) for x in shape]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{where}: unknown types/target combination {entry['types']!r}/{entry['target']!r} "
                             f"({exc})") from None
        if not tiles:
            raise ValueError(f"{where}: list 'tiles' or 'shapes'")
        for (M0, N0), shape in tiles:
            for k in ks:
                spec = KernelSpec(entry["types"], int(M0), int(N0), entry["target"], None if k is None else int(k),
                                  tuple(ep), out)
                try:
                    spec.check()
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
                if spec not in specs:
                    specs.append(spec)
                if shape is not None and shape not in shapes_of.setdefault(spec, []):
                    shapes_of[spec].append(shape)
    return specs, shapes_of


def build(specs: Iterable[KernelSpec], out_dir: str, jobs: int = 0, progress=sys.stderr,
          shapes: Optional[Dict[KernelSpec, List[List[int]]]] = None) -> str:
    """Builds the library + manifest into ``out_dir``; returns the manifest path.
    ``shapes`` records, per kernel, the problem shapes it was generated for
    (``backend="auto"`` prefers generated kernels for exactly those shapes)."""
    specs = list(specs)
    shapes = shapes or {}
    os.makedirs(out_dir, exist_ok=True)
    log_dir = os.path.join(out_dir, "logs")
    lib_name = "libukernels_kernels.so"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ukg_build_") as tmp:
        def one(item):
            i, spec = item
            obj = os.path.join(tmp, f"{i:05d}_{spec.name}.o")
            compiler.compile_object(render(spec), obj, spec.check(), log_dir)
            return obj

        objects: List[str] = []
        with ThreadPoolExecutor(max_workers=jobs or (os.cpu_count() or 1)) as pool:
            for n, obj in enumerate(pool.map(one, enumerate(specs)), 1):
                objects.append(obj)
                if progress is not None:
                    print(f"[{n}/{len(specs)}] {os.path.basename(obj)[6:-2]}", file=progress, flush=True)
        tmp_lib = os.path.join(out_dir, f".tmp-{os.getpid()}-{lib_name}")
        compiler.link_shared(objects, tmp_lib, log_dir)
        os.replace(tmp_lib, os.path.join(out_dir, lib_name))
    with open(os.path.join(out_dir, lib_name), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    manifest = {"format": FORMAT, "version": VERSION, "library": lib_name, "library_sha256": digest,
                "compiler": compiler.compiler_identity(), "kernels": [
                    {"name": s.name, "spec": asdict(s), "shapes": shapes.get(s, [])} for s in specs]}
    path = os.path.join(out_dir, MANIFEST)
    fd, tmp_manifest = tempfile.mkstemp(prefix=".tmp-", dir=out_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=1)
    os.chmod(tmp_manifest, 0o644)  # mkstemp makes 0600; installed kernels are world-readable
    os.replace(tmp_manifest, path)
    if progress is not None:
        print(f"built {len(specs)} kernels into {os.path.join(out_dir, lib_name)} in "
              f"{time.perf_counter() - t0:.1f} s", file=progress, flush=True)
    return path
