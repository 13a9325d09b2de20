"""What csrc/ is made of and the flags each piece is compiled with.

Shared by setup.py (the cffi extension), the sanitizer build
(``python -m ukernels.selftest_build`` / ``make -C csrc sanitize``) and
``python -m ukernels info``.
"""
from typing import List, Tuple

COMMON_CFLAGS: List[str] = ["-O3", "-std=c11", "-Wall", "-Wextra", "-fPIC", "-pthread"]

# csrc/ for the implementation headers; ukernels/include/ holds the ABI header
# (uk_api.h), which ships with the package so generated kernels compile
# against the very same definition at run time.
INCLUDE_DIRS: List[str] = ["csrc", "ukernels/include"]

# Portable translation units: compiled with COMMON_CFLAGS only (baseline ISA);
# isa_sources() lists the ones that need flags of their own.
PORTABLE_SOURCES: List[str] = [
    "csrc/uk_cpu.c",
    "csrc/uk_mmt4d.c",
    "csrc/uk_mmt4d_generic.c",
    "csrc/uk_pack.c",
    "csrc/uk_pool.c",
    "csrc/uk_dispatch.c",
    "csrc/uk_interrupt.c",
    "csrc/uk_bench.c",
    "csrc/uk_quantize.c",
    "csrc/uk_qlinear.c",
]

# Epilogue loops: without -fno-trapping-math GCC will not if-convert the
# clamps in gelu's erf, and the loop stays scalar. Nothing here reads FP
# exception flags.
EPILOGUE_FLAGS = ["-fno-trapping-math"]

X86_AVX2_FLAGS = ["-mavx", "-mavx2", "-mfma", "-mf16c"]
X86_AVX512_FLAGS = X86_AVX2_FLAGS + ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512cd"]
X86_AVX512_VNNI_FLAGS = X86_AVX512_FLAGS + ["-mavx512vnni"]
X86_AVX512_BF16_FLAGS = X86_AVX512_FLAGS + ["-mavx512bf16"]

_ANY_ARCH_SOURCES: List[Tuple[str, List[str]]] = [
    ("csrc/uk_epilogue.c", EPILOGUE_FLAGS),
]

_X86_SOURCES: List[Tuple[str, List[str]]] = [
    ("csrc/arch/x86_64/uk_mmt4d_x86_64_avx2_fma.c", X86_AVX2_FLAGS),
    ("csrc/arch/x86_64/uk_epilogue_x86_64_avx2_fma.c", X86_AVX2_FLAGS + EPILOGUE_FLAGS),
    ("csrc/arch/x86_64/uk_mmt4d_x86_64_avx512_base.c", X86_AVX512_FLAGS),
    ("csrc/arch/x86_64/uk_epilogue_x86_64_avx512_base.c", X86_AVX512_FLAGS + EPILOGUE_FLAGS),
    ("csrc/arch/x86_64/uk_mmt4d_x86_64_avx512_vnni.c", X86_AVX512_VNNI_FLAGS),
    ("csrc/arch/x86_64/uk_mmt4d_x86_64_avx512_bf16.c", X86_AVX512_BF16_FLAGS),
    ("csrc/arch/x86_64/uk_pack_x86_64_avx2_fma.c", X86_AVX2_FLAGS),
    ("csrc/arch/x86_64/uk_quantize_x86_64_avx2_fma.c", X86_AVX2_FLAGS),
    ("csrc/arch/x86_64/uk_qlinear_x86_64_avx2_fma.c", X86_AVX2_FLAGS),
    ("csrc/arch/x86_64/uk_qlinear_x86_64_avx512_vnni.c", X86_AVX512_VNNI_FLAGS),
    ("csrc/arch/x86_64/uk_pack_x86_64_avx512_bf16.c", X86_AVX512_BF16_FLAGS),
    ("csrc/arch/x86_64/uk_probe_x86_64_avx2_fma.c", X86_AVX2_FLAGS),
    ("csrc/arch/x86_64/uk_probe_x86_64_avx512.c", X86_AVX512_FLAGS + ["-mavx512vnni", "-mavx512bf16"]),
]


ARM64_NEON_FLAGS = ["-march=armv8-a"]
ARM64_DOTPROD_FLAGS = ["-march=armv8.2-a+dotprod"]
ARM64_I8MM_FLAGS = ["-march=armv8.2-a+i8mm"]
ARM64_BF16_FLAGS = ["-march=armv8.2-a+bf16"]
ARM64_FP16FML_FLAGS = ["-march=armv8.2-a+fp16fml"]

_ARM64_SOURCES: List[Tuple[str, List[str]]] = [
    ("csrc/arch/arm_64/uk_mmt4d_arm_64_neon.c", ARM64_NEON_FLAGS),
    ("csrc/arch/arm_64/uk_mmt4d_arm_64_dotprod.c", ARM64_DOTPROD_FLAGS),
    ("csrc/arch/arm_64/uk_qlinear_arm_64_dotprod.c", ARM64_DOTPROD_FLAGS),
    ("csrc/arch/arm_64/uk_mmt4d_arm_64_i8mm.c", ARM64_I8MM_FLAGS),
    ("csrc/arch/arm_64/uk_mmt4d_arm_64_bf16.c", ARM64_BF16_FLAGS),
    ("csrc/arch/arm_64/uk_mmt4d_arm_64_fp16fml.c", ARM64_FP16FML_FLAGS),
]


def isa_sources(machine: str) -> List[Tuple[str, List[str]]]:
    """(source, extra flags) for every file compiled with flags of its own:
    the per-ISA files of this machine type (``uname -m``), and the epilogue."""
    if machine.lower() in ("x86_64", "amd64"):
        return list(_ANY_ARCH_SOURCES) + list(_X86_SOURCES)
    if machine.lower() in ("aarch64", "arm64"):
        return list(_ANY_ARCH_SOURCES) + list(_ARM64_SOURCES)
    return list(_ANY_ARCH_SOURCES)
