"""Build and run the C-level tests (csrc/tests/test_ukernels.c), optionally
under AddressSanitizer + UndefinedBehaviorSanitizer.

    python csrc/tests/run_c_tests.py              # -O2 build
    python csrc/tests/run_c_tests.py --sanitize   # -fsanitize=address,undefined

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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "ukernels"))
from _build_config import INCLUDE_DIRS, PORTABLE_SOURCES, isa_sources  # noqa: E402

SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]


def build(out_dir: str, sanitize: bool, cc: str) -> str:
    base = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"]
    for inc in INCLUDE_DIRS:
        base += ["-I", os.path.join(ROOT, inc)]
    base += (SANITIZE + ["-O1"]) if sanitize else ["-O2"]
    objects = []
    units = [(s, []) for s in PORTABLE_SOURCES] + isa_sources(platform.machine())
    units.append(("csrc/tests/test_ukernels.c", []))
    for src, flags in units:
        obj = os.path.join(out_dir, os.path.basename(src) + ".o")
        subprocess.run([cc, *base, *flags, "-c", os.path.join(ROOT, src), "-o", obj], check=True)
        objects.append(obj)
    exe = os.path.join(out_dir, "test_ukernels")
    subprocess.run([cc, *base, *objects, "-o", exe, "-lm"], check=True)
    return exe


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    args = ap.parse_args()
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        print(f"C compiler {cc!r} not found (set CC)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="uk_ctests_") as d:
        exe = build(d, args.sanitize, cc)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        return subprocess.run([exe], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
