"""The file format of ``ukernels.Linear.save`` and its validating reader (``Linear.load``).

File format of ``Linear.save`` (little-endian), version 3::

    8 bytes   magic b"UKLINEAR"
    4 bytes   uint32 format version (3)
    4 bytes   uint32 length H of the header (at most 16 MiB)
    32 bytes  sha256 of the H header bytes
    H bytes   UTF-8 JSON header: {"format": "ukernels.Linear", "version": 3,
              "dtype", "layout", "in_features", "out_features", "backend", "fusion" (optional:
              "auto" when absent),
              "bias", "activation", "ops": [{"op": name, "fields": {...}}...],
              "weight_dtype": null | "f32" | "bf16" | "f16" | "int8" | "int4",
              "quant": null | {"bits": 8 | 4, "group_size": null | int,
                               "scales": {"array": i}, "zero_points": null | {"array": j}},
              "arrays": [{"dtype", "shape", "offset", "nbytes", "sha256"}...]}
    payload   the arrays, C order, one after another (offsets 0, nbytes0, ...)

Array 0 is the weight (a quantized one: its signed integers, int4 as ml_dtypes.int4); scales
and zero points are (N,) or (N, G), output channels first whatever the layout. Version 2
files (no weight_dtype / quant) and version 1 files (no header digest) still load.
The weight is stored unpacked (as given), so a file loads on any CPU and is
packed for the loading machine's ISA. ``Linear.load`` reads the magic from the
first 8 bytes (a foreign file costs 8 bytes of reading), bounds the header,
checks its digest, validates every field and every array's dtype, shape, size
and sha256, reads arrays in bounded chunks (a lying length costs no memory up
front), and raises ValueError naming what is wrong (foreign file, truncated,
corrupt, malformed) -- never another exception type.
"""
import hashlib
import json
import os
import struct
from dataclasses import fields as dc_fields, is_dataclass
from typing import Any, BinaryIO, Dict, List, Union

import ml_dtypes
import numpy as np

from ukernels import ops as O
from ukernels._untrusted import MAX_JSON_BYTES, UntrustedFileError, open_regular, parse_json, read_bounded
from ukernels.matmul import BACKENDS, PRECISIONS
from ukernels.runtime.fusion import FUSIONS
from ukernels.quantize import QMAX

MAGIC = b"UKLINEAR"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
_PREFIX = struct.Struct("<8sII")
_DIGEST_BYTES = 32
_ARRAY_KINDS = "fiub"  # numeric arrays only (weights, biases, scales); never objects
_BF16 = np.dtype(ml_dtypes.bfloat16)
_INT4 = np.dtype(ml_dtypes.int4)
_WEIGHT_DTYPES = {"float32": np.dtype(np.float32), "int8": np.dtype(np.int8), "float16": np.dtype(np.float16),
                  "bfloat16": _BF16, "int16": np.dtype(np.int16), "int4": _INT4}
_NAMED_DTYPES = {"bfloat16": _BF16, "int4": _INT4}  # ml_dtypes types, stored by name (their .str is a void)
WEIGHT_DTYPES = (None, "f32", "bf16", "f16", "int8", "int4")  # Linear's weight_dtype values (header field)


def _dtype_name(dt: np.dtype) -> str:
    return next((n for n, d in _NAMED_DTYPES.items() if d == dt), dt.name)


