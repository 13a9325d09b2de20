"""The C-level tests (csrc/tests/test_ukernels.c), built plain and under
AddressSanitizer + UndefinedBehaviorSanitizer, from the repository checkout."""
import os
import subprocess
import sys

import pytest

from conftest import skip_unless_c_build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "csrc", "tests", "run_c_tests.py")


@pytest.mark.parametrize("mode", ["plain", "sanitize"])
def test_c_level_suite(mode):
    skip_unless_c_build(SCRIPT, "the C-level tests")
    args = [sys.executable, SCRIPT] + (["--sanitize"] if mode == "sanitize" else [])
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout


@pytest.mark.parametrize("qemu_cpu, bits, levels", [
    ("max", "0x3f00000000", "NEON, dotprod, i8mm, bf16, fp16, fhm"),  # every aarch64 tile row runs
    ("cortex-a76", "0x1300000000", "NEON, dotprod, fp16"),  # no i8mm, bf16, fhm: their rows are skipped
    ("cortex-a53", "0x100000000", "NEON only"),  # a lower level: the dotprod rows are skipped too
])
def test_c_level_suite_aarch64_under_qemu(qemu_cpu, bits, levels):
    """The same C tests cross-compiled for aarch64 and run under qemu-user: every aarch64 tile
    row (csrc/arch/arm_64/*_tiles.inl, enumerated by the test program) exact on small-integer
    inputs where the emulated CPU reports its feature, counted as skipped where it does not."""
    import shutil
    skip_unless_c_build(SCRIPT, "the C-level tests")
    for tool, package in (("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"), ("qemu-aarch64", "qemu-user")):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} to build/run the aarch64 tile tests (Debian package {package})")
    proc = subprocess.run([sys.executable, SCRIPT, "--aarch64", "--qemu-cpu", qemu_cpu], capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"feature bits {bits}" in proc.stdout, f"qemu -cpu {qemu_cpu} should report {levels}: {proc.stdout[:200]}"
    assert " 0 failed" in proc.stdout
    skipped = int(proc.stdout.split(" tile functions skipped")[0].rsplit(", ", 1)[1])
    # with every feature only the test's one x86 case is skipped; a missing feature skips its
    # rows too (M0 1..8 each): a76 the i8mm s8 8x8x8, bf16 8x8x2 and 8x8x4, fhm f16 8x8x1 ones
    # (16), a53 also the dotprod s8 8x8x4 ones
    expected = {"max": 1, "cortex-a76": 17, "cortex-a53": 21}[qemu_cpu]
    assert skipped == expected, proc.stdout
