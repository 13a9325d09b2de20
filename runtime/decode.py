"""The calls of a weight-quantized ``Linear`` (LLM decode, M = 1..16, and prompt processing).

One C call per Linear call (``uk_qlinear_run``, csrc/uk_qlinear.c): x quantized per row to int8
(the same values and scales as the general path), the integer products over the weight in a
layout made for streaming, the dequantization and the layer's f32 ops (bias, activation), the
rows stored. No numpy temporary but the result, no descriptor filled per call, and no thread-pool
wake-up for weights under ``PARALLEL_MIN_BYTES`` (a wake-up and join cost more than the product).

Results equal the general path's (``run_matmul`` with the same quantized x, weight, scales and
ops) bit for bit at every ISA level: the same integer dots, converted and scaled in the same
order (csrc/uk_qlinear_internal.h).

The layout (uk_runtime.h: ``uk_qlinear_desc_t``) is one sequential stream per thread: panels of
64 columns, each a run of chunks, one per group (per channel: one, all of K), holding the group's
weights (256-byte blocks: four 16-column tiles of one K step, 4 K for int8, 8 for int4 as two
offset nibbles w + 8 per byte), then its 64 scales, then (int8) 128 * its 64 weight sums.
"""
import threading
from typing import Optional, Sequence, Tuple

import numpy as np

from ukernels._lib import ffi, lib
from ukernels.abi import UkernelError, cpu_data_for
from ukernels.runtime import threads

N0 = 16
PANEL = 64  # columns per panel: four tiles of N0
MAX_ROWS = int(lib.UK_QLINEAR_MAX_M)  # decode-sized calls (the work area is sized for at least this many)
# Weight bytes (times the call's 8-row blocks) from which uk_qlinear_run splits a call over the
# pool (the rule is the C side's alone). Below it one thread streams the weight
# faster than two can be woken and joined (bench/bench_decode.py --threshold, Zen 4, 2 threads:
# at 64 KiB of int8 weight one thread 5.1 us vs two 7.4 us; at 512 KiB one 18 us vs two 13 us).
PARALLEL_MIN_BYTES = 256 * 1024