def serialize(lin) -> bytes:
    """The bytes of ``lin`` in the format above."""
    arrays: List[np.ndarray] = [np.ascontiguousarray(lin._weight)]
    bias, activation, ops = lin._shorthand

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
    q = lin._quant
    header: Dict[str, Any] = {
        "format": "ukernels.Linear", "version": VERSION, "dtype": _dtype_name(lin._types.rhs),
        "precision": lin._precision, "layout": lin._layout,
        "in_features": lin.in_features, "out_features": lin.out_features, "backend": lin._backend,
        "fusion": lin._fusion,
        "bias": None if bias is None else encode(bias), "activation": activation, "ops": op_docs,
        "weight_dtype": lin._weight_dtype,
        "quant": None if q is None else {
            "bits": q.bits, "group_size": q.group_size, "scales": encode(q.scales),
            "zero_points": None if q.zero_points is None else encode(q.zero_points)},
    }
    offset = 0
    metas = []
    payload = []
    for arr in arrays:
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        raw = arr.tobytes()
        metas.append({"dtype": _dtype_name(arr.dtype) if arr.dtype in _NAMED_DTYPES.values() else arr.dtype.str,
                      "shape": list(arr.shape), "offset": offset, "nbytes": len(raw),
                      "sha256": hashlib.sha256(raw).hexdigest()})
        payload.append(raw)
        offset += len(raw)
    header["arrays"] = metas
    blob = json.dumps(header).encode()
    return b"".join([_PREFIX.pack(MAGIC, VERSION, len(blob)), hashlib.sha256(blob).digest(), blob, *payload])


def load(cls, file: Union[str, os.PathLike, BinaryIO]):
    """``cls.load``: a Linear read from a path or a binary file object (validated; see the module
    doc). Raises ValueError naming what is wrong."""
    if hasattr(file, "read"):
        name = getattr(file, "name", None)
        return _read(cls, file, str(name) if isinstance(name, (str, os.PathLike)) else "<file object>")
    path = os.fspath(file)
    try:
        f = open_regular(path)
    except UntrustedFileError as exc:
        raise ValueError(str(exc)) from None
    with f:
        return _read(cls, f, path)


def _read(cls, f: BinaryIO, what: str):
    try:
        return _read_checked(cls, f, what)
    except UntrustedFileError as exc:
        raise ValueError(str(exc)) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError,
            MemoryError) as exc:
        raise ValueError(f"{what}: malformed ukernels Linear file ({type(exc).__name__}: {exc})") from None

