"""``ukernels.Linear``: a prepared operator whose weight is packed once.

File format of ``Linear.save`` (little-endian)::

    8 bytes   magic b"UKLINEAR"
    4 bytes   uint32 format version (1)
    4 bytes   uint32 length H of the header
    H bytes   UTF-8 JSON header: {"format": "ukernels.Linear", "version": 1,
              "dtype", "layout", "in_features", "out_features", "backend",
              "ops": [{"op": name, "fields": {...}}...],
              "arrays": [{"dtype", "shape", "offset", "nbytes", "sha256"}...]}
    payload   the arrays, C order, at their offsets from the payload start

The weight is stored unpacked (as given), so a file loads on any CPU and is
packed for the loading machine's ISA. ``Linear.load`` checks the magic, the
version, every length against the file size and every array's sha256, and
raises ValueError naming what is wrong (foreign file, truncated, corrupt).
"""
import hashlib
import json
import os
import struct
import tempfile
import threading
from dataclasses import fields as dc_fields
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ukernels import cpu
from ukernels import ops as O
from ukernels.abi import element_types_for
from ukernels.matmul import BACKENDS, SUPPORTED, build_epilogue, shorthand_ops
from ukernels.runtime.dispatch import PackedRhs, run_matmul
from ukernels.runtime.packing import pack

MAGIC = b"UKLINEAR"
VERSION = 1
_PREFIX = struct.Struct("<8sII")


def _packed_tile(types, isa: str) -> Tuple[int, int]:
    from ukernels.runtime.plan import ukernel_tile
    _, N0, K0 = ukernel_tile(types, isa, 1 << 20)
    return N0, K0


