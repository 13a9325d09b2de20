"""Pre-generated kernels: manifests written by the build-time generator,
found in ``UKERNELS_KERNEL_PATH`` (directories, ``os.pathsep``-separated) and
in the package's own ``prebuilt/`` directory. A manifest is validated (format,
version, library hash) before any of its kernels is used; a broken one is
skipped with a warning naming it."""
import hashlib
import json
import os
import threading
import warnings
from typing import Dict, List, Optional, Tuple  # noqa: F401

from ukernels._env import getenv
from ukernels.codegen.generator import FORMAT, MANIFEST, VERSION
from ukernels.codegen.render import KernelSpec

PATH_ENV = "UKERNELS_KERNEL_PATH"
BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prebuilt")

_lock = threading.Lock()
_index: Dict[Tuple[str, ...], Dict[KernelSpec, Tuple[str, str]]] = {}
_shapes: Dict[Tuple[str, ...], set] = {}


def search_dirs() -> List[str]:
    dirs = [d for d in (getenv(PATH_ENV) or "").split(os.pathsep) if d]
    return dirs + [BUILTIN_DIR]


def _read_manifest(directory: str):
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            doc = json.load(f)
        if doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} v{VERSION} manifest")
        lib = os.path.join(directory, doc["library"])
        with open(lib, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != doc["library_sha256"]:
                raise ValueError(f"{lib} does not match the hash in the manifest")
        kernels = {KernelSpec(**k["spec"]): (lib, k["name"]) for k in doc["kernels"]}
        shapes = {(k["spec"]["types"], k["spec"]["target"], *map(int, sh)) for k in doc["kernels"]
                  for sh in k.get("shapes", [])}
        return kernels, shapes
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"ukernels: ignoring pre-generated kernels in {directory}: {exc}", RuntimeWarning,
                      stacklevel=3)
        return None


def index() -> Dict[KernelSpec, Tuple[str, str]]:
    """spec -> (library path, symbol) over every readable manifest (first one wins)."""
    dirs = tuple(search_dirs())
    found = _index.get(dirs)
    if found is not None:
        return found
    with _lock:
        merged: Dict[KernelSpec, Tuple[str, str]] = {}
        shapes: set = set()
        for d in dirs:
            kernels, sh = _read_manifest(d) or ({}, set())
            for spec, where in kernels.items():
                merged.setdefault(spec, where)
            shapes |= sh
        _shapes[dirs] = shapes
        _index[dirs] = merged
        return merged


def generated_for_shape(types: str, target: str, M: int, N: int, K: int) -> bool:
    """Whether some manifest lists a kernel generated for exactly this problem."""
    index()
    return (types, target, M, N, K) in _shapes.get(tuple(search_dirs()), set())


def find(spec: KernelSpec) -> Optional[Tuple[str, str, KernelSpec]]:
    """(library, symbol, served spec) of a pre-generated kernel for ``spec`` or,
    failing that, for the same tile with no static K (it serves any K)."""
    idx = index()
    hit = idx.get(spec)
    if hit is not None:
        return hit[0], hit[1], spec
    if spec.static_k is not None:
        dynamic = KernelSpec(spec.types, spec.M0, spec.N0, spec.target, None)
        hit = idx.get(dynamic)
        if hit is not None:
            return hit[0], hit[1], dynamic
    return None


def reset() -> None:
    with _lock:
        _index.clear()
        _shapes.clear()
