"""``ukernels.torch``: PyTorch CPU tensors in and out, prepacked ``nn.Linear`` replacements,
and ``optimize(model)`` (an optional extra: ``pip install 'ukernels[torch]'``; torch is never a
dependency of the core).

Tensors cross without copies: a CPU tensor is viewed as a numpy array (``Tensor.numpy()``
shares its memory; bfloat16 through an int16 view) and results come back with
``torch.from_numpy``. Inference only: a call that would need gradients (grad mode on and an
input that requires grad) raises instead of returning a result with no graph.
"""
import copy
from typing import Dict, Optional, Union

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


def _fusable_op(m: "nn.Module") -> Optional[O.EpilogueOp]:
    """The epilogue op computing activation module ``m`` exactly, or None. Besides torch's
    ReLU/GELU/SiLU modules: Hugging Face transformers' ``GELUActivation`` when it wraps the exact
    (erf) ``torch.nn.functional.gelu`` (BERT's MLP blocks), recognised without importing it."""
    make = _FUSABLE.get(type(m))
    if make is not None:
        return make(m)
    if type(m).__name__ == "GELUActivation" and getattr(m, "act", None) is torch.nn.functional.gelu:
        return O.Gelu()
    return None


class _ChildrenAsLeaves(torch.fx.Tracer):
    """Traces one module's forward with its direct children as opaque calls."""

    def is_leaf_module(self, m: "nn.Module", qualname: str) -> bool:
        return "." not in qualname


def _fusions_by_trace(parent: "nn.Module") -> Dict[str, str]:
    """{linear child: activation child} where ``parent.forward``, traced with torch.fx, feeds
    the Linear's output to the activation and to nothing else, each child called exactly once
    and the activation on nothing else. Modules fx cannot trace (data-dependent control flow,
    unusual signatures) get no fusion: ``{}``."""
    kids = dict(parent.named_children())
    if not any(isinstance(c, nn.Linear) for c in kids.values()) or not any(
            _fusable_op(c) is not None for c in kids.values()):
        return {}
    try:
        graph = _ChildrenAsLeaves().trace(parent)
    except Exception:  # noqa: BLE001 - any tracing failure just means no fusion here
        return {}
    calls: Dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(kids.get(node.target), nn.Linear) or calls[node.target] != 1:
            continue
        if len(node.users) != 1:
            continue
        user = next(iter(node.users))
        if (user.op == "call_module" and _fusable_op(kids.get(user.target)) is not None and calls[user.target] == 1
                and user.args == (node,) and not user.kwargs):
            pairs[node.target] = user.target
    return pairs


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


_Tensor, _TORCH_F32, _from_numpy = torch.Tensor, torch.float32, torch.from_numpy


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
        if w.device.type == "meta":
            raise ValueError("the module's weight is on the meta device (not loaded yet); load the weights first "
                             "(e.g. load_state_dict(..., assign=True), or from_pretrained without a meta device_map)")
        if w.device.type != "cpu":
            raise ValueError(f"the module's weight is on {w.device}; ukernels runs on the CPU: move it with .cpu()")
        ops, fused = [], None
        if isinstance(activation, nn.Module):
            op = _fusable_op(activation)
            if op is None:
                raise ValueError(f"cannot fuse {type(activation).__name__}; fusable: "
                                 f"{sorted(t.__name__ for t in _FUSABLE)} (and transformers' GELUActivation)")
            ops, fused, activation = [op], type(activation).__name__, None
        bias = None if module.bias is None else to_numpy(module.bias.detach().float().contiguous(), "bias").copy()
        weight = to_numpy(w.float().contiguous(), "weight").copy()
        lin = ukernels.Linear(weight, bias=bias, activation=activation, epilogue=ops, precision=precision,
                              weight_dtype=weight_dtype, group_size=group_size)
        return cls(lin, fused or activation)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        if type(x) is _Tensor and x.dtype is _TORCH_F32 and x.is_cpu and not x.requires_grad:
            # the common inference call, checked in four attribute reads (to_numpy's checks all pass)
            return _from_numpy(self.inner(x.numpy()))
        xn = to_numpy(x, "input")
        if xn.dtype != np.float32 and self.inner._weight_dtype is None and self.inner._precision is None:
            xn = xn.astype(np.float32)
        return from_numpy(self.inner(xn))

    def extra_repr(self) -> str:
        return f"{self.inner!r}" + (f", fused={self.fused}" if self.fused else "")


