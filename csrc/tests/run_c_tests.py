"""Build and run the C-level tests (csrc/tests/test_ukernels.c), optionally
under AddressSanitizer + UndefinedBehaviorSanitizer.

    python csrc/tests/run_c_tests.py              # -O2 build
    python csrc/tests/run_c_tests.py --sanitize   # -fsanitize=address,undefined
    python csrc/tests/run_c_tests.py --aarch64 [--qemu-cpu max|cortex-a53|...]
        # cross-compiled (aarch64-linux-gnu-gcc, static) and run under qemu-aarch64: the aarch64
        # tile table is tested per feature level the emulated CPU reports (getauxval)

Sources and per-ISA flags come from ukernels/_build_config.py, the same list
setup.py builds the extension from. Exit status is the test program's.
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from typing import List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "ukernels"))
from _build_config import INCLUDE_DIRS, PORTABLE_SOURCES, isa_sources  # noqa: E402

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


def base_flags(sanitize: bool = False, static: bool = False) -> List[str]:
    """The flags every unit is compiled (and the program linked) with."""
    base = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"] + (["-static"] if static else [])
    for inc in INCLUDE_DIRS:
        base += ["-I", os.path.join(ROOT, inc)]
    return base + ((SANITIZE + ["-O1"]) if sanitize else ["-O2"])


def library_objects(out_dir: str, cc: str, base: List[str], machine: str = "") -> List[str]:
    """Compile the runtime (portable units, then this machine type's per-ISA units with their
    own flags) into out_dir; returns the object files."""
    objects = []
    for src, flags in [(s, []) for s in PORTABLE_SOURCES] + isa_sources(machine or platform.machine()):
        obj = os.path.join(out_dir, os.path.basename(src) + ".o")
        subprocess.run([cc, *base, *flags, "-c", os.path.join(ROOT, src), "-o", obj], check=True)
        objects.append(obj)
    return objects


def build(out_dir: str, sanitize: bool, cc: str, machine: str = "", static: bool = False) -> str:
    base = base_flags(sanitize, static)
    objects = library_objects(out_dir, cc, base, machine)
    test_obj = os.path.join(out_dir, "test_ukernels.o")
    subprocess.run([cc, *base, "-c", os.path.join(ROOT, "csrc/tests/test_ukernels.c"), "-o", test_obj], check=True)
    exe = os.path.join(out_dir, "test_ukernels")
    subprocess.run([cc, *base, *objects, test_obj, "-o", exe, "-lm"], check=True)
    return exe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    ap.add_argument("--aarch64", action="store_true",
                    help="cross-compile with aarch64-linux-gnu-gcc and run under qemu-aarch64")
    ap.add_argument("--qemu-cpu", default="max", help="qemu-aarch64 -cpu model (default max: dotprod, i8mm, bf16)")
    args = ap.parse_args()
    if args.aarch64 and args.sanitize:
        print("--sanitize and --aarch64 do not combine (static qemu-user binaries)", file=sys.stderr)
        return 2
    cc = "aarch64-linux-gnu-gcc" if args.aarch64 else os.environ.get("CC", "cc")
    needed = [cc] + (["qemu-aarch64"] if args.aarch64 else [])
    for tool in needed:
        if shutil.which(tool) is None:
            print(f"{tool!r} not found (C compiler: set CC; aarch64: Debian packages gcc-aarch64-linux-gnu, "
                  "qemu-user)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="uk_ctests_") as d:
        exe = build(d, args.sanitize, cc, "aarch64" if args.aarch64 else "", static=args.aarch64)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        cmd = ["qemu-aarch64", "-cpu", args.qemu_cpu, exe] if args.aarch64 else [exe]
        return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
