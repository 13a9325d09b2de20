"""bench/ scripts that take arguments: bad input is a one-line error, not a traceback."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("args, message", [
    (["64x64x64", "7x16"], "not a multiple of the ukernel tile"),
    (["64x64x64", "--dtype", "int4", "--kind", "matmul"], "--dtype int4 needs --kind linear"),
    (["64x64x48", "--dtype", "int4"], "K a multiple of 32"),
])
def test_ab_plan_rejects_bad_variants_and_dtypes(args, message):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "ab_plan.py"), *args, "--seconds", "0.05"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_ab_plan_runs_a_variant_it_is_given():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "ab_plan.py"), "48x64x64", "16x64",
                        "--seconds", "0.05"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "16x64" in r.stdout and "plan" in r.stdout, r.stdout + r.stderr
