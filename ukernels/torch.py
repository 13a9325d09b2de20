"""``ukernels.torch``: PyTorch CPU tensors in and out, prepacked ``nn.Linear`` replacements,
and ``optimize(model)`` (an optional extra: ``pip install 'ukernels[torch]'``; torch is never a
dependency of the core).

Tensors cross without copies: a CPU tensor is viewed as a numpy array (``Tensor.numpy()``
shares its memory; bfloat16 through an int16 view) and results come back with
``torch.from_numpy``. Inference only: a call that would need gradients (grad mode on and an
input that requires grad) raises instead of returning a result with no graph.
"""
import copy
import operator
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

__all__ = ["matmul", "Linear", "SwiGLU", "optimize", "to_numpy", "from_numpy"]

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float16: np.float16, torch.int8: np.int8, torch.int16: np.int16,
                 torch.uint8: np.uint8, torch.int32: np.int32}
# fused activations: module type -> the ukernels epilogue op
_FUSABLE = {nn.ReLU: lambda m: O.Relu(), nn.SiLU: lambda m: O.Silu(),
            nn.GELU: lambda m: O.Gelu(approximate=getattr(m, "approximate", "none"))}


def _fusable_op(m: "nn.Module") -> Optional[O.EpilogueOp]:
    """The epilogue op computing activation module ``m`` exactly, or None. Besides torch's
    ReLU/GELU/SiLU modules: Hugging Face transformers' ``GELUActivation`` when it wraps the exact
    (erf) ``torch.nn.functional.gelu`` (BERT's MLP blocks) and ``SiLUActivation`` (Llama's MLP),
    recognised without importing transformers."""
    make = _FUSABLE.get(type(m))
    if make is not None:
        return make(m)
    if type(m).__name__ == "GELUActivation" and getattr(m, "act", None) is torch.nn.functional.gelu:
        return O.Gelu()
    if type(m).__name__ == "SiLUActivation" and type(m).forward.__code__.co_names[-1:] == ("silu",):
        return O.Silu()  # transformers' SiLUActivation: forward is nn.functional.silu(input)
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


def _call_linear(lin: "ukernels.Linear", x: "torch.Tensor") -> "torch.Tensor":
    """``lin`` on a tensor: a float32 CPU tensor that needs no grad is checked in four attribute
    reads (to_numpy's checks all pass); others through to_numpy, converted to float32 unless the
    Linear takes them as they are (a weight_dtype or precision of its own)."""
    if type(x) is _Tensor and x.dtype is _TORCH_F32 and x.is_cpu and not x.requires_grad:
        return _from_numpy(lin(x.numpy()))
    xn = to_numpy(x, "input")
    if xn.dtype != np.float32 and lin._weight_dtype is None and lin._precision is None:
        xn = xn.astype(np.float32)
    return from_numpy(lin(xn))


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
        return _call_linear(self.inner, x)

    def extra_repr(self) -> str:
        return f"{self.inner!r}" + (f", fused={self.fused}" if self.fused else "")


# ---- fewer, larger calls: q/k/v projections in one call; SwiGLU in one call ------------------
class _SharedInputGroup:
    """Sibling Linear layers computed in one call on concatenated weights: the first of them
    called on an input computes every sibling's output; the others, called on the same tensor
    with the same values (compared with a copy taken then: inference tensors keep no version
    counter, and an in-place change between the calls must not be missed), take their columns
    from it. Any other input is computed again, so the result is right however the parent's
    forward calls them (only the saving depends on it)."""

    __slots__ = ("lin", "bounds", "_x", "_copy", "_y", "_served")

    def __init__(self, lin: "ukernels.Linear", bounds):
        self.lin, self.bounds = lin, bounds
        self._x = self._copy = self._y = None
        self._served = set()

    def output(self, x: "torch.Tensor", part: int) -> "torch.Tensor":
        if self._x is not x or part in self._served or not torch.equal(x, self._copy):
            self._x = self._copy = self._y = None  # (drop the old ones first)
            self._y = _call_linear(self.lin, x)
            self._x, self._copy, self._served = x, x.detach().clone(), set()
        self._served.add(part)
        y = self._y
        if len(self._served) == len(self.bounds):  # every sibling served: let x and y go
            self._x = self._copy = self._y = None
        lo, hi = self.bounds[part]
        return y[..., lo:hi].contiguous()

    def __getstate__(self):
        return {"lin": self.lin, "bounds": self.bounds}

    def __setstate__(self, state):
        self.__init__(state["lin"], state["bounds"])


