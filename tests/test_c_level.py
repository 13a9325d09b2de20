"""The C-level tests (csrc/tests/test_ukernels.c), built plain and under
AddressSanitizer + UndefinedBehaviorSanitizer, from the repository checkout."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "csrc", "tests", "run_c_tests.py")


@pytest.mark.parametrize("mode", ["plain", "sanitize"])
def test_c_level_suite(mode):
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler {cc!r} on PATH to build the C-level tests")
    if not os.path.exists(SCRIPT):
        pytest.skip("C test sources not present (running from an installed package without the checkout)")
    args = [sys.executable, SCRIPT] + (["--sanitize"] if mode == "sanitize" else [])
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failed" in proc.stdout
