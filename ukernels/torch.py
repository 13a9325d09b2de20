"""``ukernels.torch``: PyTorch CPU tensors in and out, prepacked ``nn.Linear`` replacements,
and ``optimize(model)`` (an optional extra: ``pip install 'ukernels[torch]'``; torch is never a
dependency of the core).

Tensors cross without copies: a CPU tensor is viewed as a numpy array (``Tensor.numpy()``
shares its memory; bfloat16 through an int16 view) and results come back with
``torch.from_numpy``. Inference only: a call that would need gradients (grad mode on and an
input that requires grad) raises instead of returning a result with no graph.
"""
import copy
from typing import Optional

import ml_dtypes
import numpy as np

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("ukernels.torch needs PyTorch: pip install 'ukernels[torch]' (or pip install torch)") from exc

import ukernels
from ukernels import ops as O

__all__ = ["matmul", "Linear", "optimize", "to_numpy", "from_numpy"]

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.int8: np.int8, torch.int16: np.int16,
                 torch.uint8: np.uint8, torch.int32: np.int32}
# fused activations: module type -> the ukernels epilogue op
_FUSABLE = {nn.ReLU: lambda m: O.Relu(), nn.SiLU: lambda m: O.Silu(),
            nn.GELU: lambda m: O.Gelu(approximate=getattr(m, "approximate", "none"))}


def _check_inference(name: str, t: "torch.Tensor") -> None:
    if torch.is_grad_enabled() and t.requires_grad:
        raise RuntimeError(f"ukernels.torch is inference only: {name} requires grad while grad mode is on; run under "
                           "torch.no_grad() or torch.inference_mode() (or .detach() the input)")


def to_numpy(t: "torch.Tensor", name: str = "tensor") -> np.ndarray:
    """A numpy view of a CPU tensor (no copy): float32/16, bfloat16 (as ml_dtypes.bfloat16),
    int8/16/32, uint8. Other devices and dtypes raise with what is accepted."""
    if not isinstance(t, torch.Tensor):
        return np.asarray(t)
    if t.device.type != "cpu":
        raise ValueError(f"{name} is on {t.device}; ukernels runs on the CPU: move it with .cpu()")
    _check_inference(name, t)
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    if t.dtype not in _NUMPY_DTYPES:
        raise TypeError(f"{name} has dtype {t.dtype}; ukernels.torch takes {sorted(str(d) for d in _NUMPY_DTYPES)} "
                        "or torch.bfloat16")
    return t.numpy()


def from_numpy(a: np.ndarray) -> "torch.Tensor":
    """A tensor sharing the numpy array's memory (bfloat16 through an int16 view)."""
    if a.dtype == np.dtype(ml_dtypes.bfloat16):
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def matmul(a, b, **kwargs) -> "torch.Tensor":
    """``ukernels.matmul`` on tensors (same arguments; ``out=`` may be a tensor)."""
    out = kwargs.get("out")
    if isinstance(out, torch.Tensor):
        kwargs["out"] = to_numpy(out, "out")
        ukernels.matmul(to_numpy(a, "a"), to_numpy(b, "b"), **kwargs)
        return out
    return from_numpy(np.asarray(ukernels.matmul(to_numpy(a, "a"), to_numpy(b, "b"), **kwargs)))


class Linear(nn.Module):
    """A prepacked replacement of ``nn.Linear`` (inference only), optionally with the activation
    that follows it fused into the tile's epilogue."""

    def __init__(self, lin: "ukernels.Linear", fused: Optional[str] = None):
        super().__init__()
        self.inner = lin
        self.in_features, self.out_features = lin.in_features, lin.out_features
        self.fused = fused

    @classmethod
    def from_module(cls, module: "nn.Linear", activation=None, *, precision: Optional[str] = None,
                    weight_dtype: Optional[str] = None, group_size: Optional[int] = None) -> "Linear":
        """Pack ``module``'s weight (and bias) once. ``activation``: None, "relu", "gelu", or an
        activation module (nn.ReLU, nn.GELU, nn.SiLU) to fuse."""
        if not isinstance(module, nn.Linear):
            raise TypeError(f"from_module takes an nn.Linear, got {type(module).__name__}")
        w = module.weight.detach()
        if w.device.type != "cpu":
            raise ValueError(f"the module's weight is on {w.device}; ukernels runs on the CPU")
        ops, fused = [], None
        if isinstance(activation, nn.Module):
            make = _FUSABLE.get(type(activation))
            if make is None:
                raise ValueError(f"cannot fuse {type(activation).__name__}; fusable: "
                                 f"{sorted(t.__name__ for t in _FUSABLE)}")
            ops, fused, activation = [make(activation)], type(activation).__name__, None
        bias = None if module.bias is None else to_numpy(module.bias.detach().float().contiguous(), "bias").copy()
        weight = to_numpy(w.float().contiguous(), "weight").copy()
        lin = ukernels.Linear(weight, bias=bias, activation=activation, epilogue=ops, precision=precision,
                              weight_dtype=weight_dtype, group_size=group_size)
        return cls(lin, fused or activation)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        xn = to_numpy(x, "input")
        if xn.dtype != np.float32 and self.inner._weight_dtype is None and self.inner._precision is None:
            xn = xn.astype(np.float32)
        return from_numpy(self.inner(xn))

    def extra_repr(self) -> str:
        return f"{self.inner!r}" + (f", fused={self.fused}" if self.fused else "")


def optimize(model: "nn.Module", *, precision: Optional[str] = None, weight_dtype: Optional[str] = None,
             group_size: Optional[int] = None, inplace: bool = False) -> "nn.Module":
    """Every ``nn.Linear`` of ``model`` replaced by a prepacked ``ukernels.torch.Linear``; inside
    ``nn.Sequential``, an activation module (ReLU, GELU, SiLU) that directly follows a Linear is
    fused into it (and replaced by ``nn.Identity``). Returns the optimized model (a deep copy
    unless ``inplace``). Inference only."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"optimize takes an nn.Module, got {type(model).__name__}")
    model = model if inplace else copy.deepcopy(model)
    kw = dict(precision=precision, weight_dtype=weight_dtype, group_size=group_size)

    def visit(parent: "nn.Module") -> None:
        names = list(parent._modules)
        for i, name in enumerate(names):
            child = parent._modules[name]
            if child is None:
                continue
            if isinstance(child, nn.Linear):
                nxt = parent._modules[names[i + 1]] if isinstance(parent, nn.Sequential) and i + 1 < len(names) else None
                if nxt is not None and type(nxt) in _FUSABLE:
                    parent._modules[name] = Linear.from_module(child, nxt, **kw)
                    parent._modules[names[i + 1]] = nn.Identity()
                else:
                    parent._modules[name] = Linear.from_module(child, **kw)
            else:
                visit(child)

    visit(model)
    return model
