"""The system C compiler as the codegen path uses it: which one, its
identity (part of the cache key), and compiling one source to a shared
library with a clear error when that fails.

Every compiler run has a time limit (``UKERNELS_COMPILE_TIMEOUT`` seconds,
default 120): a hung compiler costs a ``CompileError`` after that long, not
a hung process (nor, through the cache's file lock, hung peers). A library
the compiler produced is checked before anyone uses it (non-empty, an
object file of this platform, the kernel symbol present): ``CC=true``
"succeeds" without output and must not publish an empty cache entry."""
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from functools import lru_cache
from typing import List, Optional, Sequence

from .targets import Target, _header_path


class CodegenError(RuntimeError):
    """The codegen path cannot serve a kernel (no compiler, a failed or hung
    compile, an unusable cache). ``backend="auto"`` falls back on any of these."""


class CompilerNotFound(CodegenError):
    """No usable C compiler."""


class CacheError(CodegenError):
    """The kernel cache directory cannot be used (names ``UKERNELS_CACHE_DIR``)."""


class CompileError(CodegenError):
    """The compiler rejected a generated kernel, timed out, or produced no usable library."""

    def __init__(self, message: str, command: Sequence[str], stderr_path: Optional[str]):
        super().__init__(message)
        self.command = list(command)
        self.stderr_path = stderr_path


TIMEOUT_ENV = "UKERNELS_COMPILE_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0


def timeout_s() -> float:
    """Seconds one compiler run may take (``UKERNELS_COMPILE_TIMEOUT``, default 120)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (0 < value <= 86400):
        raise ValueError(f"{TIMEOUT_ENV}={raw!r} must be a number of seconds in (0, 86400]")
    return value


def _run(command: Sequence[str], source: str, log_dir: str, limit: Optional[float] = None):
    """Runs the compiler with the time limit; a timeout is a CompileError. The
    compiler runs in its own process group so that a timeout also ends the
    programs it started (cc1, as, ld), which would otherwise keep its pipes open."""
    limit = timeout_s() if limit is None else limit
    try:
        proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    except OSError as exc:
        raise CompilerNotFound(f"cannot run {command[0]}: {exc}") from None
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        raise CompileError(f"compiling a generated kernel timed out after {limit:g} s ({TIMEOUT_ENV}); "
                           f"command: {' '.join(shlex.quote(c) for c in command)}", command, None) from None
    return subprocess.CompletedProcess(list(command), proc.returncode, out, err)


_OBJECT_MAGICS = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")  # ELF, Mach-O 64, fat Mach-O


def check_output(path: str, command: Sequence[str]) -> None:
    """The compiler's output exists and is an object file of this platform."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        head = b""
    if len(head) < 4 or not head.startswith(_OBJECT_MAGICS):
        raise CompileError(f"the compiler exited with status 0 but wrote no usable output to {path} "
                           f"(command: {' '.join(shlex.quote(c) for c in command)}); check CC", command, None)


def include_dir() -> str:
    """Directory holding uk_api.h (shipped inside the package)."""
    return os.path.dirname(_header_path())


def compiler_command() -> List[str]:
    """``$CC`` (may contain arguments) or the first of cc, gcc, clang on PATH."""
    cc = os.environ.get("CC")
    if cc:
        try:
            words = shlex.split(cc)
        except ValueError as exc:
            raise CompilerNotFound(f"CC={cc!r} cannot be parsed ({exc})") from None
        if not words or shutil.which(words[0]) is None:
            raise CompilerNotFound(f"CC={cc!r} does not name a compiler on PATH")
        return words
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    raise CompilerNotFound("no C compiler found: install gcc or clang, or set CC "
                           "(generated kernels are compiled on first use)")


@lru_cache(maxsize=8)
def _identity(cmd: tuple, path: Optional[str]) -> str:
    exe = shutil.which(cmd[0]) or cmd[0]
    try:
        out = _run([*cmd, "--version"], "", "", limit=min(30.0, timeout_s()))
        text = (out.stdout or out.stderr or "").strip()
        first = text.splitlines()[0] if text else ""
    except CompileError:
        raise CompilerNotFound(f"{' '.join(cmd)} --version did not answer in time; check CC") from None
    try:
        st = os.stat(exe)
        stamp = f"{exe}:{st.st_size}:{int(st.st_mtime)}"
    except OSError:
        stamp = exe
    return f"{' '.join(cmd)} | {first} | {stamp}"


def compiler_identity() -> str:
    """The compiler's command, version line and binary stamp (cache-key material)."""
    return _identity(tuple(compiler_command()), os.environ.get("PATH"))


def compile_flags(target: Target) -> List[str]:
    return [*target.cflags, "-std=c11", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]


def _fail(cmd: Sequence[str], command: Sequence[str], proc, source: str, log_dir: str) -> None:
    log: Optional[str] = None
    try:
        os.makedirs(log_dir, exist_ok=True)
        fd, log = tempfile.mkstemp(prefix="compile-error-", suffix=".log", dir=log_dir)
        with os.fdopen(fd, "w") as f:
            f.write("$ " + " ".join(shlex.quote(c) for c in command) + "\n\n" + (proc.stderr or "")
                    + "\n--- source ---\n" + source)
        where = f"compiler output and source saved in {log}"
    except OSError as exc:  # an unwritable log directory must not hide the compile error
        where = f"(the log could not be saved in {log_dir}: {exc.strerror or exc}); compiler output: " \
                f"{(proc.stderr or '').strip()[:500]}"
    raise CompileError(
        f"compiling a generated kernel failed: {cmd[0]} exited with {proc.returncode}; "
        f"command: {' '.join(shlex.quote(c) for c in command)}; {where}",
        command, log)


def compile_object(source: str, output: str, target: Target, log_dir: str) -> None:
    """Compiles ``source`` (text) into the object file ``output`` (for linking many kernels)."""
    cmd = compiler_command()
    flags = [f for f in compile_flags(target) if f != "-shared"]
    with tempfile.TemporaryDirectory(prefix="ukg_src_") as d:
        src = os.path.join(d, "kernel.c")
        with open(src, "w") as f:
            f.write(source)
        command = [*cmd, *flags, "-I", include_dir(), "-c", src, "-o", output]
        proc = _run(command, source, log_dir)
        if proc.returncode != 0:
            _fail(cmd, command, proc, source, log_dir)
        check_output(output, command)


def link_shared(objects: Sequence[str], output: str, log_dir: str) -> None:
    """Links object files into the shared library ``output``."""
    cmd = compiler_command()
    command = [*cmd, "-shared", "-fPIC", *objects, "-o", output]
    proc = _run(command, "(link step)", log_dir)
    if proc.returncode != 0:
        _fail(cmd, command, proc, "(link step)", log_dir)
    check_output(output, command)


def compile_shared(source: str, output: str, target: Target, log_dir: str) -> None:
    """Compiles ``source`` (text) into the shared library ``output``.

    On failure raises CompileError naming the compiler, the command and the
    file where the compiler's stderr was saved."""
    cmd = compiler_command()
    with tempfile.TemporaryDirectory(prefix="ukg_src_") as d:
        src = os.path.join(d, "kernel.c")
        with open(src, "w") as f:
            f.write(source)
        command = [*cmd, *compile_flags(target), "-I", include_dir(), src, "-o", output]
        proc = _run(command, source, log_dir)
        if proc.returncode != 0:
            _fail(cmd, command, proc, source, log_dir)
        check_output(output, command)
