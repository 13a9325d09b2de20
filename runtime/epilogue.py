"""The epilogue description: an ordered list of elementwise ops the C
dispatch applies to each output tile in cache, before write-back.

Adding an op means a new ``UK_EPI_*`` kind in csrc/uk_runtime.h with its
loop in csrc/uk_epilogue_impl.inl and an entry here; the ukernels never
change.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ukernels._lib import ffi, lib
from ukernels.abi import address_of

ACTIVATIONS = {"relu": lib.UK_EPI_RELU, "gelu": lib.UK_EPI_GELU_ERF}
FLOAT_ONLY = {lib.UK_EPI_GELU_ERF}


@dataclass(frozen=True)
class EpilogueOp:
    """One op: a UK_EPI_* kind, and its operand (validated by the caller)."""

    kind: int
    operand: Optional[np.ndarray] = None


def to_c(ops: Sequence[EpilogueOp]) -> Tuple[object, int, List[np.ndarray]]:
    """(uk_epilogue_op_t[] or NULL, count, arrays to keep alive during the call)."""
    if not ops:
        return ffi.NULL, 0, []
    arr = ffi.new("uk_epilogue_op_t[]", len(ops))
    keep: List[np.ndarray] = []
    for i, op in enumerate(ops):
        arr[i].kind = op.kind
        if op.operand is not None:
            x = op.operand
            arr[i].data = address_of(x)
            arr[i].data_stride = x.strides[0] // x.itemsize
            keep.append(x)
    return arr, len(ops), keep