def decode_layout(q_nk: np.ndarray, bits: int, group_size: Optional[int], scales: np.ndarray) -> np.ndarray:
    """The streaming layout (module doc) of an (N, K) integer weight (int8 values; int4 values in
    [-8, 7]) with its (N,) or (N, K // group_size) float32 scales: uint8, 64-byte aligned."""
    q = np.asarray(q_nk, dtype=np.int8)
    N, K = q.shape
    step = 4 if bits == 8 else 8
    Kp = -(-K // step) * step
    P = -(-N // PANEL)
    G = K // group_size if group_size else 1
    gk = group_size or Kp
    steps = gk // step
    padded = np.zeros((P * PANEL, Kp), np.int8)
    padded[:N, :K] = q
    if bits == 8:  # [p][u][n][g][s][k] -> [p][g][s][u][n][k]
        blocks = padded.reshape(P, 4, N0, G, steps, 4).transpose(0, 3, 4, 1, 2, 5).view(np.uint8)
    else:  # offset nibbles: [p][u][n][g][s][half][k] -> [p][g][s][u][n][k][half], two per byte
        u = (padded.astype(np.int16) + 8).astype(np.uint8).reshape(P, 4, N0, G, steps, 2, 4)
        u = u.transpose(0, 3, 4, 1, 2, 6, 5)
        blocks = u[..., 0] | (u[..., 1] << 4)
    parts = [np.ascontiguousarray(blocks).reshape(P, G, steps * 256), _per_panel(np.asarray(scales, np.float32), N, P, G)]
    if bits == 8:
        g = group_size or max(K, 1)
        sums = q.astype(np.int64).reshape(N, G, g if K else 0).sum(axis=2) if K else np.zeros((N, G), np.int64)
        parts.append(_per_panel((128 * sums).astype(np.int32), N, P, G))
    chunks = np.concatenate(parts, axis=2).reshape(-1)
    out = _aligned(max(chunks.size, 64))
    out[:chunks.size] = chunks
    return out


def _per_panel(values: np.ndarray, N: int, P: int, G: int) -> np.ndarray:
    """(N,) or (N, G) 4-byte values as [P][G][64] (columns past N: 0), viewed as bytes [P][G][256]."""
    v = values.reshape(N, G)
    padded = np.zeros((P * PANEL, G), v.dtype)
    padded[:N] = v
    return np.ascontiguousarray(padded.reshape(P, PANEL, G).transpose(0, 2, 1)).view(np.uint8)


def _aligned(nbytes: int) -> np.ndarray:
    """A zeroed uint8 array of nbytes whose data is 64-byte aligned (a view into a larger one)."""
    base = np.zeros(nbytes + 64, np.uint8)
    off = -base.ctypes.data % 64
    return base[off:off + nbytes]


class _Work(threading.local):
    """Each thread's work area for uk_qlinear_run (x quantized, its scales and group sums)."""

    def __init__(self) -> None:
        self.array: Optional[np.ndarray] = None
        self.ptr = ffi.NULL
        self.nbytes = 0


_work = _Work()


def _work_area(nbytes: int):
    """(array, 64-byte aligned pointer) of at least nbytes for this thread (grown, never shrunk)."""
    w = _work
    if w.nbytes < nbytes:
        array = np.empty(nbytes + 64, np.uint8)
        base = array.ctypes.data
        w.array, w.ptr, w.nbytes = array, ffi.cast("void*", base + (-base % 64)), nbytes
    return w.array, w.ptr


class DecodePlan:
    """A quantized weight in the streaming layout and the filled C descriptor of its calls.

    Args:
        q_nk: (N, K) integers (int8: [-128, 127]; int4: [-8, 7]).
        bits: 8 or 4.
        group_size: None (per output channel) or the group size (a multiple of 8 dividing K).
        scales: (N,) or (N, K // group_size) float32.
        c_ops: the layer's f32 ops after dequantization, as ``runtime.epilogue.to_c`` returns
            them (array, count, operands to keep alive).
        gated_columns: None, or a gated unit's output width I: then q_nk (and scales) hold
            2 * ceil(I / 64) panels of 64 rows, the gate's and the up projection's in turn, and a
            call gives silu(gate) * up (uk_runtime.h: uk_qlinear_desc_t.gated).
    """

    __slots__ = ("N", "K", "bits", "group_size", "gated", "_weight", "_ops", "_descs", "_work_bytes", "_work_rows")

    def __init__(self, q_nk: np.ndarray, bits: int, group_size: Optional[int], scales: np.ndarray,
                 c_ops: Tuple[object, int, Sequence[np.ndarray]], gated_columns: Optional[int] = None):
        self.N, self.K = q_nk.shape
        self.gated = gated_columns is not None
        if self.gated:  # q_nk: 64-row panels of the gate and the up projection in turn (uk_runtime.h)
            self.N = gated_columns
        self.bits, self.group_size = bits, group_size
        self._weight = decode_layout(q_nk, bits, group_size, scales)
        self._weight.setflags(write=False)
        self._ops = c_ops
        self._descs = {}
        self._work_bytes = self._work_rows = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the weight layout (weights, scales and sums): what one call reads."""
        return self._weight.nbytes

    def _desc(self, isa: str):
        d = self._descs.get(isa)
        if d is None:
            weight = self._weight
            d = ffi.new("uk_qlinear_desc_t*")
            d.N, d.K, d.bits, d.group_size = self.N, self.K, self.bits, self.group_size or 0
            d.gated = int(self.gated)
            d.weight = ffi.from_buffer(weight)
            if lib.uk_qlinear_weight_bytes(d) > weight.nbytes:
                raise RuntimeError("internal: the decode layout is smaller than uk_qlinear_weight_bytes")
            d.ops, d.num_ops = self._ops[0] if self._ops[0] is not None else ffi.NULL, self._ops[1]
            d.parallel_min_bytes = PARALLEL_MIN_BYTES
            d.cpu_data = cpu_data_for(isa)
            self._descs[isa] = d
        return d

    def kernel_name(self, isa: str) -> str:
        """The decode kernel a call at ``isa`` runs."""
        return ffi.string(lib.uk_qlinear_kernel_name(self._desc(isa))).decode()

    def run(self, x2: np.ndarray, out2: np.ndarray, isa: str) -> None:
        """out2 (M, N) f32 = the layer applied to x2 (M, K) f32: both C-contiguous, M, N > 0."""
        d = self._descs.get(isa)
        if d is None:
            d = self._desc(isa)
        M = x2.shape[0]
        if M > self._work_rows:  # the work area for up to max(M, MAX_ROWS) rows (sized once per growth)
            self._work_rows = max(M, MAX_ROWS)
            self._work_bytes = int(lib.uk_qlinear_work_bytes(d, self._work_rows))
        nthreads = threads.get_num_threads()
        d.max_threads = nthreads
        w = _work
        if w.nbytes < self._work_bytes:
            _work_area(self._work_bytes)
        # the pool whenever there are threads: uk_qlinear_run alone decides whether the call is
        # worth splitting (weight bytes x row blocks against parallel_min_bytes)
        status = _run(d, _from_buffer("float[]", x2) if self.K else _NULL, M, self.K,
                      _from_buffer("float[]", out2), self.N, w.ptr, threads.get_pool() if nthreads > 1 else _NULL)
        if status:
            if status == lib.UK_STATUS_BAD_ARGUMENT and x2.size and not np.isfinite(x2).all():
                raise ValueError("x has NaN or Inf values; a weight-quantized Linear quantizes x to int8 per row and "
                                 "cannot represent them")
            raise UkernelError("uk_qlinear_run", status)


# run's per-call names, bound once
_run, _from_buffer, _NULL = lib.uk_qlinear_run, ffi.from_buffer, ffi.NULL
