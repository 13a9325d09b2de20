"""A smoke subset of this suite on aarch64: Debian's arm64 CPython under qemu-user, the
extension cross-compiled with the arm_64 tile files (tests/aarch64_python.py). There the
planner picks the handwritten aarch64 tiles (f32 8x8x1 fmla, s8 8x8x8 smmla, bf16 8x8x4
bfmmla, f16 8x8x1 fmlal), UKERNELS_ISA has the aarch64 levels, and generated kernels are
compiled for the NEON targets on first use.

Needs the arm64 root that `python tests/aarch64_python.py prepare DIR` makes (.ci/run makes
it and sets UKERNELS_ARM64_ROOT); skipped, naming what is missing, without it."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import aarch64_python  # noqa: E402

ROOT_ENV = "UKERNELS_ARM64_ROOT"
# Exact tile tests at every aarch64 level, the aarch64 ISA levels, and the public API over the
# planned aarch64 tiles: f32/int8/bf16/f16 matmul, Linear, quantized Linear, the epilogue ops.
SMOKE = ["tests/test_mmt4d_exact.py", "tests/test_cpu_levels.py", "tests/test_matmul.py",
         "tests/test_element_types.py", "tests/test_quantized_linear.py", "tests/test_epilogue_ops.py",
         "tests/test_decode.py"]


@pytest.fixture(scope="module")
def arm64(tmp_path_factory):
    root = os.environ.get(ROOT_ENV)
    if not root:
        pytest.skip(f"{ROOT_ENV} is not set: no arm64 Python to run under qemu "
                    "(python tests/aarch64_python.py prepare DIR; .ci/run does it)")
    lacking = aarch64_python.missing(root)
    if lacking:
        pytest.skip("the aarch64 Python smoke run needs " + "; ".join(lacking))
    tree = str(tmp_path_factory.mktemp("arm64-tree") / "ukernels")
    aarch64_python.build(root, tree)
    return root, tree


def _run(arm64, qemu_cpu, args, timeout=1500):
    root, tree = arm64
    cmd = aarch64_python.command(root, tree, qemu_cpu, args)
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_info_on_aarch64(arm64):
    code, out = _run(arm64, "max", ["-m", "ukernels", "info"])
    assert code == 0, out
    assert "neon_i8mm" in out and "i8mm" in out and "fhm" in out, out


def test_planner_picks_the_aarch64_tiles(arm64):
    script = ("import ukernels\n"
              "for dt in ('float32', 'int8', 'bfloat16', 'float16'):\n"
              "    print(ukernels.explain(256, 256, 256, dtype=dt, backend='ukernel')['function'])\n")
    code, out = _run(arm64, "max", ["-c", script])
    assert code == 0, out
    for name in ("f32f32f32_8x8x1_arm_64_neon", "s8s8s32_8x8x8_arm_64_i8mm",
                 "bf16bf16f32_8x8x4_arm_64_bf16", "f16f16f32_8x8x1_arm_64_fp16fml"):
        assert name in out, out


@pytest.mark.parametrize("qemu_cpu", ["max", "cortex-a53"])
def test_python_suite_smoke_under_qemu(arm64, qemu_cpu):
    """On an Armv9-like CPU (every feature) and on an Armv8.0 one (NEON only: the levels above
    are skipped with the feature named, and the planner falls back to the NEON and generic
    tiles)."""
    code, out = _run(arm64, qemu_cpu, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SMOKE])
    tail = out[-3000:]
    assert code == 0, tail
    assert " passed" in tail and " failed" not in tail, tail


def test_register_fusion_under_qemu(arm64):
    """Generated NEON kernels with the epilogue in registers (cross-compiled on first use),
    bit for bit against the tile-level epilogue: every op at every aarch64 level, every
    triple and output type."""
    code, out = _run(arm64, "max", ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "tests/test_fusion.py",
                                    "-k", "each_op or every_triple"])
    tail = out[-3000:]
    assert code == 0, tail
    assert " passed" in tail and " failed" not in tail, tail
