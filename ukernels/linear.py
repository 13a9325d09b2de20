"""``ukernels.Linear``: a prepared operator whose weight is packed once.

Its file format (``save`` / ``load``) and the validating reader live in ukernels/linear_file.py.
"""
import os
import tempfile
import uuid
from dataclasses import fields as dc_fields, replace as dc_replace
from typing import Any, BinaryIO, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ukernels import cpu, linear_file
from ukernels import ops as O
from ukernels._sync import ForkSafeLock
from ukernels.linear_file import _BF16, _INT4, WEIGHT_DTYPES
from ukernels.abi import (BF16BF16F32, F32F32F32, S8S4S32, S8S8S32, ELEMENT_TYPES, element_types_for,
                          supported_combinations)
from ukernels.matmul import BACKENDS, PRECISIONS, apply_precision, build_epilogue, is_float_dtype, shorthand_ops
from ukernels.quantize import QMAX, check_group_size, quantize_rows, quantize_weight
from ukernels.runtime.dispatch import PackedRhs, run_matmul, run_small, small_call_key
from ukernels.runtime.decode import DecodePlan
from ukernels.runtime.epilogue import to_c
from ukernels.runtime.fusion import check_fusion
from ukernels.runtime.packing import pack
from ukernels.runtime.plan import native_16bit_float_dot

_F32 = np.dtype(np.float32)
_FLOAT_WEIGHTS = {"f32": np.dtype(np.float32), "bf16": _BF16, "f16": np.dtype(np.float16)}


def _check_layout_backend(layout: str, backend: str) -> None:
    if layout not in ("nk", "kn"):
        raise ValueError(f"layout must be 'nk' (out_features, in_features) or 'kn' (in_features, "
                         f"out_features), got {layout!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")


