"""The Python package on aarch64, on an x86-64 host: an arm64 CPython from Debian run under
qemu-user, with the extension cross-compiled for it.

    python tests/aarch64_python.py prepare ROOT   # debootstrap (first stage) + arm64 wheels
    python tests/aarch64_python.py build ROOT TREE  # repo copy + cross-compiled _native
    python tests/aarch64_python.py run ROOT TREE [--qemu-cpu max] -- PYTEST ARGS

``prepare`` needs root, debootstrap and the network (Debian's mirror, PyPI); .ci/run does it
and tests/test_aarch64_python.py uses the result (``UKERNELS_ARM64_ROOT``). Only the first
debootstrap stage runs (it needs no arm64 execution): every downloaded package is unpacked,
none configured, which is enough for python3 and its headers. numpy, cffi, jinja2, ml_dtypes
and pytest come from PyPI's manylinux aarch64 wheels into ROOT/opt/site.

``build`` copies the tracked files of this checkout to TREE and builds
``ukernels/_native.cpython-311-aarch64-linux-gnu.so`` there with aarch64-linux-gnu-gcc: the
C source cffi emits, the portable units and the arm_64 per-feature units with the flags of
ukernels/_build_config.py, as setup.py does on an aarch64 machine. Generated kernels are
compiled on first use by the same cross compiler (CC; qemu-user runs the x86 compiler as a
host program).
"""
import argparse
import os
import shutil
import subprocess
import sys
from typing import List

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROSS = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"
PY = "python3.11"
SUITE = "bookworm"
WHEELS = ["numpy", "cffi", "jinja2", "ml_dtypes", "pytest"]
EXT_NAME = "_native.cpython-311-aarch64-linux-gnu.so"


def python_path(root: str) -> str:
    return os.path.join(root, "usr", "bin", PY)


def site_dir(root: str) -> str:
    return os.path.join(root, "opt", "site")


def missing(root: str) -> List[str]:
    """What running needs and lacks (empty when ready)."""
    out = [f"{tool} (Debian package {pkg})" for tool, pkg in ((CROSS, "gcc-aarch64-linux-gnu"), (QEMU, "qemu-user"))
           if shutil.which(tool) is None]
    if not os.path.exists(python_path(root)):
        out.append(f"an arm64 {PY} under {root} (python tests/aarch64_python.py prepare {root})")
    if not os.path.isdir(os.path.join(site_dir(root), "numpy")):
        out.append(f"arm64 wheels in {site_dir(root)} (prepare)")
    return out


def prepare(root: str) -> None:
    if not os.path.exists(python_path(root)):
        if shutil.which("debootstrap") is None:
            sys.exit("prepare needs debootstrap (Debian package debootstrap)")
        subprocess.run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
                        "--include=python3,libpython3.11-dev", SUITE, root, "http://deb.debian.org/debian"],
                       check=True, stdout=subprocess.DEVNULL)
        archives = os.path.join(root, "var", "cache", "apt", "archives")
        for deb in sorted(os.listdir(archives)):
            if deb.endswith(".deb"):
                subprocess.run(["dpkg-deb", "-x", os.path.join(archives, deb), root], check=True)
    if not os.path.isdir(os.path.join(site_dir(root), "numpy")):
        wheels = os.path.join(root, "opt", "wheels")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", wheels, "--only-binary=:all:",
                        "--implementation", "cp", "--python-version", "3.11", "--platform", "manylinux2014_aarch64",
                        "--platform", "manylinux_2_28_aarch64", *WHEELS], check=True)
        import zipfile
        for whl in sorted(os.listdir(wheels)):
            with zipfile.ZipFile(os.path.join(wheels, whl)) as z:
                z.extractall(site_dir(root))
    print(f"arm64 {PY} ready under {root}")


def build(root: str, tree: str) -> str:
    """Copy the checkout's tracked files to tree and cross-build the extension there."""
    saved = list(sys.path)  # the build modules import each other by name: restored after, so that
    sys.path.insert(0, os.path.join(ROOT_DIR, "ukernels"))  # ukernels/dask.py never shadows dask
    try:
        from _build_config import COMMON_CFLAGS, INCLUDE_DIRS, PORTABLE_SOURCES, isa_sources
        from _ffi_build import ffibuilder
    finally:
        sys.path[:] = saved
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT_DIR, check=True, capture_output=True).stdout
    if os.path.isdir(tree):
        shutil.rmtree(tree)
    for rel in filter(None, files.decode().split("\0")):
        src = os.path.join(ROOT_DIR, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(tree, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(tree, rel))
    for sub in ("runtime", "codegen"):  # the installed layout pyproject.toml's package-dir makes
        shutil.copytree(os.path.join(tree, sub), os.path.join(tree, "ukernels", sub))
    obj_dir = os.path.join(tree, "build-aarch64")
    os.makedirs(obj_dir)
    glue = os.path.join(obj_dir, "_native.c")
    ffibuilder.emit_c_code(glue)
    inc = [f"-I{os.path.join(tree, d)}" for d in INCLUDE_DIRS]
    # the arm64 Python headers (pyconfig.h includes <aarch64-linux-gnu/python3.11/pyconfig.h>),
    # searched after the cross toolchain's own libc headers
    inc += [f"-I{root}/usr/include/{PY}", "-idirafter", f"{root}/usr/include"]
    base = COMMON_CFLAGS + ["-O2", '-DUK_BUILD_FLAGS="%s"' % " ".join(COMMON_CFLAGS)] + inc
    objects = []
    units = [(s, ["-Werror"]) for s in PORTABLE_SOURCES] + [(s, f + ["-Werror"]) for s, f in isa_sources("aarch64")]
    for src, flags in units + [(glue, [])]:
        obj = os.path.join(obj_dir, os.path.basename(src) + ".o")
        subprocess.run([CROSS, *base, *flags, "-c", os.path.join(tree, src), "-o", obj], check=True)
        objects.append(obj)
    ext = os.path.join(tree, "ukernels", EXT_NAME)
    subprocess.run([CROSS, "-shared", "-pthread", *objects, "-o", ext, "-lm"], check=True)
    return ext


def command(root: str, tree: str, qemu_cpu: str, args: List[str]) -> List[str]:
    env = {"PYTHONPATH": f"{tree}:{site_dir(root)}", "PYTHONNOUSERSITE": "1", "CC": CROSS,
           # numpy's OpenBLAS picks SVE/SME kernels on qemu's "max" CPU and raises spurious FP
           # warnings there; its plain Armv8 kernels are the reference here
           "OPENBLAS_CORETYPE": "ARMV8", "UKERNELS_PREBUILT": "0"}
    cmd = [QEMU, "-cpu", qemu_cpu, "-L", root]
    for k, v in env.items():
        cmd += ["-E", f"{k}={v}"]
    return cmd + [python_path(root), "-s", *args]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("root")
    b = sub.add_parser("build")
    b.add_argument("root")
    b.add_argument("tree")
    r = sub.add_parser("run")
    r.add_argument("root")
    r.add_argument("tree")
    r.add_argument("--qemu-cpu", default="max")
    r.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if a.what == "prepare":
        prepare(os.path.abspath(a.root))
        return 0
    if a.what == "build":
        print(build(os.path.abspath(a.root), os.path.abspath(a.tree)))
        return 0
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    return subprocess.run(command(os.path.abspath(a.root), os.path.abspath(a.tree), a.qemu_cpu, args),
                          cwd=os.path.abspath(a.tree)).returncode


if __name__ == "__main__":
    sys.exit(main())
