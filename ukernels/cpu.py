"""CPU features and the ISA level the kernels run at.

The C side detects what the CPU and the OS support (``uk_cpu_detect``); this
module turns that into ISA levels, ordered from oldest to newest, and applies
``UKERNELS_ISA`` (which may only *lower* the level).
"""
import platform
from functools import lru_cache
from typing import Dict, List, Tuple

from ukernels._env import getenv
from ukernels._lib import ffi, lib

# Oldest first.  Each level's mask is the set of CPU bits kernels may use there.
_X86_LEVELS: Tuple[Tuple[str, int], ...] = (
    ("generic", 0),
    ("avx2", lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_F16C),
    (
        "avx512",
        lib.UK_CPU_X86_AVX2_FMA
        | lib.UK_CPU_X86_F16C
        | lib.UK_CPU_X86_AVX512_BASE
        | lib.UK_CPU_X86_AVX512_VNNI
        | lib.UK_CPU_X86_AVX512_BF16,
    ),
)
# The bits a level needs to be usable at all.
_X86_REQUIRED: Dict[str, int] = {
    "generic": 0,
    "avx2": lib.UK_CPU_X86_AVX2_FMA,
    "avx512": lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_AVX512_BASE,
}

FEATURE_NAMES: Dict[int, str] = {
    lib.UK_CPU_X86_AVX2_FMA: "avx2+fma",
    lib.UK_CPU_X86_F16C: "f16c",
    lib.UK_CPU_X86_AVX512_BASE: "avx512f/bw/dq/vl/cd",
    lib.UK_CPU_X86_AVX512_VNNI: "avx512_vnni",
    lib.UK_CPU_X86_AVX512_BF16: "avx512_bf16",
    lib.UK_CPU_ARM_NEON: "neon",
    lib.UK_CPU_ARM_DOTPROD: "dotprod",
    lib.UK_CPU_ARM_I8MM: "i8mm",
    lib.UK_CPU_ARM_BF16: "bf16",
    lib.UK_CPU_ARM_FP16: "fp16 (fphp+asimdhp)",
    lib.UK_CPU_ARM_FHM: "fhm (asimdfhm)",
}

ISA_ENV = "UKERNELS_ISA"


@lru_cache(maxsize=None)
def cpu_bits() -> int:
    """The UK_CPU_* bits of this CPU and OS."""
    data = ffi.new("uint64_t[1]")
    lib.uk_cpu_detect(data)
    return int(data[0])


@lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU's model string (cpuid brand string on x86-64)."""
    buf = ffi.new("char[64]")
    lib.uk_cpu_model_name(buf, 64)
    return ffi.string(buf).decode("ascii", "replace").strip()


def feature_names(bits: int) -> List[str]:
    """Names of the features set in ``bits``."""
    return [name for bit, name in FEATURE_NAMES.items() if bits & bit]


# aarch64, by architecture generation: "neon" is every aarch64 CPU (Armv8.0 Advanced SIMD);
# "neon_dotprod" adds the Armv8.2/8.4 extensions (sdot, half-precision arithmetic, fmlal);
# "neon_i8mm" adds the Armv8.6 ones (smmla, bfdot/bfmmla). A level uses the optional bits of
# its generation that the CPU has; it needs only the ones in _ARM_REQUIRED.
_ARM_NEON = lib.UK_CPU_ARM_NEON
_ARM_V82 = _ARM_NEON | lib.UK_CPU_ARM_DOTPROD | lib.UK_CPU_ARM_FP16 | lib.UK_CPU_ARM_FHM
_ARM_LEVELS: Tuple[Tuple[str, int], ...] = (
    ("generic", 0),
    ("neon", _ARM_NEON),
    ("neon_dotprod", _ARM_V82),
    ("neon_i8mm", _ARM_V82 | lib.UK_CPU_ARM_I8MM | lib.UK_CPU_ARM_BF16),
)
_ARM_REQUIRED: Dict[str, int] = {
    "generic": 0,
    "neon": _ARM_NEON,
    "neon_dotprod": _ARM_NEON | lib.UK_CPU_ARM_DOTPROD,
    "neon_i8mm": _ARM_NEON | lib.UK_CPU_ARM_DOTPROD | lib.UK_CPU_ARM_I8MM,
}


def _levels() -> Tuple[Tuple[str, int], ...]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return _X86_LEVELS
    if machine in ("aarch64", "arm64"):
        return _ARM_LEVELS
    return (("generic", 0),)


def _required(name: str) -> int:
    return _X86_REQUIRED.get(name, _ARM_REQUIRED.get(name, 0))


def known_isas() -> List[str]:
    """Every ISA level this build knows for this architecture, oldest first."""
    return [name for name, _ in _levels()]


def supported_isas() -> List[str]:
    """The ISA levels this CPU can run, oldest first."""
    bits = cpu_bits()
    return [name for name in known_isas() if (bits & _required(name)) == _required(name)]


def host_isa() -> str:
    """The newest ISA level this CPU supports."""
    return supported_isas()[-1]


@lru_cache(maxsize=64)
def _resolve(requested: str) -> str:
    if not requested:
        return host_isa()
    name = requested.strip().lower()
    if name not in known_isas():
        raise ValueError(
            f"{ISA_ENV}={requested!r} is not an ISA level of this build; "
            f"use one of {known_isas()} (or unset it to use the newest the CPU supports)"
        )
    if name not in supported_isas():
        raise ValueError(
            f"{ISA_ENV}={requested!r} asks for a newer ISA than this CPU supports "
            f"({cpu_model()}: {', '.join(feature_names(cpu_bits())) or 'no SIMD features'}); "
            f"{ISA_ENV} can only lower the level: use one of {supported_isas()}"
        )
    return name


def active_isa() -> str:
    """The ISA level in force: ``UKERNELS_ISA`` if set (validated), else the host's."""
    return _resolve(getenv(ISA_ENV) or "")


@lru_cache(maxsize=None)
def isa_cpu_bits(isa: str) -> int:
    """CPU bits the kernels may use at ISA level ``isa`` on this CPU."""
    mask = dict(_levels())[isa]
    return cpu_bits() & mask