class _Quant:
    """How a weight-quantized Linear's integer weight maps back to floats (ukernels/quantize.py):
    scales (N,) per channel or (N, G) per group, optional zero points of the same shape."""

    __slots__ = ("bits", "group_size", "scales", "zero_points")

    def __init__(self, bits: int, group_size: Optional[int], scales: np.ndarray, zero_points: Optional[np.ndarray]):
        self.bits, self.group_size = bits, group_size
        self.scales = np.ascontiguousarray(scales, dtype=np.float32)
        self.zero_points = None if zero_points is None else np.ascontiguousarray(zero_points, dtype=np.int32)
        self.scales.setflags(write=False)

    def stored_weight(self, q_nk: np.ndarray, layout: str) -> np.ndarray:
        """q (int8 values) as the Linear keeps it: in the given layout; int4 as ml_dtypes.int4."""
        q = q_nk if layout == "nk" else q_nk.T
        return np.ascontiguousarray(q.astype(_INT4) if self.bits == 4 else q.astype(np.int8))

    def group_scales_packed(self, N0: int) -> Optional[np.ndarray]:
        """Per-group scales laid out [N1][G][N0] for the ukernel (columns past N: 0)."""
        if self.group_size is None:
            return None
        N, G = self.scales.shape
        N1 = -(-N // N0)
        padded = np.zeros((N1 * N0, G), np.float32)
        padded[:N] = self.scales
        out = np.ascontiguousarray(padded.reshape(N1, N0, G).transpose(0, 2, 1))
        out.setflags(write=False)
        return out

    def correction(self, qx: np.ndarray, sx: np.ndarray) -> Optional[np.ndarray]:
        """The zero-point term sx[i] * sum_g s[j,g] z[j,g] sum_{k in g} qx[i,k] (subtracted), or None."""
        if self.zero_points is None:
            return None
        M, K = qx.shape
        g = self.group_size or max(K, 1)
        rows = qx.reshape(M, K // g, g).sum(axis=2, dtype=np.int64).astype(np.float64) if K else np.zeros((M, 1))
        sz = (self.scales.astype(np.float64) * self.zero_points).reshape(self.scales.shape[0], -1)
        return np.ascontiguousarray((-(sx.astype(np.float64)[:, None]) * (rows @ sz.T)).astype(np.float32))


def _packed_tile(types, isa: str, lhs_symmetric: bool = False) -> Tuple[int, int]:
    from ukernels.runtime.dispatch import lhs_flags
    from ukernels.runtime.plan import ukernel_tile
    _, N0, K0 = ukernel_tile(types, isa, 1 << 20, lhs_flags(types, lhs_symmetric))
    return N0, K0


class Linear:
    """y = epilogue(x @ W) with W packed once at construction.

    Args:
        weight: 2-D float32, float16, bfloat16 (ml_dtypes), int8, int16 or int4
            (``ml_dtypes.int4``: packed two per byte, int8 activations).
            ``layout="nk"`` (default, PyTorch's ``(out_features, in_features)``) or
            ``"kn"`` (numpy's ``(K, N)``, ``x @ weight``). Any strides; it is copied
            into the packed layout. Activations ``x`` have the weight's dtype, or
            uint8 for int8 weights.
        bias: 1-D of length out_features (float32; int32 for integer weights).
        activation: None, "relu" or "gelu" (shorthands, applied after bias).
        epilogue: more ops from ``ukernels.ops`` (not M-dependent: no row bias or
            Residual here -- pass those per call).
        layout: "nk" or "kn".
        backend: "auto", "ukernel" or "codegen" (as for ``matmul``).
        fusion: "auto", "tile" or "register": where the epilogue runs (as for ``matmul``;
            "register" needs generated kernels, so not ``backend="ukernel"`` nor group-quantized
            weights).
        precision: None, ``"bf16"`` (a floating weight is rounded to bfloat16 once,
            here, and every ``x`` per call: the bf16 kernels, float32 results) or
            ``"f32"`` (floating weights and inputs of any width computed in float32).
        weight_dtype: None (the weight's own dtype), ``"f32"``, ``"bf16"``, ``"f16"`` (the
            floating weight stored in that type, every x converted to it per call) or
            ``"int8"`` / ``"int4"`` (quantized here, symmetric, per output channel or per
            ``group_size`` group; x quantized per row to int8 per call; float32 result; see
            ukernels/quantize.py and the README's "Weight-quantized Linear").
        group_size: None (per-channel scales) or 32, 64, 128, 256 (dividing in_features),
            for ``weight_dtype="int8"`` / ``"int4"``. Weights quantized elsewhere (GPTQ,
            AWQ, llama.cpp blocks): ``Linear.from_quantized``.

    Calling it with x of shape (..., in_features) packs only x and runs the
    dispatch; per-call ops (e.g. ``Residual``) go in ``epilogue=``. Thread safe:
    the packed weight is read-only and every call has its own workspace.
    """

    def __init__(self, weight, bias=None, activation: Optional[str] = None,
                 epilogue: Sequence[O.EpilogueOp] = (), layout: str = "nk", backend: str = "auto",
                 precision: Optional[str] = None, weight_dtype: Optional[str] = None,
                 group_size: Optional[int] = None, fusion: str = "auto"):
        _check_layout_backend(layout, backend)
        check_fusion(fusion, backend, weight_dtype is not None and group_size is not None)
        w = np.asarray(weight)
        if not w.dtype.isnative:
            w = w.astype(w.dtype.newbyteorder("="))  # big-endian weights: byte order only, lossless
        if w.ndim != 2:
            raise ValueError(f"weight must be 2-D, got shape {w.shape}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if weight_dtype not in WEIGHT_DTYPES:
            raise ValueError(f"weight_dtype must be one of {list(WEIGHT_DTYPES)}, got {weight_dtype!r}")
        if group_size is not None and weight_dtype not in ("int8", "int4"):
            raise ValueError("group_size applies to weight_dtype='int8' or 'int4' (per-group scales)")
        if weight_dtype is not None and precision is not None:
            raise ValueError("pass weight_dtype or precision, not both (weight_dtype='bf16' already runs the "
                             "bf16 kernels on bf16-rounded inputs)")
        if weight_dtype is not None and not is_float_dtype(w.dtype):
            raise TypeError(f"weight_dtype={weight_dtype!r} converts a floating weight, got dtype {w.dtype}; "
                            "for weights quantized elsewhere use Linear.from_quantized(qweight, scales, ...)")
        quant = None
        if weight_dtype in ("int8", "int4"):
            bits = 8 if weight_dtype == "int8" else 4
            w_nk = w if layout == "nk" else w.T
            check_group_size(group_size, w_nk.shape[1])
            q, scales = quantize_weight(w_nk, bits, group_size)
            quant = _Quant(bits, group_size, scales, None)
            w = quant.stored_weight(q, layout)
        elif weight_dtype is not None:
            w = w.astype(_FLOAT_WEIGHTS[weight_dtype])
        else:
            w = apply_precision("weight", w, precision)
        self._setup(w, bias, activation, epilogue, layout, backend, precision, weight_dtype, quant, fusion)

    @classmethod
    def from_quantized(cls, qweight, scales, zero_points=None, *, group_size: Optional[int] = None, bits: int = 8,
                       layout: str = "nk", bias=None, activation: Optional[str] = None,
                       epilogue: Sequence[O.EpilogueOp] = (), backend: str = "auto",
                       fusion: str = "auto") -> "Linear":
        """A weight-quantized Linear from weights quantized elsewhere.

        The weight is ``W[n, k] = scales[n, g] * (qweight[n, k] - zero_points[n, g])`` with
        ``g = k // group_size`` (``layout="nk"``; ``"kn"`` transposes qweight, scales and
        zero_points alike), or per output channel (``group_size=None``: scales and
        zero_points of shape (N,)).

        Args:
            qweight: integers, (N, K) for "nk". Signed: int8 in [-128, 127] (bits=8) or
                [-8, 7] (bits=4; int8 or ``ml_dtypes.int4``). Unsigned (uint8): [0, 255] or
                [0, 15], then ``zero_points`` is required (GPTQ/AWQ style); they are stored
                shifted by 2**(bits-1) into the signed range, which changes nothing.
            scales: float, (N,) or (N, K // group_size).
            zero_points: None (symmetric) or integers shaped like scales.
            group_size: None or one of 32, 64, 128, 256 (dividing K).
            bits: 8 or 4.
        See the README ("Weight-quantized Linear") for converting GPTQ/AWQ and llama.cpp
        Q4_0/Q8_0 blocks.
        """
        _check_layout_backend(layout, backend)
        check_fusion(fusion, backend, group_size is not None)
        if bits not in QMAX:
            raise ValueError(f"bits must be 8 or 4, got {bits!r}")
        q = np.asarray(qweight)
        if q.ndim != 2:
            raise ValueError(f"qweight must be 2-D, got shape {q.shape}")
        if q.dtype == _INT4:
            q = q.astype(np.int8)
        if q.dtype.kind not in "iu":
            raise TypeError(f"qweight must hold integers, got dtype {q.dtype}")
        q_nk = q if layout == "nk" else q.T
        N, K = q_nk.shape
        check_group_size(group_size, K)
        G = None if group_size is None else K // group_size

        def oriented(name: str, v, kind: str) -> np.ndarray:
            a = np.asarray(v)
            want = (N,) if G is None else (N, G)
            a = a.T if (layout == "kn" and a.ndim == 2) else a
            if a.shape != want:
                shown = want if layout == "nk" or G is None else (G, N)
                raise ValueError(f"{name} must have shape {shown} (one per output channel{'' if G is None else ' and group'}"
                                 f" for qweight {q.shape}, layout={layout!r}, group_size={group_size}), got "
                                 f"{np.asarray(v).shape}")
            if a.dtype.kind not in kind:
                raise TypeError(f"{name} must be {'floating' if kind == 'f' else 'integer'}, got dtype {a.dtype}")
            return a

        s = oriented("scales", scales, "f").astype(np.float32)
        if not np.isfinite(s).all():
            raise ValueError("scales must be finite")
        z = None if zero_points is None else oriented("zero_points", zero_points, "iu").astype(np.int32)
        half = 1 << (bits - 1)
        lo, hi = (0, 2 * half - 1) if q.dtype.kind == "u" else (-half, half - 1)
        if q.dtype.kind == "u" and z is None:
            raise ValueError(f"an unsigned qweight needs zero_points (e.g. {half} for a symmetric range)")
        if q_nk.size and (q_nk.min() < lo or q_nk.max() > hi):
            raise ValueError(f"qweight values must lie in [{lo}, {hi}] for bits={bits} ({q.dtype}), got "
                             f"[{q_nk.min()}, {q_nk.max()}]")
        q_nk = q_nk.astype(np.int16)
        if q.dtype.kind == "u":
            q_nk, z = q_nk - half, z - half
        if z is not None and (z.min(initial=0) < -(1 << 15) or z.max(initial=0) >= (1 << 15)):
            raise ValueError("zero_points out of range")
        quant = _Quant(bits, group_size, s, z)
        obj = cls.__new__(cls)
        obj._setup(quant.stored_weight(q_nk.astype(np.int8), layout), bias, activation, epilogue, layout, backend,
                   None, "int8" if bits == 8 else "int4", quant, fusion)
        return obj

    def _setup(self, w: np.ndarray, bias, activation, epilogue, layout: str, backend: str,
               precision: Optional[str], weight_dtype: Optional[str], quant: Optional["_Quant"],
               fusion: str = "auto") -> None:
        if quant is not None:
            types = S8S8S32 if quant.bits == 8 else S8S4S32
        else:
            types = element_types_for(w.dtype, w.dtype) or next(
                (t for t in ELEMENT_TYPES.values() if t.rhs == w.dtype), None)  # int4 weights: int8 activations
        if types is None:
            raise TypeError(f"weight has unsupported dtype {w.dtype}; supported: {supported_combinations()}")
        if not isinstance(epilogue, (list, tuple)):
            raise TypeError(f"epilogue must be a list or tuple of ukernels.ops objects, got {type(epilogue).__name__}")
        for i, op in enumerate(epilogue):
            if isinstance(op, O.Residual) or (isinstance(op, O.BiasAdd) and op.axis == "row") or (
                    isinstance(op, O.Scale) and op.axis == "row"):
                raise ValueError(f"epilogue[{i}] ({type(op).__name__}) depends on the number of rows; "
                                 "pass it per call: linear(x, epilogue=[...])")
        self._types = types  # with activations of the weight's dtype (uint8 x int8 also accepted)
        self._precision = precision
        self._weight_dtype = weight_dtype
        self._quant = quant
        self._layout = layout
        self._backend = backend
        self._fusion = fusion
        # private read-only copies: the caller may change its arrays; this operator (its packed
        # weight, a later repack for another tile, save()) never sees that
        w = np.array(w, copy=True)
        w.setflags(write=False)
        if bias is not None and isinstance(bias, np.ndarray):
            bias = bias.copy()
            bias.setflags(write=False)
        epilogue = tuple(_owned(op) for op in epilogue)
        self._weight = w  # kept for save() and repacking
        self.in_features, self.out_features = (w.shape[1], w.shape[0]) if layout == "nk" else w.shape
        self._shorthand = (bias, activation, tuple(epilogue))
        build_epilogue(self._epilogue_types(), 1, self.out_features, bias, activation, list(epilogue), None,
                       self._dequantize_ops(np.zeros(1, np.float32), None))  # validate now
        self._lock = ForkSafeLock()
        # the one-call path of a weight-quantized layer (runtime/decode.py): built below, in place
        # of the general pack (which a call that needs the general path makes then)
        self._decode: Optional[DecodePlan] = None
        self._decode_ok = (quant is not None and quant.zero_points is None and backend != "codegen"
                           and fusion != "register")
        self._packs: Dict[Tuple[int, int], PackedRhs] = {}
        self._replays: Dict[tuple, tuple] = {}  # recorded small calls (runtime/dispatch.py: run_small)
        self._token = uuid.uuid4().hex  # Dask's name for this (immutable) operator
        if self._decode_ok:
            self._decode_plan()  # its calls take runtime/decode.py's path; the general pack is made if needed
        else:
            self._packed_for(cpu.active_isa())

    def _epilogue_types(self):
        """The triple the epilogue starts from: group-scaled products are float already."""
        return F32F32F32 if self._quant is not None and self._quant.group_size is not None else self._types

    def _dequantize_ops(self, sx: np.ndarray, correction: Optional[np.ndarray]) -> List[O.EpilogueOp]:
        """The ops that turn the integer products of quantized x and W into floats."""
        if self._quant is None:
            return []
        ops: List[O.EpilogueOp] = []
        if self._quant.group_size is None:
            ops.append(O.Scale(self._quant.scales))
        ops.append(O.Scale(sx, axis="row"))
        if correction is not None:
            ops.append(O.Residual(correction))
        return ops

    def _packed_for(self, isa: str, types=None) -> PackedRhs:
        # a quantized Linear's x is quantized here, symmetric (no -128): its tiles may rely on that
        N0, K0 = _packed_tile(types or self._types, isa, self._quant is not None)
        return self._pack_for_tile(isa, N0, K0)

    def _pack_for_tile(self, isa: str, N0: int, K0: int) -> PackedRhs:
        """The weight packed for N0 x K0 tiles (once per tile shape; read-only)."""
        p = self._packs.get((N0, K0))
        if p is None:
            with self._lock:
                p = self._packs.get((N0, K0))
                if p is None:
                    kn = self._weight.T if self._layout == "nk" else self._weight
                    data = pack(kn, N0, K0, transpose_inner=True, transpose_outer=True, isa=isa)
                    data.setflags(write=False)
                    q = self._quant
                    p = PackedRhs(data, self.out_features, self.in_features, N0, K0,
                                  q.group_scales_packed(N0) if q is not None else None,
                                  (q.group_size or 0) if q is not None else 0)
                    self._packs[(N0, K0)] = p
        return p

    @property
    def weight(self) -> np.ndarray:
        """The weight as given (in its layout; a quantized one: its integers, with ``scales``),
        read-only (the packed copy is what calls use; change weights by building a new Linear)."""
        w = self._weight.view()
        w.setflags(write=False)
        return w

    @property
    def bias(self) -> Optional[np.ndarray]:
        """The bias given at construction (read-only), or None."""
        b = self._shorthand[0]
        if b is None:
            return None
        b = np.asarray(b).view()
        b.setflags(write=False)
        return b

    @property
    def scales(self) -> Optional[np.ndarray]:
        """A quantized weight's scales ((N,) per channel or (N, G) per group; read-only), else None."""
        return None if self._quant is None else self._quant.scales

    @property
    def packed_nbytes(self) -> int:
        """Bytes of the packed weight for the active ISA (padding included)."""
        return self._packed_for(cpu.active_isa()).data.nbytes

    @property
    def dtype(self) -> np.dtype:
        return self._types.lhs

    def __repr__(self) -> str:
        bias, activation, ops = self._shorthand
        names = [type(o).__name__ for o in shorthand_ops(bias, activation) + list(ops)]
        prec = f", precision={self._precision!r}" if self._precision else ""
        if self._weight_dtype is not None:
            prec += f", weight_dtype={self._weight_dtype!r}"
        if self._quant is not None:
            prec += f", group_size={self._quant.group_size}" + (", zero_points" if self._quant.zero_points is not None
                                                                else "")
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}, "
                f"ops=[{', '.join(names)}], backend={self._backend!r}{prec})")

    def __call__(self, x, *, epilogue: Sequence[O.EpilogueOp] = (), out_dtype=None) -> np.ndarray:
        """epilogue(x @ W) for x of shape (..., in_features); the result has shape (..., out_features)."""
        if self._decode_ok and not epilogue and out_dtype is None and type(x) is np.ndarray and x.dtype == _F32:
            res = self._decode_call(x)
            if res is not None:
                return res
        if (type(x) is np.ndarray and x.ndim > 2 and not epilogue and x.flags.c_contiguous
                and x.shape[-1] == self.in_features > 0):
            # (..., K) as (rows, K): a view, so the 2-D call below may replay (PyTorch passes (B, T, K))
            lead = x.shape[:-1]
            return self(x.reshape(-1, self.in_features), out_dtype=out_dtype).reshape(*lead, self.out_features)
        # a bf16 weight and a float32 x: x rounded to bf16 while it is packed (in C, as astype would:
        # to nearest even), where the CPU has bf16 dot products -- no converted copy, and replayable
        narrow = None
        if (self._weight_dtype == "bf16" and type(x) is np.ndarray and x.dtype == _F32 and self._backend != "codegen"
                and self._fusion != "register" and native_16bit_float_dot(BF16BF16F32, cpu.active_isa())):
            narrow = BF16BF16F32
        small_key = None
        if (type(x) is np.ndarray and x.ndim == 2 and not epilogue and out_dtype is None and self._quant is None
                and self._precision is None and (self._weight_dtype is None or narrow is not None)):
            small_key = small_call_key(x, None)  # a plain call: replayed if one like it ran before
            if small_key is not None:
                res = run_small(small_key, x, None, self._replays)
                if res is not None:
                    return res
        from ukernels.matmul import _as_operand  # (here, not above: the replay path skips the import)
        x_in = x
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., in_features={self.in_features}), got {x.shape}")
        x = apply_precision("x", x, self._precision)
        if self._weight_dtype is not None and narrow is None:
            if not is_float_dtype(x.dtype):
                raise TypeError(f"x must be floating point for this Linear (weight_dtype={self._weight_dtype!r}), "
                                f"got {x.dtype}")
            x = x.astype(np.float32 if self._quant is not None else self._types.lhs, copy=False)
        types = self._types if self._quant is not None else F32F32F32 if narrow is not None else element_types_for(
            x.dtype, self._types.rhs)
        if types is None:
            accepted = [t.lhs.name for t in ELEMENT_TYPES.values() if t.rhs == self._types.rhs]
            raise TypeError(f"x must have dtype {' or '.join(accepted)} for this Linear with {self._types.rhs} "
                            f"weights, got {x.dtype}")
        lead = x.shape[:-1]
        rows = 1
        for n in lead:
            rows *= n
        x2 = _as_operand("x", x if x.ndim == 2 else x.reshape(rows, self.in_features))  # not -1: in_features may be 0
        if not isinstance(epilogue, (list, tuple)):
            raise TypeError(f"epilogue must be a list or tuple of ukernels.ops objects, got {type(epilogue).__name__}")
        epilogue = [_rows_of(op, lead, self.out_features) for op in epilogue]
        bias, activation, ops = self._shorthand
        prefix: List[O.EpilogueOp] = []
        if self._quant is not None:  # x quantized per row; the products dequantized in the epilogue
            x2, sx = quantize_rows(x2)
            prefix = self._dequantize_ops(sx, self._quant.correction(x2, sx))
        lowered = build_epilogue(self._epilogue_types(), x2.shape[0], self.out_features, bias, activation,
                                 list(ops) + list(epilogue), out_dtype, prefix)
        isa = cpu.active_isa()
        if x2 is not x_in:
            small_key = None  # reshaped or copied for the C side: not replayable
        out = run_matmul(x2, None, types, lowered, isa, self._backend, packed=_Provider(self, isa),
                         small_key=small_key, small_table=self._replays, lhs_symmetric=self._quant is not None,
                         fusion=self._fusion, narrow_to=narrow)
        return out.reshape(*lead, self.out_features)

    def _decode_call(self, x: np.ndarray) -> Optional[np.ndarray]:
        """The layer on a C-contiguous float32 x in one C call (runtime/decode.py: decode-sized
        and prompt-sized x alike), or None when x is not such an operand (the general path then
        runs, with the same results)."""
        K = self.in_features
        if x.ndim == 0 or x.shape[-1] != K or not x.flags.c_contiguous or not x.flags.aligned:
            return None
        rows = x.size // K if K else int(np.prod(x.shape[:-1]))
        out = np.empty(x.shape[:-1] + (self.out_features,), np.float32)
        if rows and self.out_features:
            plan = self._decode
            if plan is None:
                plan = self._decode_plan()
            plan.run(x.reshape(rows, K), out.reshape(rows, self.out_features), cpu.active_isa())
        return out

    def _decode_plan(self) -> DecodePlan:
        with self._lock:
            if self._decode is None:
                q = self._quant
                w = self._weight.astype(np.int8) if self._weight.dtype == _INT4 else self._weight
                q_nk = w if self._layout == "nk" else w.T
                bias, activation, ops = self._shorthand
                lowered = build_epilogue(F32F32F32, 1, self.out_features, bias, activation, list(ops), None)
                self._decode = DecodePlan(q_nk, q.bits, q.group_size, q.scales, to_c(lowered.ops))
        return self._decode

    def map_blocks(self, x, *, threads: Optional[int] = None):
        """``self(x)`` over the row chunks of a dask array (``ukernels.dask.linear``; needs the
        ``dask`` extra). The operator travels to each distributed worker once and is packed
        there once per worker process."""
        from ukernels.dask import linear
        return linear(self, x, threads=threads)

    def __dask_tokenize__(self) -> str:
        """A token per operator object (its weights are read-only): Dask need not hash them."""
        return self._token

    # ---- pickling (multiprocessing, Dask): the arguments, repacked on arrival -------

    def __getstate__(self) -> Dict[str, Any]:
        bias, activation, ops = self._shorthand
        q = self._quant
        return {"weight": self._weight, "bias": bias, "activation": activation, "epilogue": list(ops),
                "layout": self._layout, "backend": self._backend, "precision": self._precision,
                "weight_dtype": self._weight_dtype, "fusion": self._fusion,
                "quant": None if q is None else (q.bits, q.group_size, q.scales, q.zero_points)}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state = dict(state)
        quant = state.pop("quant", None)
        weight_dtype = state.pop("weight_dtype", None)
        state.setdefault("fusion", "auto")
        if quant is None:
            self.__init__(**state, weight_dtype=weight_dtype)
        else:
            self._setup(state["weight"], state["bias"], state["activation"], state["epilogue"], state["layout"],
                        state["backend"], None, weight_dtype, _Quant(*quant), state["fusion"])

    # ---- persistence ---------------------------------------------------------

    def save(self, file: Union[str, os.PathLike, BinaryIO]) -> None:
        """Write the operator to ``file``: a path (written atomically: a temporary
        file renamed into place) or a binary file object. Format in the module doc."""
        blob = linear_file.serialize(self)
        if hasattr(file, "write"):
            file.write(blob)
            return
        path = os.fspath(file)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, file: Union[str, os.PathLike, BinaryIO]) -> "Linear":
        """Read an operator written by ``save`` from a path or a binary file object
        (validated; see the module doc). Raises ValueError naming what is wrong."""
        return linear_file.load(cls, file)