def _read_checked(cls, f: BinaryIO, what: str):
    magic = f.read(len(MAGIC))
    if not isinstance(magic, bytes):
        raise UntrustedFileError(f"{what}: not a binary file object")
    if len(magic) < len(MAGIC):
        raise UntrustedFileError(f"{what}: not a ukernels Linear file (too short: {len(magic)} bytes)")
    if magic != MAGIC:
        raise UntrustedFileError(f"{what}: not a ukernels Linear file (bad magic {magic!r})")
    rest = f.read(_PREFIX.size - len(MAGIC))
    if len(rest) < _PREFIX.size - len(MAGIC):
        raise UntrustedFileError(f"{what}: not a ukernels Linear file (too short)")
    _, version, hlen = _PREFIX.unpack(magic + rest)
    if version not in READABLE_VERSIONS:
        raise UntrustedFileError(f"{what}: unsupported ukernels Linear format version {version} "
                                 f"(this build reads {', '.join(map(str, READABLE_VERSIONS))})")
    if hlen > MAX_JSON_BYTES:
        raise UntrustedFileError(f"{what}: header length {hlen} exceeds the {MAX_JSON_BYTES}-byte limit (corrupt)")
    digest = read_bounded(f, _DIGEST_BYTES, what) if version >= 2 else None
    blob = read_bounded(f, hlen, f"{what} (header)")
    if digest is not None and hashlib.sha256(blob).digest() != digest:
        raise UntrustedFileError(f"{what}: header is corrupt (sha256 mismatch)")
    header = parse_json(blob, f"{what} (header)")
    h = _Header(header, version, what)
    arrays = []
    for i, meta in enumerate(h.arrays):
        raw = read_bounded(f, meta["nbytes"], f"{what}: array {i}")
        if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
            raise UntrustedFileError(f"{what}: array {i} is corrupt (sha256 mismatch)")
        arrays.append(np.frombuffer(raw, dtype=meta["dtype"]).reshape(meta["shape"]).copy())

    def decode(value):
        if isinstance(value, dict) and set(value) == {"array"}:
            idx = value["array"]
            if not (isinstance(idx, int) and 0 < idx < len(arrays)):
                raise UntrustedFileError(f"{what}: reference to array {idx!r}, which does not exist")
            return arrays[idx]
        if isinstance(value, dict) and set(value) == {"dtype"}:
            if value["dtype"] not in ("int8", "uint8"):
                raise UntrustedFileError(f"{what}: unexpected dtype {value['dtype']!r} in an op")
            return np.dtype(value["dtype"]).type
        if isinstance(value, (dict, list)):
            raise UntrustedFileError(f"{what}: unexpected value {str(value)[:80]} in the header")
        return value

    ops = []
    for j, d in enumerate(h.ops):
        op_cls = _OP_CLASSES.get(d["op"])
        if op_cls is None:
            raise UntrustedFileError(f"{what}: unknown epilogue op {d['op']!r}")
        names = {fl.name for fl in dc_fields(op_cls)}
        if not set(d["fields"]) <= names:
            raise UntrustedFileError(f"{what}: op {j} ({d['op']}) has unknown fields "
                                     f"{sorted(set(d['fields']) - names)}")
        ops.append(op_cls(**{k: decode(v) for k, v in d["fields"].items()}))
    weight = arrays[0]
    expected = (h.out_features, h.in_features) if h.layout == "nk" else (h.in_features, h.out_features)
    if weight.shape != expected or weight.dtype != _WEIGHT_DTYPES[h.dtype]:
        raise UntrustedFileError(f"{what}: weight array {weight.dtype}{list(weight.shape)} does not match the "
                                 f"header ({h.dtype}, {h.layout}, in={h.in_features}, out={h.out_features})")
    try:
        if h.quant is None:
            return cls(weight, bias=decode(header["bias"]), activation=header["activation"], epilogue=ops,
                       layout=h.layout, backend=h.backend, precision=h.precision, weight_dtype=h.weight_dtype,
                       fusion=h.fusion)
        scales, zp = decode(h.quant["scales"]), decode(h.quant["zero_points"])
        if not isinstance(scales, np.ndarray) or not (zp is None or isinstance(zp, np.ndarray)):
            raise UntrustedFileError(f"{what}: quant scales / zero_points must be stored arrays")
        q = weight.astype(np.int8) if weight.dtype == _INT4 else weight
        if h.layout == "kn":  # from_quantized takes kn-oriented scales for kn weights
            scales = scales.T if scales.ndim == 2 else scales
            zp = zp.T if zp is not None and zp.ndim == 2 else zp
        return cls.from_quantized(q, scales, zp, group_size=h.quant["group_size"], bits=h.quant["bits"],
                                  layout=h.layout, bias=decode(header["bias"]),
                                  activation=header["activation"], epilogue=ops, backend=h.backend,
                                  fusion=h.fusion)
    except (ValueError, TypeError) as exc:
        raise UntrustedFileError(f"{what}: invalid contents: {exc}") from None


_OP_CLASSES = {name: getattr(O, name) for name in O.__all__
               if isinstance(getattr(O, name), type) and issubclass(getattr(O, name), O.EpilogueOp)
               and is_dataclass(getattr(O, name))}


