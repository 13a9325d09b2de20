"""The on-disk kernel cache and the in-process memo.

Key: sha256 over the rendered source, the compiler's identity (command,
version line, binary stamp) and the flags. Entry: ``<key>.so`` plus
``<key>.json`` (name, spec, sha256 of the .so). Writers hold an exclusive
``fcntl`` lock on ``<key>.lock`` and publish with a temporary file + atomic
``os.replace`` (library first, metadata last), so readers see either no
entry or a complete one; an entry whose metadata is missing or whose library
does not match its recorded hash (a crash, a truncated copy, a foreign file)
is rebuilt. Location: ``UKERNELS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ukernels``,
else ``~/.cache/ukernels``.
"""
import ctypes
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from typing import Dict

from ukernels._env import getenv
from ukernels._lib import ffi
from ukernels.codegen import compiler
from ukernels.codegen.render import KernelSpec, render

CACHE_ENV = "UKERNELS_CACHE_DIR"
_LAYOUT = "kernels-v1"


def cache_dir() -> str:
    """Root of the kernel cache (created on demand)."""
    root = getenv(CACHE_ENV)
    if not root:
        base = getenv("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "ukernels")
    return os.path.join(root, _LAYOUT)


@dataclass
class CompiledKernel:
    """A loaded generated ukernel: call it through ``fn`` (a ``uk_mmt4d_fn_t``)."""

    spec: KernelSpec
    name: str
    path: str
    key: str
    fn: object
    origin: str  # "memo", "disk", "compiled" or "prebuilt"
    _handle: object = None


_memo: Dict[tuple, CompiledKernel] = {}
_memo_lock = threading.Lock()


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_symbol(path: str, name: str):
    """(handle, uk_mmt4d_fn_t) for symbol ``name`` in shared library ``path``."""
    handle = ctypes.CDLL(path)
    addr = ctypes.cast(getattr(handle, name), ctypes.c_void_p).value
    return handle, ffi.cast("uk_mmt4d_fn_t", addr)


def _valid_entry(so: str, meta_path: str, name: str) -> bool:
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        return meta.get("name") == name and meta.get("sha256") == _sha256_file(so)
    except (OSError, ValueError):
        return False


def entry_paths(key: str):
    d = os.path.join(cache_dir(), key[:2])
    return d, os.path.join(d, key + ".so"), os.path.join(d, key + ".json"), os.path.join(d, key + ".lock")


def cache_key(spec: KernelSpec) -> str:
    t = spec.check()
    source = render(spec)
    material = "\0".join([source, compiler.compiler_identity(), " ".join(compiler.compile_flags(t))])
    return hashlib.sha256(material.encode()).hexdigest()


def get_kernel(spec: KernelSpec) -> CompiledKernel:
    """The compiled kernel for ``spec``: from the memo, the disk cache, or compiled now."""
    memo_key = (spec, getenv(CACHE_ENV), getenv("CC"), getenv("UKERNELS_KERNEL_PATH"))
    hit = _memo.get(memo_key)
    if hit is not None:
        return hit
    with _memo_lock:
        hit = _memo.get(memo_key)
        if hit is not None:
            return hit
        kernel = _load_or_build(spec)
        _memo[memo_key] = kernel
        return kernel


def _load_or_build(spec: KernelSpec) -> CompiledKernel:
    t = spec.check()
    from ukernels.codegen import prebuilt
    hit = prebuilt.find(spec)
    if hit is not None:  # pre-generated: no compiler needed
        lib_path, symbol, served = hit
        handle, fn = load_symbol(lib_path, symbol)
        return CompiledKernel(served, symbol, lib_path, "", fn, "prebuilt", handle)
    key = cache_key(spec)
    d, so, meta, lock = entry_paths(key)
    if _valid_entry(so, meta, spec.name):
        handle, fn = load_symbol(so, spec.name)
        return CompiledKernel(spec, spec.name, so, key, fn, "disk", handle)
    os.makedirs(d, exist_ok=True)
    with open(lock, "a") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            origin = "disk"
            if not _valid_entry(so, meta, spec.name):  # another process may have built it meanwhile
                origin = "compiled"
                fd, tmp_so = tempfile.mkstemp(prefix=".tmp-", suffix=".so", dir=d)
                os.close(fd)
                try:
                    compiler.compile_shared(render(spec), tmp_so, t, log_dir=os.path.join(cache_dir(), "logs"))
                    digest = _sha256_file(tmp_so)
                    os.replace(tmp_so, so)
                finally:
                    if os.path.exists(tmp_so):
                        os.unlink(tmp_so)
                fd, tmp_meta = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=d)
                with os.fdopen(fd, "w") as f:
                    json.dump({"name": spec.name, "spec": asdict(spec), "sha256": digest,
                               "compiler": compiler.compiler_identity(),
                               "flags": compiler.compile_flags(t)}, f)
                os.chmod(tmp_meta, 0o644)
                os.replace(tmp_meta, meta)
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)
    handle, fn = load_symbol(so, spec.name)
    return CompiledKernel(spec, spec.name, so, key, fn, origin, handle)


def clear_memo() -> None:
    """Forget in-process resolutions and manifest indexes (tests; files are untouched)."""
    from ukernels.codegen import prebuilt
    from ukernels.runtime import dispatch
    with _memo_lock:
        _memo.clear()
    prebuilt.reset()
    dispatch.forget_resolutions()