class _SharedInputPart(nn.Module):
    """One sibling of a _SharedInputGroup (replaces that nn.Linear)."""

    def __init__(self, group: _SharedInputGroup, part: int, in_features: int, out_features: int):
        super().__init__()
        self.group, self.part = group, part
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.group.output(x, self.part)

    def extra_repr(self) -> str:
        lo, hi = self.group.bounds[self.part]
        return f"columns {lo}:{hi} of one call: {self.group.lin!r}"


QKV_NAMES = ("q_proj", "k_proj", "v_proj")


def _fuse_siblings(parent: "nn.Module", names, kw) -> bool:
    """Replace ``parent``'s nn.Linear children ``names`` (same in_features, all with a bias or
    none) by one call on their concatenated weights; False (nothing changed) where they do not
    concatenate."""
    mods = [parent._modules.get(n) for n in names]
    if not all(type(m) is nn.Linear for m in mods):
        return False
    if len({m.in_features for m in mods}) != 1 or len({m.bias is None for m in mods}) != 1 or any(
            m.weight.device.type != "cpu" for m in mods):
        return False
    w = torch.cat([m.weight.detach().float() for m in mods], 0).contiguous()
    bias = None if mods[0].bias is None else torch.cat([m.bias.detach().float() for m in mods]).numpy().copy()
    lin = ukernels.Linear(w.numpy().copy(), bias=bias, **kw)
    bounds, at = [], 0
    for m in mods:
        bounds.append((at, at + m.out_features))
        at += m.out_features
    group = _SharedInputGroup(lin, tuple(bounds))
    for i, (n, m) in enumerate(zip(names, mods)):
        parent._modules[n] = _SharedInputPart(group, i, m.in_features, m.out_features)
    return True


class SwiGLU(nn.Module):
    """A Llama-style MLP, ``down(silu(gate(x)) * up(x))``, whose gate and up projections and the
    product run as one ``ukernels.GatedLinear`` call (int8/int4 weights)."""

    def __init__(self, gated: "ukernels.GatedLinear", down: "nn.Module"):
        super().__init__()
        self.gated, self.down_proj = gated, down

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        xn = to_numpy(x, "input")
        return self.down_proj(from_numpy(self.gated(xn)))

    def extra_repr(self) -> str:
        return repr(self.gated)


def _swiglu_parts(module: "nn.Module"):
    """(gate, up, down) child names when ``module``'s forward, traced with torch.fx (children as
    opaque calls), is exactly ``down(act(gate(x)) * up(x))`` with act a SiLU and gate/up bias-free
    nn.Linear of one shape; else None."""
    kids = dict(module.named_children())
    if sum(type(c) is nn.Linear for c in kids.values()) != 3:
        return None
    try:
        graph = _ChildrenAsLeaves().trace(module)
    except Exception:  # noqa: BLE001 - not traceable: no fusion
        return None
    nodes = [n for n in graph.nodes]
    ph = [n for n in nodes if n.op == "placeholder"]
    calls = [n for n in nodes if n.op == "call_module"]
    muls = [n for n in nodes if n.op == "call_function" and n.target in (operator.mul, torch.mul)]
    outs = [n for n in nodes if n.op == "output"]
    if len(ph) != 1 or len(calls) != 4 or len(muls) != 1 or len(nodes) != 7 or len(outs) != 1:
        return None
    x, mul = ph[0], muls[0]
    down = outs[0].args[0]
    if not (down.op == "call_module" and down.args == (mul,) and type(kids.get(down.target)) is nn.Linear):
        return None
    a, b = mul.args if len(mul.args) == 2 else (None, None)
    for act, up in ((a, b), (b, a)):
        if (getattr(act, "op", None) == "call_module" and _fusable_op(kids.get(act.target)) == O.Silu()
                and getattr(up, "op", None) == "call_module" and up.args == (x,) and len(act.args) == 1):
            gate = act.args[0]
            if getattr(gate, "op", None) == "call_module" and gate.args == (x,):
                g, u = kids.get(gate.target), kids.get(up.target)
                if (type(g) is nn.Linear and type(u) is nn.Linear and g.weight.shape == u.weight.shape
                        and g.bias is None and u.bias is None):
                    return gate.target, up.target, down.target
    return None