def _owned(op: O.EpilogueOp) -> O.EpilogueOp:
    """op with private read-only copies of its array operands (a prepared Linear keeps them)."""
    arrays = {}
    for f in dc_fields(op):
        v = getattr(op, f.name)
        if isinstance(v, np.ndarray):
            v = v.copy()
            v.setflags(write=False)
            arrays[f.name] = v
    return dc_replace(op, **arrays) if arrays else op


def _rows_of(op: O.EpilogueOp, lead: Tuple[int, ...], N: int) -> O.EpilogueOp:
    """A per-call op shaped like the output (leading dimensions of x) as the 2-D call sees it:
    a Residual (*lead, N) as (rows, N); a row BiasAdd / Scale (*lead,) as (rows,)."""
    if len(lead) == 1:
        return op
    rows = int(np.prod(lead, dtype=np.int64))
    if isinstance(op, O.Residual) and np.shape(op.residual) == tuple(lead) + (N,):
        return dc_replace(op, residual=np.asarray(op.residual).reshape(rows, N))
    if isinstance(op, O.BiasAdd) and op.axis == "row" and np.shape(op.bias) == tuple(lead):
        return dc_replace(op, bias=np.asarray(op.bias).reshape(rows))
    if isinstance(op, O.Scale) and op.axis == "row" and np.shape(op.scale) == tuple(lead):
        return dc_replace(op, scale=np.asarray(op.scale).reshape(rows))
    return op


class _Provider:
    """The weight packed for whichever tile the resolved backend uses (run_matmul asks)."""

    __slots__ = ("lin", "isa", "N", "K", "group_size")

    def __init__(self, lin: "Linear", isa: str):
        self.lin, self.isa, self.N, self.K = lin, isa, lin.out_features, lin.in_features
        self.group_size = (lin._quant.group_size or 0) if lin._quant is not None else 0

    def for_tile(self, N0: int, K0: int) -> PackedRhs:
        return self.lin._pack_for_tile(self.isa, N0, K0)
