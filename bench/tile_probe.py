"""Shared by bench/ scripts: one tile kernel alone (uk_mmt4d repeated in C over one lhs
micro-panel and a few rhs micro-panels, so operands stay in L1), and the throughput of the
instruction it is built on (probes in csrc/arch/x86_64/uk_probe_*.c)."""
from typing import Optional, Tuple

import numpy as np

from ukernels._lib import ffi, lib
from ukernels._timing import median_time
from ukernels.abi import cpu_data_for
from ukernels.benchmark.machine import best_rate

# per triple on AVX-512 with the dot-product features: the instruction its tile is built on
# (uk_probe_dot_peak_avx512's `which`: 0 vfmadd231ps, 1 vdpbf16ps, 2 vpdpwssd, 3 vpdpbusd)
DOT_INSTRUCTIONS = {"f32f32f32": (0, "vfmadd231ps"), "f16f16f32": (0, "vfmadd231ps"),
                    "bf16bf16f32": (1, "vdpbf16ps"), "s16s16s32": (2, "vpdpwssd"),
                    "u8s8s32": (3, "vpdpbusd"), "s8s8s32": (3, "vpdpbusd"), "s8s4s32": (3, "vpdpbusd")}


def tile_kernel_gops(types, isa: str, tile: Tuple[int, int, int], K: int = 256, N_tiles: int = 8,
                     reps: int = 2000, flags: int = 0) -> float:
    """G ops/s (a multiply-add counts 2) of the ``tile`` kernel of ``types`` at ``isa`` (with
    these extra call ``flags``: e.g. UK_FLAG_LHS_S8_SYMMETRIC for the tiles that need it)."""
    M0, N0, K0 = tile
    K1 = K // K0
    rng = np.random.default_rng(0)
    rhs_elems = N_tiles * K1 * N0 * K0
    lhs = rng.integers(-3, 4, K1 * M0 * K0).astype(types.lhs)
    rhs = (rng.integers(0, 256, rhs_elems // 2).astype(np.uint8) if types.name == "s8s4s32"  # nibbles
           else rng.integers(-3, 4, rhs_elems).astype(types.rhs))
    out = np.zeros(N_tiles * M0 * N0, types.acc)
    p = ffi.new("uk_mmt4d_params_t*")
    cpu_data = cpu_data_for(isa)
    p.lhs_buffer, p.lhs_stride0 = ffi.cast("void*", lhs.ctypes.data), K1 * M0 * K0
    p.rhs_buffer, p.rhs_stride0 = ffi.cast("void*", rhs.ctypes.data), K1 * N0 * K0
    p.out_buffer, p.out_stride0 = ffi.cast("void*", out.ctypes.data), N_tiles * M0 * N0
    p.M, p.N, p.K, p.M0, p.N0, p.K0 = 1, N_tiles, K1, M0, N0, K0
    p.flags = types.uk_type | lib.UK_FLAG_ALLOW_GENERIC_FALLBACK | flags
    p.cpu_data = cpu_data
    t = median_time(lambda: lib.uk_bench_mmt4d_repeat(p, reps), 7)
    return 2.0 * M0 * N0 * K1 * K0 * N_tiles * reps / t / 1e9


def fma_peak_avx2() -> float:
    """GFLOP/s of one core running independent 256-bit FMAs (best of 5)."""
    return best_rate(lambda: lib.uk_probe_fma_peak_avx2(20_000_000), 5)


def dot_peak_avx512(which: int) -> float:
    """G ops/s of one core running the AVX-512 instruction ``which`` (see DOT_INSTRUCTIONS);
    the caller checks the CPU has it."""
    return best_rate(lambda: lib.uk_probe_dot_peak_avx512(which, 5_000_000), 5)


def instruction_for(types_name: str, function_name: str) -> Optional[Tuple[int, str]]:
    """The probed instruction behind an AVX-512 tile function, None for other ISAs."""
    if "avx512" not in function_name:
        return None
    return DOT_INSTRUCTIONS.get(types_name)
