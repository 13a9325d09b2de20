"""Shared fixtures: ISA levels (skipped with the missing feature named) and data."""
import numpy as np
import pytest

from ukernels import cpu
from ukernels._lib import lib

ISA_NEEDS = {
    "generic": (0, ""),
    "avx2": (lib.UK_CPU_X86_AVX2_FMA, "AVX2+FMA (with OS ymm state)"),
    "avx512": (lib.UK_CPU_X86_AVX2_FMA | lib.UK_CPU_X86_AVX512_BASE, "AVX-512 F/BW/DQ/VL/CD (with OS zmm state)"),
    "neon": (lib.UK_CPU_ARM_NEON, "NEON"),
    "neon_dotprod": (lib.UK_CPU_ARM_NEON | lib.UK_CPU_ARM_DOTPROD, "NEON dotprod (asimddp)"),
    "neon_i8mm": (lib.UK_CPU_ARM_NEON | lib.UK_CPU_ARM_DOTPROD | lib.UK_CPU_ARM_I8MM, "NEON i8mm"),
}


@pytest.fixture(autouse=True, scope="session")
def _isolated_kernel_cache(tmp_path_factory):
    """Generated kernels compiled by the tests go to a temporary cache, never the user's."""
    import os
    old = os.environ.get("UKERNELS_CACHE_DIR")
    os.environ["UKERNELS_CACHE_DIR"] = str(tmp_path_factory.mktemp("ukernels-cache"))
    yield
    if old is None:
        os.environ.pop("UKERNELS_CACHE_DIR", None)
    else:
        os.environ["UKERNELS_CACHE_DIR"] = old


def skip_unless_cpu_has(bits: int, what: str) -> None:
    if (cpu.cpu_bits() & bits) != bits:
        pytest.skip(f"this CPU ({cpu.cpu_model()}) lacks {what}")


@pytest.fixture(params=cpu.known_isas())
def isa(request, monkeypatch):
    """Each ISA level this build knows; runs ukernels under UKERNELS_ISA=<level>."""
    bits, what = ISA_NEEDS[request.param]
    skip_unless_cpu_has(bits, what)
    monkeypatch.setenv("UKERNELS_ISA", request.param)
    return request.param


def run_in_threads(work, n: int) -> None:
    """Run work(i) for i in range(n) on n threads released together by a barrier;
    re-raise the first exception any of them hit."""
    import threading
    errors = []
    barrier = threading.Barrier(n)

    def body(i):
        barrier.wait()
        try:
            work(i)
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def small_ints(rng, shape, dtype, lo=-4, hi=4):
    """Small-integer-valued data: every product and sum is exact in f32/s32."""
    return rng.integers(lo, hi + 1, size=shape).astype(dtype)


def k_scaled_tol(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise bound for an f32 dot product of length K: 2*K*u*(|a|@|b|)."""
    K = a.shape[1]
    u = np.finfo(np.float32).eps / 2
    return 2.0 * max(K, 1) * u * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))) + 1e-30


def wait_child(pid: int, timeout: float):
    """Exit code of forked child ``pid``, or None if it did not end within ``timeout``
    seconds (it is then killed): a hung child fails the test instead of hanging it."""
    import os
    import signal
    import time
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.005)


def skip_unless_c_build(script: str, what: str) -> str:
    """The C compiler ($CC or cc) to build ``what`` from the checkout's ``script``; skips,
    saying why, without a compiler or without the C sources (an installed package)."""
    import os
    import shutil
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler {cc!r} on PATH to build {what}")
    if not os.path.exists(script):
        pytest.skip("C sources not present (running from an installed package without the checkout)")
    return cc