def optimize(model: "nn.Module", *, precision: Optional[str] = None, weight_dtype: Optional[str] = None,
             group_size: Optional[int] = None, inplace: bool = False,
             torch_threads: Union[str, int, None] = "auto") -> "nn.Module":
    """Every ``nn.Linear`` of ``model`` replaced by a prepacked ``ukernels.torch.Linear``, with
    the activation module (ReLU, GELU, SiLU; transformers' exact GELUActivation) that directly
    follows a Linear fused into it and replaced by ``nn.Identity`` where the structure makes it
    certain: inside ``nn.Sequential``, and in any other module whose forward, traced with
    torch.fx (children as opaque calls), passes the Linear's output to the activation and
    nowhere else (e.g. the MLP block of a BERT layer). Returns the optimized model (a deep copy
    unless ``inplace``). Inference only.

    ``torch_threads``: torch's own intra-op threads while the optimized model's forward runs
    (restored after it, also on an error). ``"auto"`` (default): 1 whenever ukernels uses more
    than one thread (``ukernels.set_num_threads``), else left alone. ukernels' pool does the
    parallel work of the Linear layers; torch's OpenMP workers spin between torch's own ops and
    take the cores that pool needs (measured, a TinyLlama-shaped model at 2 threads: int8 decode
    17.6 ms/token with torch at 2 threads, 9.8 ms at 1; the ops left in torch took 2.6 and 2.4 ms).
    An int: that many; None: torch's setting is never touched. torch's thread count is
    process-wide, so with ``"auto"`` or an int another thread's torch work meanwhile runs at it too.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"optimize takes an nn.Module, got {type(model).__name__}")
    if not (torch_threads in ("auto", None) or (isinstance(torch_threads, int) and not isinstance(torch_threads, bool)
                                                 and torch_threads >= 1)):
        raise ValueError(f"torch_threads must be 'auto', None or an int >= 1, got {torch_threads!r}")
    model = model if inplace else copy.deepcopy(model)
    kw = dict(precision=precision, weight_dtype=weight_dtype, group_size=group_size)

    def visit(parent: "nn.Module") -> None:
        names = list(parent._modules)
        traced = {} if isinstance(parent, nn.Sequential) else _fusions_by_trace(parent)
        for i, name in enumerate(names):
            child = parent._modules[name]
            if child is None:
                continue
            if isinstance(child, nn.Linear):
                nxt_name = (names[i + 1] if isinstance(parent, nn.Sequential) and i + 1 < len(names)
                            else traced.get(name))
                nxt = parent._modules[nxt_name] if nxt_name is not None else None
                if nxt is not None and _fusable_op(nxt) is not None:
                    parent._modules[name] = Linear.from_module(child, nxt, **kw)
                    parent._modules[nxt_name] = nn.Identity()
                else:
                    parent._modules[name] = Linear.from_module(child, **kw)
            elif not isinstance(child, Linear):
                visit(child)

    visit(model)
    if torch_threads is not None:
        _limit_torch_threads(model, torch_threads)
    return model


class _TorchThreads:
    """torch's intra-op threads at optimize's ``torch_threads`` setting inside ``with``, restored
    after (nested uses keep the outer one's value)."""

    __slots__ = ("setting", "saved")

    def __init__(self, setting: Union[str, int]):
        self.setting, self.saved = setting, []

    def __enter__(self) -> None:
        n = (1 if ukernels.get_num_threads() > 1 else 0) if self.setting == "auto" else self.setting
        current = torch.get_num_threads()
        self.saved.append(current)
        if n and n != current:
            torch.set_num_threads(n)

    def __exit__(self, *exc) -> None:
        previous = self.saved.pop()
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _threads_before(module: "nn.Module", args) -> None:
    module._ukernels_torch_threads.__enter__()


def _threads_after(module: "nn.Module", args, output) -> None:
    module._ukernels_torch_threads.__exit__()


class _GenerateWithThreads:
    """transformers' ``generate`` of an optimized model, all of it (the model's forwards and the
    token selection between them) with torch's threads as optimize's ``torch_threads`` says:
    libgomp's workers spin for milliseconds after each parallel torch op, so limiting the
    forwards alone leaves them spinning into the next forward (measured: 14.4 vs 9.8 ms/token).
    An object rather than a bound method so that pickling and copying the model keep it."""

    __slots__ = ("model",)

    def __init__(self, model: "nn.Module"):
        self.model = model

    def __call__(self, *args, **kwargs):
        with self.model._ukernels_torch_threads:
            return type(self.model).generate(self.model, *args, **kwargs)


def _limit_torch_threads(model: "nn.Module", setting: Union[str, int]) -> None:
    """``model``'s forward (and a transformers model's ``generate``) run with torch's intra-op
    threads at ``setting`` (optimize's ``torch_threads``), restored after."""
    model._ukernels_torch_threads = _TorchThreads(setting)
    model.register_forward_pre_hook(_threads_before)
    model.register_forward_hook(_threads_after, always_call=True)
    if callable(getattr(type(model), "generate", None)):
        model.generate = _GenerateWithThreads(model)
