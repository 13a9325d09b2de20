"""Every error path of the public API names the argument and what is accepted."""
import numpy as np
import pytest

import ukernels

F = np.ones((3, 4), np.float32)
G = np.ones((4, 5), np.float32)
I8 = np.ones((3, 4), np.int8)


@pytest.mark.parametrize("a,b,exc,match", [
    (np.float32(1), G, ValueError, r"a is a scalar \(0-d\)"),
    (F, np.ones((4, 5, 1), np.float32), ValueError, r"a's last dimension \(4\) must equal b's second-to-last \(5\)"),
    (F, np.ones((5, 5), np.float32), ValueError, r"a's last dimension \(K=4\) must equal b's first dimension \(5\)"),
    (F, np.ones(5, np.float32), ValueError, r"b has shape \(5,\); .* must equal b's only dimension \(5\)"),
    (F, np.ones((4, 5), np.int8), TypeError, r"same dtype"),
    (np.ones((3, 4)), np.ones((4, 5)), TypeError, r"unsupported dtype float64.*float32"),
    (np.ones((3, 4), np.int32), np.ones((4, 5), np.int32), TypeError, r"unsupported dtype int32"),
    (np.ones((3, 4), np.uint16), np.ones((4, 5), np.uint16), TypeError, r"unsupported dtype uint16"),
])
def test_bad_operands(a, b, exc, match):
    with pytest.raises(exc, match=match):
        ukernels.matmul(a, b)


def test_bad_bias():
    with pytest.raises(ValueError, match=r"bias must be 1-D of length N=5"):
        ukernels.matmul(F, G, bias=np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"bias must be 1-D"):
        ukernels.matmul(F, G, bias=np.ones((1, 5), np.float32))
    with pytest.raises(TypeError, match=r"bias must have dtype float32"):
        ukernels.matmul(F, G, bias=np.ones(5))
    with pytest.raises(TypeError, match=r"bias must have dtype int32"):
        ukernels.matmul(I8, np.ones((4, 5), np.int8), bias=np.ones(5, np.float32))


def test_bad_activation_and_backend():
    with pytest.raises(ValueError, match=r"activation must be one of \[None, 'relu', 'gelu'\]"):
        ukernels.matmul(F, G, activation="swish")
    with pytest.raises(ValueError, match=r"activation must be one of"):
        ukernels.matmul(F, G, activation=1)
    # int8 x int8 with a float op: the int32 accumulator converts to float32 first
    out = ukernels.matmul(I8, np.ones((4, 5), np.int8), activation="gelu")
    assert out.dtype == np.float32 and np.allclose(out, 4.0 * 0.5 * (1 + 0.9999366575163338), atol=1e-5)
    with pytest.raises(ValueError, match=r"backend must be one of"):
        ukernels.matmul(F, G, backend="blas")


def test_bad_isa_env(monkeypatch):
    monkeypatch.setenv("UKERNELS_ISA", "sse9")
    with pytest.raises(ValueError, match=r"UKERNELS_ISA='sse9' is not an ISA level"):
        ukernels.matmul(F, G)


def test_isa_env_cannot_raise_the_level(monkeypatch):
    """Asking for a level above the CPU's is refused: on a CPU that has only the level below
    this build's newest (its feature bits stood in, whatever the host has)."""
    from ukernels import cpu
    known = cpu.known_isas()
    if len(known) < 2:
        pytest.skip(f"this build knows one ISA level ({known[0]}) on {cpu.platform.machine()}: nothing above it")
    monkeypatch.setattr(cpu, "cpu_bits", lambda: cpu._required(known[-2]))
    caches = (cpu._resolve, cpu.isa_cpu_bits)
    for c in caches:
        c.cache_clear()
    try:
        assert known[-1] not in cpu.supported_isas()
        monkeypatch.setenv("UKERNELS_ISA", known[-1])
        with pytest.raises(ValueError, match=r"newer ISA than this CPU supports"):
            ukernels.matmul(F, G)
        monkeypatch.setenv("UKERNELS_ISA", known[-2])  # its own level is accepted
        assert cpu.active_isa() == known[-2]
    finally:
        for c in caches:
            c.cache_clear()


def test_bad_thread_counts(monkeypatch):
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        ukernels.set_num_threads(0)
    with pytest.raises(TypeError, match=r"n must be an int"):
        ukernels.set_num_threads(1.5)
    from ukernels.runtime import threads
    monkeypatch.setattr(threads, "_requested", None)
    monkeypatch.setenv("UKERNELS_NUM_THREADS", "many")
    with pytest.raises(ValueError, match=r"UKERNELS_NUM_THREADS='many' is not an integer"):
        ukernels.get_num_threads()
    monkeypatch.setenv("UKERNELS_NUM_THREADS", "3")
    assert ukernels.get_num_threads() == 3
