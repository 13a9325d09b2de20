"""The NEON codegen target, cross-compiled with aarch64-linux-gnu-gcc and run
under qemu-user (Debian packages gcc-aarch64-linux-gnu, qemu-user; .ci/run
installs them). Exact on small-integer inputs vs a scalar reference."""
import os
import shutil
import subprocess

import pytest

from ukernels.codegen.compiler import include_dir
from ukernels.codegen.render import KernelSpec, render

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "c", "codegen_harness.c")
CROSS = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"

CASES = [("f32f32f32", 8, 8, "neon"), ("f32f32f32", 1, 4, "neon"), ("f32f32f32", 12, 8, "neon"),
         ("f32f32f32", 4, 16, "neon"), ("s8s8s32", 8, 8, "neon"), ("s8s8s32", 1, 4, "neon"),
         ("s8s8s32", 4, 12, "neon"), ("s8s8s32", 8, 8, "neon_dotprod"), ("s8s8s32", 1, 4, "neon_dotprod"),
         ("s8s8s32", 4, 12, "neon_dotprod")]


@pytest.mark.parametrize("static_k", [None, 9])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}-{c[3]}")
def test_neon_kernel_under_qemu(case, static_k, tmp_path):
    if shutil.which(CROSS) is None:
        pytest.skip(f"no aarch64 cross compiler ({CROSS}; Debian package gcc-aarch64-linux-gnu)")
    if shutil.which(QEMU) is None:
        pytest.skip(f"no {QEMU} to run aarch64 binaries (Debian package qemu-user)")
    types, M0, N0, target = case
    spec = KernelSpec(types, M0, N0, target, static_k)
    src = tmp_path / "kernel.c"
    src.write_text(render(spec))
    exe = tmp_path / "harness"
    from ukernels.codegen.targets import target as get_target
    cmd = [CROSS, *get_target(target).cflags, "-std=c11", "-static", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
           "-I", include_dir(), f'-DKERNEL_SOURCE="{src}"', f"-DKERNEL_NAME={spec.name}", f"-DTILE_M0={M0}",
           f"-DTILE_N0={N0}", f"-DTILE_K0={spec.K0}", f"-DIS_S8={int(types == 's8s8s32')}", HARNESS, "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([QEMU, str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("14 passed, 0 failed")


def test_neon_specs_render_for_every_case():
    # rendering needs no toolchain: the target data is complete for both families
    for types, M0, N0, target in CASES:
        text = render(KernelSpec(types, M0, N0, target))
        assert "arm_neon.h" in text and ("vfmaq_f32" in text or "vmull_s16" in text or "vdotq_s32" in text)