def optimize(model: "nn.Module", *, precision: Optional[str] = None, weight_dtype: Optional[str] = None,
             group_size: Optional[int] = None, inplace: bool = False,
             torch_threads: Union[str, int, None] = "auto", fuse: bool = False,
             fuse_qkv: bool = False) -> "nn.Module":
    """Every ``nn.Linear`` of ``model`` replaced by a prepacked ``ukernels.torch.Linear``, with
    the activation module (ReLU, GELU, SiLU; transformers' exact GELUActivation) that directly
    follows a Linear fused into it and replaced by ``nn.Identity`` where the structure makes it
    certain: inside ``nn.Sequential``, and in any other module whose forward, traced with
    torch.fx (children as opaque calls), passes the Linear's output to the activation and
    nowhere else (e.g. the MLP block of a BERT layer). Returns the optimized model (a deep copy
    unless ``inplace``). Inference only.

    ``fuse`` (default False): a module whose forward, traced with torch.fx, is exactly
    ``down(silu(gate(x)) * up(x))`` (Llama's MLP) becomes a ``SwiGLU`` module: with int8/int4
    weights, gate, up and the product are one ``ukernels.GatedLinear`` call (results equal the
    unfused layers' bit for bit). Opt-in: the MLP alone is faster (SmolLM2's at M = 1, one
    thread, weights in cache: int8 67.0 vs 71.1 us, int4 g32 54.2 vs 58.1 us), but SmolLM2's
    decode end to end was not (2-4% slower in four interleaved comparisons; not explained yet).
    ``fuse_qkv`` (default False): a module's ``q_proj``, ``k_proj`` and
    ``v_proj`` nn.Linear children (same in_features; Llama's attention) become one call on their
    concatenated weights, each child taking its columns (the first called on an input computes
    all three; the others, called on the same tensor with unchanged values -- checked against a
    copy -- reuse it; any other input is computed again, so any forward stays right). Off by
    default: measured at SmolLM2's shapes (M = 1) the copy and the check cost what the two saved
    calls did (int8 31.6 vs 30.8 us unfused, int4 33.9 vs 28.0 us).

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

    quantized = weight_dtype in ("int8", "int4")

    def visit(parent: "nn.Module") -> None:
        if fuse:
            for name, child in list(parent._modules.items()):
                parts = _swiglu_parts(child) if quantized and child is not None else None
                if parts is not None:
                    g, u, d = (child._modules[p] for p in parts)
                    gated = ukernels.GatedLinear(to_numpy(g.weight.detach().float().contiguous(), "weight"),
                                                 to_numpy(u.weight.detach().float().contiguous(), "weight"),
                                                 weight_dtype=weight_dtype, group_size=group_size)
                    parent._modules[name] = SwiGLU(gated, Linear.from_module(d, **kw))
            if fuse_qkv and all(n in parent._modules for n in QKV_NAMES):
                _fuse_siblings(parent, QKV_NAMES, kw)
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
            elif not isinstance(child, (Linear, SwiGLU, _SharedInputPart)):
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
