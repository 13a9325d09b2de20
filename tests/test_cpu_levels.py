"""ISA levels per architecture, on any host: the aarch64 table checked with the feature bits
of real CPU generations standing in for this CPU's (the C tile tests run those CPUs under
qemu; see test_c_level.py)."""
import pytest

from ukernels import cpu
from ukernels._lib import lib

NEON, DOT, I8MM, BF16, FP16, FHM = (lib.UK_CPU_ARM_NEON, lib.UK_CPU_ARM_DOTPROD, lib.UK_CPU_ARM_I8MM,
                                    lib.UK_CPU_ARM_BF16, lib.UK_CPU_ARM_FP16, lib.UK_CPU_ARM_FHM)
CORTEX_A53 = NEON                                  # Armv8.0
CORTEX_A76 = NEON | DOT | FP16                     # Armv8.2 with dotprod, no fmlal
NEOVERSE_N2 = NEON | DOT | FP16 | FHM | I8MM | BF16  # Armv9.0


@pytest.fixture
def aarch64(monkeypatch):
    """Makes cpu.py answer as on an aarch64 CPU whose bits the test sets."""
    caches = (cpu._resolve, cpu.isa_cpu_bits)
    for c in caches:
        c.cache_clear()
    monkeypatch.setattr(cpu.platform, "machine", lambda: "aarch64")
    monkeypatch.delenv("UKERNELS_ISA", raising=False)

    def set_bits(bits):
        monkeypatch.setattr(cpu, "cpu_bits", lambda: bits)
        for c in caches:
            c.cache_clear()
    yield set_bits
    for c in caches:
        c.cache_clear()


def test_aarch64_levels_oldest_first(aarch64):
    assert cpu.known_isas() == ["generic", "neon", "neon_dotprod", "neon_i8mm"]


@pytest.mark.parametrize("bits, supported", [
    (0, ["generic"]),
    (CORTEX_A53, ["generic", "neon"]),
    (CORTEX_A76, ["generic", "neon", "neon_dotprod"]),
    (NEOVERSE_N2, ["generic", "neon", "neon_dotprod", "neon_i8mm"]),
])
def test_aarch64_supported_levels(aarch64, bits, supported):
    aarch64(bits)
    assert cpu.supported_isas() == supported
    assert cpu.active_isa() == supported[-1]


def test_aarch64_levels_lower_the_bits(aarch64, monkeypatch):
    aarch64(NEOVERSE_N2)
    assert cpu.isa_cpu_bits("neon_i8mm") == NEOVERSE_N2
    assert cpu.isa_cpu_bits("neon_dotprod") == NEON | DOT | FP16 | FHM  # no smmla, no bf16
    assert cpu.isa_cpu_bits("neon") == NEON
    assert cpu.isa_cpu_bits("generic") == 0
    aarch64(CORTEX_A76)  # a level uses only the optional bits the CPU has
    assert cpu.isa_cpu_bits("neon_dotprod") == CORTEX_A76
    monkeypatch.setenv("UKERNELS_ISA", "neon")
    assert cpu.active_isa() == "neon"
    monkeypatch.setenv("UKERNELS_ISA", "neon_i8mm")
    with pytest.raises(ValueError, match=r"newer ISA than this CPU supports.*use one of"):
        cpu.active_isa()
    monkeypatch.setenv("UKERNELS_ISA", "avx2")
    with pytest.raises(ValueError, match=r"not an ISA level of this build"):
        cpu.active_isa()


def test_aarch64_feature_names(aarch64):
    names = cpu.feature_names(NEOVERSE_N2)
    for want in ("neon", "dotprod", "i8mm", "bf16", "fp16 (fphp+asimdhp)", "fhm (asimdfhm)"):
        assert want in names
