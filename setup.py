"""Build of the cffi extension ``ukernels._native`` from ``csrc/``.

Every ISA-specific translation unit is compiled with its own ``-m`` flags
(and only those), so one build carries the generic, AVX2 and AVX-512 code
and the right tile functions are chosen at run time from the CPU bits.
"""
import os
import platform
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ukernels"))
from _build_config import COMMON_CFLAGS, INCLUDE_DIRS, isa_sources  # noqa: E402


class BuildWithIsaFlags(build_ext):
    """Compiles csrc/arch/<arch>/*.c with their per-ISA flags, then links them in."""

    def build_extension(self, ext):
        if ext.name == "ukernels._native":
            objects = []
            for source, flags in isa_sources(platform.machine()):
                objects += self.compiler.compile(
                    [source],
                    output_dir=self.build_temp,
                    include_dirs=INCLUDE_DIRS,
                    extra_postargs=COMMON_CFLAGS + flags,
                    depends=[os.path.join(d, h) for d in INCLUDE_DIRS for h in os.listdir(d) if h.endswith((".h", ".inl"))],
                )
            ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extension(ext)


setup(
    cffi_modules=["ukernels/_ffi_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildWithIsaFlags},
)
