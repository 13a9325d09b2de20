"""The on-disk kernel cache and the in-process memo.

Key: sha256 over the rendered source, the compiler's identity (command,
version line, binary stamp) and the flags. Entry: ``<key>.so`` plus
``<key>.json`` (name, spec, sha256 of the .so). Writers hold an exclusive
``fcntl`` lock on ``<key>.lock`` and publish with a temporary file + atomic
``os.replace`` (library first, metadata last), so readers see either no
entry or a complete one. Location: ``UKERNELS_CACHE_DIR``, else
``$XDG_CACHE_HOME/ukernels``, else ``~/.cache/ukernels``.

Damage and failure (README, "Files ukernels reads"):

* an entry whose metadata is missing or malformed (any JSON that is not the
  expected object), or whose library is not a regular file matching its
  recorded hash, is rebuilt;
* a compiler output is checked (object file, kernel symbol present) before
  it is published, so ``CC=true`` cannot publish an empty library;
* a failure (no compiler, a compile error or timeout, an unusable cache
  directory) is remembered for the process: the next request for the same
  kernel raises the same error at once instead of re-running the compiler;
* waiting for another process's lock is bounded (the compile time limit plus
  a margin), and ``.tmp-*`` files left by killed compiles are swept when
  older than twice that;
* files are published world-readable (libraries 0755, metadata 0644) and a
  lock file that cannot be opened for writing is locked read-only, so one
  cache can be shared between users.
"""
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

from ukernels._env import getenv
from ukernels._lib import ffi
from ukernels._sync import BoundedMemo, ForkSafeLock
from ukernels._untrusted import UntrustedFileError, read_json, sha256_file
from ukernels.codegen import compiler
from ukernels.codegen.compiler import CacheError, CodegenError, CompileError
from ukernels.codegen.render import KernelSpec, render

CACHE_ENV = "UKERNELS_CACHE_DIR"
_LAYOUT = "kernels-v1"
_MAX_LIBRARY_BYTES = 256 << 20


