"""The NEON codegen target, cross-compiled with aarch64-linux-gnu-gcc and run
under qemu-user (Debian packages gcc-aarch64-linux-gnu, qemu-user; .ci/run
installs them). Exact on small-integer inputs vs a scalar reference, and, where
the handwritten aarch64 table has a tile of the same shape, equal bit for bit to
it (ukernel vs codegen on the NEON targets)."""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from ukernels.codegen.compiler import include_dir
from ukernels.codegen.render import KernelSpec, render

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "c", "codegen_harness.c")
CROSS = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"

CASES = [("f32f32f32", 8, 8, "neon"), ("f32f32f32", 1, 4, "neon"), ("f32f32f32", 12, 8, "neon"),
         ("f32f32f32", 4, 16, "neon"), ("s8s8s32", 8, 8, "neon"), ("s8s8s32", 1, 4, "neon"),
         ("s8s8s32", 4, 12, "neon"), ("s8s8s32", 8, 8, "neon_dotprod"), ("s8s8s32", 1, 4, "neon_dotprod"),
         ("s8s8s32", 4, 12, "neon_dotprod")]


# Generated kernels whose shape the handwritten aarch64 table also has (f32 8x8x1 fmla, s8
# 8x8x4 sdot), run beside it under the qemu CPU that has the feature.
AGREEMENT_CASES = [("f32f32f32", 8, 8, "neon"), ("f32f32f32", 4, 8, "neon"), ("f32f32f32", 1, 8, "neon"),
                   ("s8s8s32", 8, 8, "neon_dotprod"), ("s8s8s32", 2, 8, "neon_dotprod")]


def _need_toolchain():
    if shutil.which(CROSS) is None:
        pytest.skip(f"no aarch64 cross compiler ({CROSS}; Debian package gcc-aarch64-linux-gnu)")
    if shutil.which(QEMU) is None:
        pytest.skip(f"no {QEMU} to run aarch64 binaries (Debian package qemu-user)")


def _c_test_runner():
    spec = importlib.util.spec_from_file_location(
        "run_c_tests", os.path.join(os.path.dirname(HERE), "csrc", "tests", "run_c_tests.py"))
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)  # it puts ukernels/ on sys.path to import _build_config: undone here, or
    try:                    # ukernels/dask.py would shadow dask in this process and its children
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def aarch64_runtime(tmp_path_factory):
    """The runtime's objects cross-compiled for aarch64 (its per-feature files with their own
    -march flags), for harnesses that call uk_mmt4d's handwritten table."""
    _need_toolchain()
    runner = _c_test_runner()
    out = str(tmp_path_factory.mktemp("aarch64-runtime"))
    return runner.library_objects(out, CROSS, runner.base_flags(static=True), "aarch64")


def _build_and_run(case, static_k, tmp_path, runtime=()):
    types, M0, N0, target = case
    spec = KernelSpec(types, M0, N0, target, static_k)
    src = tmp_path / "kernel.c"
    src.write_text(render(spec))
    exe = tmp_path / "harness"
    from ukernels.codegen.targets import target as get_target
    cmd = [CROSS, *get_target(target).cflags, "-std=c11", "-static", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
           "-I", include_dir(), f'-DKERNEL_SOURCE="{src}"', f"-DKERNEL_NAME={spec.name}", f"-DTILE_M0={M0}",
           f"-DTILE_N0={N0}", f"-DTILE_K0={spec.K0}", f"-DIS_S8={int(types == 's8s8s32')}",
           f"-DWITH_HANDWRITTEN={int(bool(runtime))}", HARNESS, *runtime, "-pthread", "-lm", "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([QEMU, "-cpu", "max", str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("14 passed, 0 failed")
    return run.stdout


@pytest.mark.parametrize("static_k", [None, 9])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-{c[3]}")
def test_neon_kernel_under_qemu(case, static_k, tmp_path):
    _need_toolchain()
    _build_and_run(case, static_k, tmp_path)


@pytest.mark.parametrize("case", AGREEMENT_CASES, ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-{c[3]}")
def test_neon_codegen_agrees_with_handwritten(case, tmp_path, aarch64_runtime):
    """The generated kernel and uk_mmt4d's handwritten aarch64 tile of the same shape, on the
    same packed operands and initial out (ACCUMULATE and not): exact, and equal bit for bit."""
    out = _build_and_run(case, None, tmp_path, aarch64_runtime)
    types, M0, N0, _ = case
    suffix = "arm_64_neon" if types == "f32f32f32" else "arm_64_dotprod"
    assert f"handwritten tile: uk_mmt4d_tile_{types}_{M0}x{N0}x" in out and suffix in out, out


def test_neon_specs_render_for_every_case():
    # rendering needs no toolchain: the target data is complete for both families
    for types, M0, N0, target in CASES:
        text = render(KernelSpec(types, M0, N0, target))
        assert "arm_neon.h" in text and ("vfmaq_f32" in text or "vmull_s16" in text or "vdotq_s32" in text)


def test_loading_the_c_test_runner_leaves_sys_path_alone():
    """run_c_tests.py puts ukernels/ on sys.path for its build modules; loaded here it must not
    stay there, or ukernels/dask.py shadows dask in this process and the workers it spawns."""
    before = list(sys.path)
    _c_test_runner()
    assert sys.path == before