class Linear:
    """y = epilogue(x @ W) with W packed once at construction.

    Args:
        weight: 2-D float32 or int8. ``layout="nk"`` (default, PyTorch's
            ``(out_features, in_features)``) or ``"kn"`` (numpy's ``(K, N)``,
            ``x @ weight``). Any strides; it is copied into the packed layout.
        bias: 1-D of length out_features (float32; int32 for int8 weights).
        activation: None, "relu" or "gelu" (shorthands, applied after bias).
        epilogue: more ops from ``ukernels.ops`` (not M-dependent: no row bias or
            Residual here -- pass those per call).
        layout: "nk" or "kn".
        backend: "auto", "ukernel" or "codegen" (as for ``matmul``).

    Calling it with x of shape (..., in_features) packs only x and runs the
    dispatch; per-call ops (e.g. ``Residual``) go in ``epilogue=``. Thread safe:
    the packed weight is read-only and every call has its own workspace.
    """

    def __init__(self, weight, bias=None, activation: Optional[str] = None,
                 epilogue: Sequence[O.EpilogueOp] = (), layout: str = "nk", backend: str = "auto"):
        if layout not in ("nk", "kn"):
            raise ValueError(f"layout must be 'nk' (out_features, in_features) or 'kn' (in_features, "
                             f"out_features), got {layout!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        w = np.asarray(weight)
        if w.ndim != 2:
            raise ValueError(f"weight must be 2-D, got shape {w.shape}")
        types = element_types_for(w.dtype, w.dtype)
        if types is None:
            raise TypeError(f"weight has unsupported dtype {w.dtype}; supported: {SUPPORTED}")
        if not isinstance(epilogue, (list, tuple)):
            raise TypeError(f"epilogue must be a list or tuple of ukernels.ops objects, got {type(epilogue).__name__}")
        for i, op in enumerate(epilogue):
            if isinstance(op, O.Residual) or (isinstance(op, O.BiasAdd) and op.axis == "row"):
                raise ValueError(f"epilogue[{i}] ({type(op).__name__}) depends on the number of rows; "
                                 "pass it per call: linear(x, epilogue=[...])")
        self._types = types
        self._layout = layout
        self._backend = backend
        self._weight = w  # kept (read-only use) for save() and repacking
        self.in_features, self.out_features = (w.shape[1], w.shape[0]) if layout == "nk" else w.shape
        self._shorthand = (bias, activation, tuple(epilogue))
        build_epilogue(types, 1, self.out_features, bias, activation, list(epilogue), None)  # validate now
        self._lock = threading.Lock()
        self._packs: Dict[Tuple[int, int], PackedRhs] = {}
        self._packed_for(cpu.active_isa())

    def _packed_for(self, isa: str) -> PackedRhs:
        N0, K0 = _packed_tile(self._types, isa)
        p = self._packs.get((N0, K0))
        if p is None:
            with self._lock:
                p = self._packs.get((N0, K0))
                if p is None:
                    kn = self._weight.T if self._layout == "nk" else self._weight
                    data = pack(kn, N0, K0, transpose_inner=True, transpose_outer=True, isa=isa)
                    data.setflags(write=False)
                    p = PackedRhs(data, self.out_features, self.in_features, N0, K0)
                    self._packs[(N0, K0)] = p
        return p

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
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}, "
                f"ops=[{', '.join(names)}], backend={self._backend!r})")

    def __call__(self, x, *, epilogue: Sequence[O.EpilogueOp] = (), out_dtype=None) -> np.ndarray:
        """epilogue(x @ W) for x of shape (..., in_features); the result has shape (..., out_features)."""
        from ukernels.matmul import _as_operand
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., in_features={self.in_features}), got {x.shape}")
        if x.dtype != self._types.lhs:
            raise TypeError(f"x must have dtype {self._types.lhs} for this {self._types.lhs} Linear, got {x.dtype}")
        lead = x.shape[:-1]
        x2 = _as_operand("x", x.reshape(-1, self.in_features))
        if not isinstance(epilogue, (list, tuple)):
            raise TypeError(f"epilogue must be a list or tuple of ukernels.ops objects, got {type(epilogue).__name__}")
        bias, activation, ops = self._shorthand
        lowered = build_epilogue(self._types, x2.shape[0], self.out_features, bias, activation,
                                 list(ops) + list(epilogue), out_dtype)
        isa = cpu.active_isa()
        out = run_matmul(x2, None, self._types, lowered, isa, self._backend, packed=self._packed_for(isa))
        return out.reshape(*lead, self.out_features)

    # ---- persistence ---------------------------------------------------------

    def save(self, path) -> None:
        """Write the operator to ``path`` (format in the module doc), atomically."""
        arrays: List[np.ndarray] = [np.ascontiguousarray(self._weight)]
        bias, activation, ops = self._shorthand

        def encode(value) -> Any:
            if isinstance(value, (type, np.dtype)):
                return {"dtype": np.dtype(value).name}
            if value is None or isinstance(value, (str, bool, int, float)):
                return value
            if isinstance(value, (np.floating, np.integer)):
                return value.item()
            arrays.append(np.ascontiguousarray(np.asarray(value)))
            return {"array": len(arrays) - 1}

        op_docs = [{"op": type(op).__name__, "fields": {f.name: encode(getattr(op, f.name)) for f in dc_fields(op)}}
                   for op in ops]
        header: Dict[str, Any] = {
            "format": "ukernels.Linear", "version": VERSION, "dtype": self._types.lhs.name, "layout": self._layout,
            "in_features": self.in_features, "out_features": self.out_features, "backend": self._backend,
            "bias": None if bias is None else encode(bias), "activation": activation, "ops": op_docs,
        }
        offset = 0
        metas = []
        for arr in arrays:
            raw = arr.tobytes()
            metas.append({"dtype": arr.dtype.str, "shape": list(arr.shape), "offset": offset, "nbytes": len(raw),
                          "sha256": hashlib.sha256(raw).hexdigest()})
            offset += len(raw)
        header["arrays"] = metas
        blob = json.dumps(header).encode()
        path = os.fspath(path)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(path)))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_PREFIX.pack(MAGIC, VERSION, len(blob)))
                f.write(blob)
                for arr in arrays:
                    f.write(arr.tobytes())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path) -> "Linear":
        """Read an operator written by ``save`` (validated; see the module doc)."""
        path = os.fspath(path)
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < _PREFIX.size:
            raise ValueError(f"{path}: not a ukernels Linear file (too short: {len(data)} bytes)")
        magic, version, hlen = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise ValueError(f"{path}: not a ukernels Linear file (bad magic {magic!r})")
        if version != VERSION:
            raise ValueError(f"{path}: unsupported ukernels Linear format version {version} (this build reads {VERSION})")
        start = _PREFIX.size + hlen
        if start > len(data):
            raise ValueError(f"{path}: truncated (header needs {hlen} bytes, file has {len(data) - _PREFIX.size})")
        try:
            header = json.loads(data[_PREFIX.size:start].decode())
            if header.get("format") != "ukernels.Linear":
                raise ValueError("not a ukernels.Linear header")
            arrays = []
            for i, meta in enumerate(header["arrays"]):
                lo, n = start + meta["offset"], meta["nbytes"]
                if lo + n > len(data):
                    raise ValueError(f"truncated: array {i} needs bytes {lo}..{lo + n}, file has {len(data)}")
                raw = data[lo:lo + n]
                if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
                    raise ValueError(f"array {i} is corrupt (sha256 mismatch)")
                arrays.append(np.frombuffer(raw, dtype=np.dtype(meta["dtype"])).reshape(meta["shape"]).copy())

            def decode(value):
                if isinstance(value, dict) and "array" in value:
                    return arrays[value["array"]]
                if isinstance(value, dict) and "dtype" in value:
                    return np.dtype(value["dtype"]).type
                return value

            ops = [getattr(O, d["op"])(**{k: decode(v) for k, v in d["fields"].items()}) for d in header["ops"]]
            bias = decode(header["bias"])
            return cls(arrays[0], bias=bias, activation=header["activation"], epilogue=ops,
                       layout=header["layout"], backend=header["backend"])
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: malformed ukernels Linear file ({type(exc).__name__}: {exc})") from None
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