class _Header:
    """The validated fields of a Linear file header (UntrustedFileError otherwise)."""

    def __init__(self, header: Any, version: int, what: str):
        def need(cond: bool, message: str) -> None:
            if not cond:
                raise UntrustedFileError(f"{what}: malformed header: {message}")

        def count(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 48)

        need(isinstance(header, dict), "expected a JSON object")
        need(header.get("format") == "ukernels.Linear", "not a ukernels.Linear header")
        need(header.get("version") == version, f"version {header.get('version')!r} differs from the file's {version}")
        self.dtype = header.get("dtype")
        need(self.dtype in _WEIGHT_DTYPES, f"dtype {self.dtype!r}")
        self.precision = header.get("precision")
        need(self.precision in PRECISIONS, f"precision {self.precision!r}")
        self.layout = header.get("layout")
        need(self.layout in ("nk", "kn"), f"layout {self.layout!r}")
        self.in_features, self.out_features = header.get("in_features"), header.get("out_features")
        need(count(self.in_features) and count(self.out_features), "in_features/out_features must be integers >= 0")
        self.backend = header.get("backend")
        need(self.backend in BACKENDS, f"backend {self.backend!r}")
        self.fusion = header.get("fusion", "auto")  # absent before fusion existed: "auto"
        need(self.fusion in FUSIONS, f"fusion {self.fusion!r}")
        self.weight_dtype = header.get("weight_dtype") if version >= 3 else None
        need(self.weight_dtype in WEIGHT_DTYPES, f"weight_dtype {self.weight_dtype!r}")
        self.quant = header.get("quant") if version >= 3 else None
        if self.quant is not None:
            need(isinstance(self.quant, dict) and set(self.quant) == {"bits", "group_size", "scales", "zero_points"},
                 "'quant' must be {bits, group_size, scales, zero_points}")
            need(self.quant["bits"] in QMAX and not isinstance(self.quant["bits"], bool), "quant bits")
            need(self.quant["group_size"] is None or (isinstance(self.quant["group_size"], int)
                                                      and not isinstance(self.quant["group_size"], bool)),
                 "quant group_size")
            need(self.weight_dtype == ("int8" if self.quant["bits"] == 8 else "int4"), "quant weight_dtype")
        need(header.get("activation") is None or isinstance(header.get("activation"), str), "activation")
        need("bias" in header, "no 'bias' field")
        self.ops = header.get("ops")
        need(isinstance(self.ops, list) and all(isinstance(d, dict) and isinstance(d.get("op"), str)
                                                and isinstance(d.get("fields"), dict) for d in self.ops),
             "'ops' must be a list of {'op': name, 'fields': {...}}")
        arrays = header.get("arrays")
        need(isinstance(arrays, list) and 1 <= len(arrays) <= 1024, "'arrays' must list 1..1024 arrays")
        offset = 0
        self.arrays = []
        for i, meta in enumerate(arrays):
            need(isinstance(meta, dict), f"arrays[{i}] must be an object")
            need(isinstance(meta.get("dtype"), str), f"arrays[{i}] dtype must be a string")
            if meta["dtype"] in _NAMED_DTYPES:
                dtype = _NAMED_DTYPES[meta["dtype"]]
            else:
                try:
                    dtype = np.dtype(meta["dtype"])
                except (TypeError, ValueError):
                    raise UntrustedFileError(f"{what}: malformed header: arrays[{i}] has dtype "
                                             f"{meta.get('dtype')!r}") from None
                need(dtype.kind in _ARRAY_KINDS and dtype.itemsize <= 8,
                     f"arrays[{i}] has dtype {meta.get('dtype')!r} (numeric only)")
            shape = meta.get("shape")
            need(isinstance(shape, list) and len(shape) <= 2 and all(count(n) for n in shape),
                 f"arrays[{i}] shape {shape!r}")
            nbytes = dtype.itemsize
            for n in shape:
                nbytes *= n
            need(meta.get("nbytes") == nbytes, f"arrays[{i}] nbytes {meta.get('nbytes')!r} != {nbytes} "
                                               f"({dtype} x {shape})")
            need(meta.get("offset") == offset, f"arrays[{i}] offset {meta.get('offset')!r} (expected {offset})")
            need(isinstance(meta.get("sha256"), str), f"arrays[{i}] sha256")
            offset += nbytes
            self.arrays.append({"dtype": dtype, "shape": tuple(shape), "nbytes": nbytes, "sha256": meta["sha256"]})
