"""Build of the cffi extension ``ukernels._native`` from ``csrc/``, and of
the pre-generated kernels.

Every ISA-specific translation unit is compiled with its own ``-m`` flags
(and only those), so one build carries the generic, AVX2 and AVX-512 code
and the right tile functions are chosen at run time from the CPU bits.

After the extension, the build-time generator renders and compiles the
kernels of ``codegen/default_kernels.json`` for this architecture into
``ukernels/codegen/prebuilt/`` (one library + manifest), so that they need
no compiler at run time. ``UKERNELS_PREBUILT=0`` skips that step; if it
fails the build goes on without them (kernels are then compiled on first
use) and says so.
"""
import importlib.util
import json
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

    def run(self):
        super().run()
        if os.environ.get("UKERNELS_PREBUILT", "1") == "0":
            print("ukernels: UKERNELS_PREBUILT=0, skipping the pre-generated kernels")
            return
        try:
            self._generate_prebuilt()
        except Exception as exc:  # noqa: BLE001 - optional step: report and go on
            print(f"ukernels: WARNING: pre-generated kernels skipped ({type(exc).__name__}: {exc}); "
                  "generated kernels will be compiled on first use")

    def _generate_prebuilt(self):
        root = os.path.dirname(os.path.abspath(__file__))
        pkg_dir = os.path.join(root, "codegen")
        spec = importlib.util.spec_from_file_location(
            "_ukernels_codegen_build", os.path.join(pkg_dir, "__init__.py"), submodule_search_locations=[pkg_dir])
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        generator = importlib.import_module(spec.name + ".generator")
        with open(os.path.join(pkg_dir, "default_kernels.json")) as f:
            doc = json.load(f)
        machine = "x86_64" if platform.machine().lower() in ("x86_64", "amd64") else platform.machine().lower()
        entries = doc.get(machine)
        if not entries:
            print(f"ukernels: no default pre-generated kernels for {machine}")
            return
        specs, shapes = generator.specs_and_shapes({"kernels": entries}, "codegen/default_kernels.json")
        if self.inplace:
            out = os.path.join(pkg_dir, "prebuilt")
        else:
            out = os.path.join(self.build_lib, "ukernels", "codegen", "prebuilt")
        print(f"ukernels: generating {len(specs)} pre-generated kernels into {out}")
        generator.build(specs, out, shapes=shapes, progress=sys.stdout)


setup(
    cffi_modules=["ukernels/_ffi_build.py:ffibuilder"],
    cmdclass={"build_ext": BuildWithIsaFlags},
)
