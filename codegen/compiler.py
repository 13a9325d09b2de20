"""The system C compiler as the codegen path uses it: which one, its
identity (part of the cache key), and compiling one source to a shared
library with a clear error when that fails."""
import os
import shlex
import shutil
import subprocess
import tempfile
from functools import lru_cache
from typing import List, Optional, Sequence

from .targets import Target, _header_path


class CompilerNotFound(RuntimeError):
    """No usable C compiler."""


class CompileError(RuntimeError):
    """The compiler rejected a generated kernel."""

    def __init__(self, message: str, command: Sequence[str], stderr_path: str):
        super().__init__(message)
        self.command = list(command)
        self.stderr_path = stderr_path


def include_dir() -> str:
    """Directory holding uk_api.h (shipped inside the package)."""
    return os.path.dirname(_header_path())


def compiler_command() -> List[str]:
    """``$CC`` (may contain arguments) or the first of cc, gcc, clang on PATH."""
    cc = os.environ.get("CC")
    if cc:
        words = shlex.split(cc)
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
        out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=30)
        first = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""
    except (OSError, subprocess.SubprocessError) as exc:
        raise CompilerNotFound(f"cannot run {' '.join(cmd)} --version: {exc}") from exc
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
    os.makedirs(log_dir, exist_ok=True)
    fd, log = tempfile.mkstemp(prefix="compile-error-", suffix=".log", dir=log_dir)
    with os.fdopen(fd, "w") as f:
        f.write("$ " + " ".join(shlex.quote(c) for c in command) + "\n\n" + proc.stderr + "\n--- source ---\n" + source)
    raise CompileError(
        f"compiling a generated kernel failed: {cmd[0]} exited with {proc.returncode}; "
        f"command: {' '.join(shlex.quote(c) for c in command)}; compiler output and source saved in {log}",
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
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            _fail(cmd, command, proc, source, log_dir)


def link_shared(objects: Sequence[str], output: str, log_dir: str) -> None:
    """Links object files into the shared library ``output``."""
    cmd = compiler_command()
    command = [*cmd, "-shared", "-fPIC", *objects, "-o", output]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        _fail(cmd, command, proc, "(link step)", log_dir)


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
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            _fail(cmd, command, proc, source, log_dir)
