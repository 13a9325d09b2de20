"""``ukernels.GatedLinear``: a gated unit, ``silu(x @ W_gate^T) * (x @ W_up^T)``, in one call.

The feed-forward block of Llama-style models (SwiGLU) computes two projections of the same x
and multiplies the first's SiLU into the second. Here both weights are quantized (int8 or int4,
per channel or per group) into one weight whose 64-column panels alternate between them, and
one C call (csrc/uk_qlinear.c, ``gated``) quantizes x, computes each pair of panels, and writes
``silu(gate) * up`` once: one call and one result instead of two products, an activation and a
product in separate passes. The values equal the separate layers' (each a weight-quantized
``Linear``, the SiLU applied by the gate's epilogue, then one float32 product) bit for bit.
"""
from typing import Optional

import numpy as np

from ukernels.quantize import check_group_size, quantize_weight
from ukernels.runtime.decode import PANEL, DecodePlan

def interleave_panels(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(2 * ceil(I / 64) * 64, ...) rows: 64 rows of gate, then 64 of up, in turn (zero padded)."""
    I, rest = gate.shape[0], gate.shape[1:]
    P = -(-I // PANEL)
    padded = np.zeros((2, P * PANEL) + rest, gate.dtype)
    padded[0, :I], padded[1, :I] = gate, up
    return padded.reshape((2, P, PANEL) + rest).swapaxes(0, 1).reshape((2 * P * PANEL,) + rest)


class GatedLinear:
    """y = silu(x @ gate^T) * (x @ up^T) with both weights quantized once, in one call.

    Args:
        gate, up: float weights of the same shape (I, K) (PyTorch's ``(out_features,
            in_features)``; ``layout="kn"``: (K, I)).
        weight_dtype: "int8" or "int4" (quantized as ``Linear(..., weight_dtype=...)`` does:
            symmetric, per output channel or per ``group_size`` group; x per row per call).
        group_size: None or 32, 64, 128, 256 dividing K.
        layout: "nk" or "kn".

    Calling it with a float x of shape (..., K) gives float32 (..., I). Thread safe.
    """

    def __init__(self, gate, up, *, weight_dtype: str = "int8", group_size: Optional[int] = None,
                 layout: str = "nk"):
        if weight_dtype not in ("int8", "int4"):
            raise ValueError(f"GatedLinear quantizes its weights: weight_dtype must be 'int8' or 'int4', got "
                             f"{weight_dtype!r}")
        if layout not in ("nk", "kn"):
            raise ValueError(f"layout must be 'nk' or 'kn', got {layout!r}")
        g, u = np.asarray(gate), np.asarray(up)
        if g.ndim != 2 or g.shape != u.shape:
            raise ValueError(f"gate and up must be 2-D weights of one shape, got {g.shape} and {u.shape}")
        if layout == "kn":
            g, u = g.T, u.T
        I, K = g.shape
        check_group_size(group_size, K)
        bits = 8 if weight_dtype == "int8" else 4
        q, scales = quantize_weight(interleave_panels(np.asarray(g, np.float32), np.asarray(u, np.float32)), bits,
                                    group_size)
        self._build(q, scales, K, I, weight_dtype, group_size)

    def _build(self, q: np.ndarray, scales: np.ndarray, K: int, I: int, weight_dtype: str,
               group_size: Optional[int]) -> None:
        self.in_features, self.out_features = K, I
        self.weight_dtype, self.group_size = weight_dtype, group_size
        self._q, self._scales = q, scales  # (kept for pickling: the plan's layout is rebuilt from them)
        bits = 8 if weight_dtype == "int8" else 4
        self._plan = DecodePlan(q, bits, group_size, scales, (None, 0, ()), gated_columns=I) if I else None

    def __getstate__(self):
        return {"q": self._q, "scales": self._scales, "K": self.in_features, "I": self.out_features,
                "weight_dtype": self.weight_dtype, "group_size": self.group_size}

    def __setstate__(self, state):
        if not isinstance(state, dict) or set(state) != {"q", "scales", "K", "I", "weight_dtype", "group_size"}:
            raise ValueError("not a pickled GatedLinear")
        self._build(np.asarray(state["q"], np.int8), np.asarray(state["scales"], np.float32), int(state["K"]),
                    int(state["I"]), state["weight_dtype"], state["group_size"])

    def __call__(self, x) -> np.ndarray:
        from ukernels import cpu
        x = np.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., in_features={self.in_features}), got {x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(f"x must be floating point, got {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        rows = int(np.prod(x.shape[:-1], dtype=np.int64))
        out = np.empty(x.shape[:-1] + (self.out_features,), np.float32)
        if rows and self.out_features:
            self._plan.run(x.reshape(rows, self.in_features), out.reshape(rows, self.out_features), cpu.active_isa())
        return out

    def __repr__(self) -> str:
        return (f"GatedLinear(in_features={self.in_features}, out_features={self.out_features}, "
                f"weight_dtype={self.weight_dtype!r}, group_size={self.group_size})")
