"""Where a call's epilogue runs: ``fusion="tile"`` (the dispatch applies it to each finished
tile, in L1, after the ukernel call: csrc/uk_epilogue_impl.inl) or ``fusion="register"`` (a
generated kernel rendered for the op list applies it to the accumulator registers at the last
K block and stores the final type itself: codegen/templates/epilogue.c.j2). ``"auto"`` is tile
unless ``ukernels.codegen.tune`` measured register faster for that shape and op list."""
from dataclasses import dataclass
from typing import Optional, Tuple

from ukernels._lib import lib
from ukernels.codegen import epilogue as codegen_epilogue

FUSIONS = ("auto", "tile", "register")

_TOKENS_BY_KIND = {}
for _tok, _info in codegen_epilogue.OPS.items():
    _TOKENS_BY_KIND.setdefault(getattr(lib, _info.kind), []).append(_tok)
_OUT_TOKENS = {getattr(lib, uk_out): tok for tok, (_, uk_out, _) in codegen_epilogue.OUT_TYPES.items()}


@dataclass(frozen=True)
class Fusion:
    """What a call's epilogue resolves to: ``register`` with the kernel's op list, or tile."""

    register: bool
    reason: str
    ops: Tuple[str, ...] = ()
    out: str = ""

    @property
    def signature(self) -> str:
        """The op list and output type as one string (tuned.json keys, explain)."""
        return ",".join(self.ops) + "->" + self.out


def check_fusion(fusion: str, backend: str = "auto", group_quantized: bool = False, narrowed: bool = False) -> None:
    """ValueError unless ``fusion`` is known and, for "register", possible with this backend
    (generated kernels only), weight (not group-quantized) and packing (no bf16 rounding)."""
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {list(FUSIONS)}, got {fusion!r}")
    if fusion != "register":
        return
    if backend == "ukernel":
        raise ValueError("fusion='register' applies the epilogue inside a generated kernel: use "
                         "backend='codegen' (or 'auto'), or fusion='tile' with the handwritten ukernels")
    if group_quantized:
        raise ValueError("fusion='register' is not available for group-quantized weights (their scaled "
                         "tiles are handwritten); use fusion='tile'")
    if narrowed:
        raise ValueError("fusion='register' cannot round operands to bf16 while packing; use fusion='tile'")


def register_form(lowered) -> Tuple[Optional[Tuple[Tuple[str, ...], str]], str]:
    """The (op tokens, out type) a generated kernel would be rendered for to apply ``lowered``
    (a runtime.epilogue.LoweredEpilogue) in registers, or (None, why it cannot)."""
    tokens = []
    for i, op in enumerate(lowered.ops):
        options = _TOKENS_BY_KIND.get(op.kind, [])
        has = op.operand is not None
        pick = [t for t in options if (codegen_epilogue.OPS[t].operand != "") == has]
        if len(pick) != 1:
            return None, f"op {i} (kind {op.kind}) has no register form"
        where = codegen_epilogue.OPS[pick[0]].operand
        if where == "column" and op.stride0 != 1:
            return None, f"op {i} ({pick[0]}) reads a strided operand (stride {op.stride0}); the register form reads columns contiguously"
        if where == "matrix" and op.stride1 != 1:
            return None, f"op {i} ({pick[0]}) reads a residual with column stride {op.stride1}; the register form needs 1"
        tokens.append(pick[0])
    out = _OUT_TOKENS.get(lowered.out_type)
    if out is None:
        return None, f"output type {lowered.out_type} has no register form"
    return (tuple(tokens), out), ""


def resolve_fusion(fusion: str, backend: str, lowered, tuned: Optional[str]) -> Fusion:
    """``fusion`` for a call whose backend resolved to ``backend`` ("ukernel" / "codegen"),
    with ``tuned`` the winner ``tune`` persisted for its shape and op list (or None)."""
    form, why = register_form(lowered)
    if fusion == "tile":
        return Fusion(False, "fusion='tile' asked")
    if fusion == "register":
        if form is None:
            raise ValueError(f"fusion='register': {why}; use fusion='tile' (or 'auto') for this epilogue")
        return Fusion(True, "fusion='register' asked", *form)
    # auto
    if backend != "codegen":
        return Fusion(False, "auto: the handwritten ukernels leave the epilogue to the tile level")
    if form is None:
        return Fusion(False, f"auto: {why}")
    if tuned == "register":
        return Fusion(True, "auto: tune measured register-level faster for this shape and op list", *form)
    if tuned == "tile":
        return Fusion(False, "auto: tune measured tile-level faster for this shape and op list")
    return Fusion(False, "auto: tile-level unless tune measured register-level faster (not tuned)")
