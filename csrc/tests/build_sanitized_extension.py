"""Build ``ukernels._native`` with UndefinedBehaviorSanitizer into a directory,
for running the Python API under UBSan (tests/test_misaligned.py).

    python csrc/tests/build_sanitized_extension.py OUT_DIR   # prints the built module's path

The same sources, per-ISA flags and cffi definitions as the installed build
(ukernels/_build_config.py, ukernels/_ffi_build.py), plus
``-fsanitize=undefined -fno-sanitize-recover=undefined``: any undefined
behaviour (a misaligned load among them) aborts the process with a report.
UBSan's runtime is linked as a shared library, so, unlike ASan, it needs no
LD_PRELOAD into an uninstrumented Python. Load the result in a fresh process
as ``ukernels._native`` (see ``LOADER``) before importing ukernels.
"""
import glob
import importlib.util
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UBSAN = ["-fsanitize=undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]

LOADER = """
import importlib.util, sys
_spec = importlib.util.spec_from_file_location("ukernels._native", {path!r})
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
sys.modules["ukernels._native"] = _mod
"""


def build(out_dir: str, cc: str = "cc") -> str:
    sys.path.insert(0, os.path.join(ROOT, "ukernels"))
    from _build_config import COMMON_CFLAGS, INCLUDE_DIRS, PORTABLE_SOURCES, isa_sources  # noqa: E402
    spec = importlib.util.spec_from_file_location("_uk_ffi_build", os.path.join(ROOT, "ukernels", "_ffi_build.py"))
    ffi_build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ffi_build)
    from cffi import FFI

    os.makedirs(out_dir, exist_ok=True)
    includes = [os.path.join(ROOT, d) for d in INCLUDE_DIRS]
    objects = []
    for src, flags in isa_sources(platform.machine()):
        obj = os.path.join(out_dir, os.path.basename(src) + ".o")
        subprocess.run([cc, *COMMON_CFLAGS, *UBSAN, *flags, *sum((["-I", d] for d in includes), []),
                        "-c", os.path.join(ROOT, src), "-o", obj], check=True)
        objects.append(obj)
    ffi = FFI()
    ffi.cdef(ffi_build.CDEF)
    ffi.set_source("ukernels._native", ffi_build.SOURCE,
                   sources=[os.path.join(ROOT, s) for s in PORTABLE_SOURCES], include_dirs=includes,
                   extra_compile_args=COMMON_CFLAGS + UBSAN + ['-DUK_BUILD_FLAGS="ubsan"'],
                   extra_link_args=["-pthread", *UBSAN], extra_objects=objects)
    ffi.compile(tmpdir=out_dir, verbose=False)
    built = glob.glob(os.path.join(out_dir, "ukernels", "_native*.so")) + glob.glob(os.path.join(out_dir, "_native*.so"))
    if not built:
        raise RuntimeError(f"no extension module found under {out_dir}")
    return built[0]


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else "build-ubsan", os.environ.get("CC", "cc")))
