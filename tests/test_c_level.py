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