def cache_dir() -> str:
    """Root of the kernel cache (created on demand)."""
    root = getenv(CACHE_ENV)
    if not root:
        base = getenv("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "ukernels")
    return os.path.join(root, _LAYOUT)


def _where() -> str:
    return (f"the kernel cache {cache_dir()} (set {CACHE_ENV} to a writable directory, "
            f"or use backend='ukernel')")


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


_memo: Dict[tuple, CompiledKernel] = {}  # bounded by the distinct kernel specs a process uses
_failed: BoundedMemo = BoundedMemo(1024)  # memo key -> the CodegenError it raised
_memo_lock = ForkSafeLock()


def load_symbol(path: str, name: str):
    """(handle, uk_mmt4d_fn_t) for symbol ``name`` in shared library ``path``.
    A library that cannot be loaded or lacks the symbol raises CompileError."""
    try:
        handle = ctypes.CDLL(path)
        addr = ctypes.cast(getattr(handle, name), ctypes.c_void_p).value
    except (OSError, AttributeError) as exc:
        raise CompileError(f"{path} cannot serve kernel {name}: {exc}", [], None) from None
    return handle, ffi.cast("uk_mmt4d_fn_t", addr)


def _valid_entry(so: str, meta_path: str, name: str) -> bool:
    """Whether a complete, undamaged entry is published (anything else: rebuild)."""
    try:
        meta = read_json(meta_path)
        if not isinstance(meta, dict) or meta.get("name") != name or not isinstance(meta.get("sha256"), str):
            return False
        return meta["sha256"] == sha256_file(so, _MAX_LIBRARY_BYTES)
    except UntrustedFileError:
        return False


def entry_paths(key: str):
    d = os.path.join(cache_dir(), key[:2])
    return d, os.path.join(d, key + ".so"), os.path.join(d, key + ".json"), os.path.join(d, key + ".lock")


def _headers() -> str:
    """The shipped headers every generated kernel includes (uk_api.h: the ABI; uk_convert.h):
    part of the key, so an ABI change rebuilds cached kernels instead of loading stale ones."""
    out = []
    for name in ("uk_api.h", "uk_convert.h"):
        with open(os.path.join(compiler.include_dir(), name)) as f:
            out.append(f.read())
    return "\0".join(out)


def cache_key(spec: KernelSpec) -> str:
    t = spec.check()
    source = render(spec)
    material = "\0".join([source, _headers(), compiler.compiler_identity(), " ".join(compiler.compile_flags(t))])
    return hashlib.sha256(material.encode()).hexdigest()


def get_kernel(spec: KernelSpec) -> CompiledKernel:
    """The compiled kernel for ``spec``: from the memo, the disk cache, or compiled now.
    Raises a CodegenError (and the same one again on later requests in this process)."""
    memo_key = (spec, getenv(CACHE_ENV), getenv("CC"), getenv("UKERNELS_KERNEL_PATH"))
    hit = _memo.get(memo_key)
    if hit is not None:
        return hit
    failed = _failed.get(memo_key)
    if failed is not None:
        raise failed
    with _memo_lock:
        hit = _memo.get(memo_key)
        if hit is not None:
            return hit
        failed = _failed.get(memo_key)
        if failed is not None:
            raise failed
        try:
            kernel = _load_or_build(spec)
        except CodegenError as exc:
            _failed.put(memo_key, exc)
            raise
        _memo[memo_key] = kernel
        return kernel


def _makedirs(d: str) -> None:
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create {d} in {_where()}: {exc.strerror or exc}") from None


def _open_lock(path: str):
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except PermissionError:
        try:  # another user's shared cache: flock works on a read-only descriptor too
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise CacheError(f"cannot open the lock {path} in {_where()}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise CacheError(f"cannot open the lock {path} in {_where()}: {exc.strerror or exc}") from None
    return fd


def _lock_wait_s() -> float:
    return compiler.timeout_s() + 60.0


def _flock(fd: int, path: str) -> None:
    """Exclusive lock, waiting at most the compile time limit plus a margin."""
    deadline = time.monotonic() + _lock_wait_s()
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CacheError(f"cannot lock {path} in {_where()}: {exc.strerror or exc}") from None
        if time.monotonic() > deadline:
            raise CacheError(f"another process has held {path} for over {_lock_wait_s():g} s "
                             f"(a compile that should have timed out); remove the lock file if no "
                             f"ukernels process is running") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _sweep_stale_temporaries(d: str) -> None:
    """Remove ``.tmp-*`` files of compiles killed long ago (older than twice the lock wait)."""
    cutoff = time.time() - 2 * _lock_wait_s()
    try:
        with os.scandir(d) as it:
            for entry in it:
                if entry.name.startswith(".tmp-"):
                    try:
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                    except OSError:
                        pass
    except OSError:
        pass


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
    _makedirs(d)
    fd = _open_lock(lock)
    try:
        _flock(fd, lock)
        try:
            if _valid_entry(so, meta, spec.name):  # another process built it meanwhile
                handle, fn = load_symbol(so, spec.name)
                return CompiledKernel(spec, spec.name, so, key, fn, "disk", handle)
            _sweep_stale_temporaries(d)
            handle, fn = _compile_and_publish(spec, t, d, so, meta)
            return CompiledKernel(spec, spec.name, so, key, fn, "compiled", handle)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _compile_and_publish(spec: KernelSpec, t, d: str, so: str, meta: str) -> Tuple[object, object]:
    try:
        fd, tmp_so = tempfile.mkstemp(prefix=".tmp-", suffix=".so", dir=d)
        os.close(fd)
    except OSError as exc:
        raise CacheError(f"cannot write in {d} ({_where()}): {exc.strerror or exc}") from None
    tmp_meta: Optional[str] = None
    try:
        compiler.compile_shared(render(spec), tmp_so, t, log_dir=os.path.join(cache_dir(), "logs"))
        handle, fn = load_symbol(tmp_so, spec.name)  # verified before anyone else can see it
        digest = sha256_file(tmp_so, _MAX_LIBRARY_BYTES)
        os.chmod(tmp_so, 0o755)
        fd, tmp_meta = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=d)
        with os.fdopen(fd, "w") as f:
            json.dump({"name": spec.name, "spec": asdict(spec), "sha256": digest,
                       "compiler": compiler.compiler_identity(), "flags": compiler.compile_flags(t)}, f)
        os.chmod(tmp_meta, 0o644)
        os.replace(tmp_so, so)
        os.replace(tmp_meta, meta)
        return handle, fn
    except OSError as exc:
        raise CacheError(f"cannot publish a kernel in {d} ({_where()}): {exc.strerror or exc}") from None
    finally:
        for tmp in (tmp_so, tmp_meta):
            if tmp is not None and os.path.lexists(tmp):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def clear_memo() -> None:
    """Forget in-process resolutions, remembered failures and manifest indexes
    (tests, or after fixing the compiler; files are untouched)."""
    from ukernels.codegen import prebuilt
    from ukernels.runtime import dispatch
    with _memo_lock:
        _memo.clear()
        _failed.clear()
    prebuilt.reset()
    dispatch.forget_resolutions()
