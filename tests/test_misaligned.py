"""Misaligned arrays never reach the C side: an already-contiguous but
misaligned operand (``np.ascontiguousarray`` does not realign) is copied
into aligned memory first. Checked for every operand kind, in-process and
under UndefinedBehaviorSanitizer (a misaligned load in the C code aborts)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ukernels
from ukernels import ops as O
from ukernels.abi import kernel_array
from conftest import skip_unless_c_build

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDER = os.path.join(ROOT, "csrc", "tests", "build_sanitized_extension.py")


def misaligned(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``arr`` whose data starts 1 byte past an aligned address."""
    raw = np.zeros(arr.nbytes + 64, np.uint8)
    start = (-raw.ctypes.data) % 64 + 1
    out = np.frombuffer(raw[start:start + arr.nbytes].data, dtype=arr.dtype).reshape(arr.shape)
    out[...] = arr
    assert not out.flags.aligned and out.flags.c_contiguous
    return out


CASES = """
rng = np.random.default_rng(0)
def ints(shape, dtype):
    return rng.integers(-4, 5, shape).astype(dtype)
a, b = ints((37, 29), np.float32), ints((29, 45), np.float32)
bias, res, sc = ints(45, np.float32), ints((37, 45), np.float32), ints(45, np.float32)
ref = (a @ b + bias) * sc + res
out = ukernels.matmul(misaligned(a), misaligned(b), bias=misaligned(bias),
                      epilogue=[O.Scale(misaligned(sc)), O.Residual(misaligned(res))])
np.testing.assert_array_equal(out, ref)
w = ints((45, 29), np.float32)
lin = ukernels.Linear(misaligned(w), bias=misaligned(bias))
np.testing.assert_array_equal(lin(misaligned(a)), a @ w.T + bias)
np.testing.assert_array_equal(lin(misaligned(a), epilogue=[O.Residual(misaligned(res))]), a @ w.T + bias + res)
a8, b8 = ints((37, 29), np.int8), ints((29, 45), np.int8)
b32 = ints(45, np.int32)
np.testing.assert_array_equal(ukernels.matmul(a8, b8, bias=misaligned(b32)),
                              a8.astype(np.int32) @ b8.astype(np.int32) + b32)
for isa in ukernels.cpu.supported_isas():
    os.environ["UKERNELS_ISA"] = isa
    np.testing.assert_array_equal(ukernels.matmul(misaligned(a), misaligned(b)), a @ b)
print("OK")
"""


def test_kernel_array_realigns_contiguous_misaligned_input():
    x = misaligned(np.arange(12, dtype=np.float32).reshape(3, 4))
    y = kernel_array(x)
    assert y.flags.aligned and np.array_equal(x, y)
    big = np.arange(6, dtype=">f4")
    assert kernel_array(big).dtype.isnative
    ok = np.ones((2, 2), np.float32)
    assert kernel_array(ok) is ok  # nothing to fix: no copy


def test_misaligned_operands_in_process(monkeypatch):
    monkeypatch.setenv("UKERNELS_ISA", ukernels.cpu.active_isa())  # CASES sets it; restored after
    exec(textwrap.dedent(CASES), {"np": np, "ukernels": ukernels, "O": O, "misaligned": misaligned, "os": os})


def test_misaligned_operands_under_ubsan(tmp_path):
    cc = skip_unless_c_build(BUILDER, "the UBSan extension")
    proc = subprocess.run([sys.executable, BUILDER, str(tmp_path / "ubsan")], capture_output=True, text=True)
    if proc.returncode != 0 and "sanitize" in proc.stderr and "unrecognized" in proc.stderr:
        pytest.skip(f"{cc} cannot build with -fsanitize=undefined: {proc.stderr[-200:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = proc.stdout.strip().splitlines()[-1]
    sys.path.insert(0, os.path.join(ROOT, "csrc", "tests"))
    try:
        from build_sanitized_extension import LOADER
    finally:
        sys.path.pop(0)
    import inspect
    script = (LOADER.format(path=path) + "import os, numpy as np, ukernels\nfrom ukernels import ops as O\n"
              + textwrap.dedent(inspect.getsource(misaligned)) + textwrap.dedent(CASES))
    env = dict(os.environ, UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    env.pop("UKERNELS_ISA", None)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("OK"), run.stderr[-3000:]
    assert "runtime error" not in run.stderr, run.stderr[-3000:]
