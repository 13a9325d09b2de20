"""Reading files the library did not just write itself: manifests, tuned
tiles, cache metadata, kernel libraries to hash, saved ``Linear`` files.

They are untrusted input. Every reader here is bounded (a size limit, no
recursion blow-up, no blocking on FIFOs or devices) and reports any damage
as ``UntrustedFileError`` (a ``ValueError``) naming the file, so callers
turn it into "skip it", "rebuild it" or one clear error -- never a
traceback from deep inside, a hang, or a crash. The policy (which files are
code, which are data, what damage costs) is in the README, "Files ukernels
reads".
"""
import hashlib
import json
import os
import stat
from typing import Any, BinaryIO, Optional

MAX_JSON_BYTES = 16 << 20  # manifests, tuned.json, cache metadata, Linear headers


class UntrustedFileError(ValueError):
    """A file the library reads is missing, unreadable, too large or malformed."""


def open_regular(path: str) -> BinaryIO:
    """Open ``path`` for reading, refusing anything but a regular file (a FIFO
    would block the open, a device like /dev/zero would never end)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UntrustedFileError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UntrustedFileError(f"{path}: not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(f: BinaryIO, n: int, what: str) -> bytes:
    """Exactly ``n`` bytes from ``f`` (in chunks: a lying length costs no memory up front)."""
    chunks = []
    left = n
    while left > 0:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            raise UntrustedFileError(f"{what}: truncated (needed {n} bytes, got {n - left})")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, what: str) -> Any:
    """JSON from bytes; any decoding problem (bad UTF-8, syntax, nesting too deep) -> UntrustedFileError."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UntrustedFileError(f"{what}: not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None


def read_json(path: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON document in ``path`` (regular file of at most ``max_bytes``)."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise UntrustedFileError(f"{path}: {size} bytes, larger than the {max_bytes}-byte limit for this file")
        try:
            raw = f.read(max_bytes + 1)
        except OSError as exc:
            raise UntrustedFileError(f"{path}: cannot read ({exc})") from None
    if len(raw) > max_bytes:
        raise UntrustedFileError(f"{path}: larger than the {max_bytes}-byte limit for this file")
    return parse_json(raw, path)


def sha256_file(path: str, max_bytes: Optional[int] = None) -> str:
    """sha256 of a regular file (bounded by ``max_bytes`` if given)."""
    h = hashlib.sha256()
    with open_regular(path) as f:
        total = 0
        try:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                total += len(chunk)
                if max_bytes is not None and total > max_bytes:
                    raise UntrustedFileError(f"{path}: larger than the {max_bytes}-byte limit")
                h.update(chunk)
        except OSError as exc:
            raise UntrustedFileError(f"{path}: cannot read ({exc})") from None
    return h.hexdigest()


def expect(cond: bool, what: str, message: str) -> None:
    """Raise UntrustedFileError(``what: message``) unless ``cond``."""
    if not cond:
        raise UntrustedFileError(f"{what}: {message}")


def is_int(x: Any, lo: int = 0, hi: int = 1 << 62) -> bool:
    """A real int (not bool) in [lo, hi]."""
    return isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi
