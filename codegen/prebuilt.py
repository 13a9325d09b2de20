"""Pre-generated kernels: manifests written by the build-time generator,
found in ``UKERNELS_KERNEL_PATH`` (directories, ``os.pathsep``-separated) and
in the package's own ``prebuilt/`` directory. A manifest is validated (format,
version, library hash) before any of its kernels is used; a broken one is
skipped with a warning naming it."""
import os
import warnings
from typing import Dict, List, Optional, Tuple  # noqa: F401

from ukernels._env import getenv
from ukernels._sync import ForkSafeLock
from ukernels._untrusted import UntrustedFileError, expect, is_int, read_json, sha256_file
from ukernels.codegen.generator import FORMAT, MANIFEST, VERSION
from ukernels.codegen.render import KernelSpec

PATH_ENV = "UKERNELS_KERNEL_PATH"
BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prebuilt")
_MAX_LIBRARY_BYTES = 1 << 30

_lock = ForkSafeLock()
_index: Dict[Tuple[str, ...], Dict[KernelSpec, Tuple[str, str]]] = {}
_shapes: Dict[Tuple[str, ...], set] = {}


def search_dirs() -> List[str]:
    dirs = [d for d in (getenv(PATH_ENV) or "").split(os.pathsep) if d]
    return dirs + [BUILTIN_DIR]


def parse_manifest(doc, directory: str, path: str):
    """(kernels {spec: (library, symbol)}, shapes {(types, target, M, N, K)}) of a manifest
    document; UntrustedFileError naming ``path`` on anything malformed. The library it names
    must be a plain file name inside ``directory``; its hash is checked by the caller."""
    expect(isinstance(doc, dict), path, f"expected a JSON object, got {type(doc).__name__}")
    expect(doc.get("format") == FORMAT and doc.get("version") == VERSION, path, f"not a {FORMAT} v{VERSION} manifest")
    lib = doc.get("library")
    expect(isinstance(lib, str) and lib not in ("", ".", "..") and os.path.basename(lib) == lib, path,
           "'library' must be a file name in the manifest's directory")
    expect(isinstance(doc.get("library_sha256"), str), path, "'library_sha256' must be a string")
    kernels_doc = doc.get("kernels")
    expect(isinstance(kernels_doc, list), path, "'kernels' must be a list")
    lib_path = os.path.join(directory, lib)
    kernels: Dict[KernelSpec, Tuple[str, str]] = {}
    shapes: set = set()
    for i, k in enumerate(kernels_doc):
        where = f"{path}: kernels[{i}]"
        expect(isinstance(k, dict), where, "expected an object")
        name = k.get("name")
        expect(isinstance(name, str) and name.isidentifier(), where, "'name' must be a C identifier")
        try:
            spec = KernelSpec.from_json(k.get("spec"), where)
        except ValueError as exc:
            raise UntrustedFileError(str(exc)) from None
        kernels[spec] = (lib_path, name)
        shape_list = k.get("shapes", [])
        expect(isinstance(shape_list, list), where, "'shapes' must be a list of [M, N, K]")
        for sh in shape_list:
            expect(isinstance(sh, list) and len(sh) == 3 and all(is_int(x) for x in sh), where,
                   f"'shapes' entries must be [M, N, K] of integers >= 0, got {sh!r}")
            shapes.add((spec.types, spec.target, *sh))
    return kernels, shapes


def _read_manifest(directory: str):
    path = os.path.join(directory, MANIFEST)
    if not os.path.lexists(path):
        return None
    try:
        doc = read_json(path)
        kernels, shapes = parse_manifest(doc, directory, path)
        lib = os.path.join(directory, doc["library"])
        if sha256_file(lib, _MAX_LIBRARY_BYTES) != doc["library_sha256"]:
            raise UntrustedFileError(f"{lib} does not match the hash in the manifest")
        return kernels, shapes
    except UntrustedFileError as exc:
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
        dynamic = KernelSpec(spec.types, spec.M0, spec.N0, spec.target, None, spec.epilogue, spec.out)
        hit = idx.get(dynamic)
        if hit is not None:
            return hit[0], hit[1], dynamic
    return None


def reset() -> None:
    with _lock:
        _index.clear()
        _shapes.clear()
