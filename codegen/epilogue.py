"""The epilogue op list as the generator sees it: a kernel rendered with ``KernelSpec.epilogue``
applies these ops to its accumulator registers at the last K block and stores ``KernelSpec.out``
itself (``fusion="register"``), instead of leaving them to the dispatch's tile-level epilogue
(csrc/uk_epilogue_impl.inl) after the call.

An op list is a tuple of tokens, one per lowered op (runtime/epilogue.py lowers the public
ops to UK_EPI_* kinds; runtime/fusion.py: register_form turns those into tokens). The operands (bias, residual,
scales) and scalars are not part of the kernel: it reads them from the call's op list
(uk_mmt4d_params_t.epilogue_ops) and checks that list against the one it was rendered for.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple


@dataclass(frozen=True)
class OpInfo:
    """One token: its UK_EPI_* kind, where its operand is read, which value domains it takes."""

    kind: str  # the UK_EPI_* name in uk_api.h
    operand: str  # "" (none), "column" (data[col]), "row" (data[row * stride]), "matrix" (residual)
    domains: str  # "if": int32 and float; "f": float only (to_float: int only)


OPS: Dict[str, OpInfo] = {
    "bias_col": OpInfo("UK_EPI_BIAS_COLUMN", "column", "if"),
    "bias_row": OpInfo("UK_EPI_BIAS_ROW", "row", "if"),
    "residual": OpInfo("UK_EPI_RESIDUAL", "matrix", "if"),
    "relu": OpInfo("UK_EPI_RELU", "", "if"),
    "relu6": OpInfo("UK_EPI_RELU6", "", "if"),
    "clamp": OpInfo("UK_EPI_CLAMP", "", "if"),
    "scale": OpInfo("UK_EPI_SCALE", "", "f"),  # per tensor (p0)
    "scale_col": OpInfo("UK_EPI_SCALE", "column", "f"),
    "scale_row": OpInfo("UK_EPI_SCALE_ROW", "row", "f"),
    "gelu_erf": OpInfo("UK_EPI_GELU_ERF", "", "f"),
    "gelu_tanh": OpInfo("UK_EPI_GELU_TANH", "", "f"),
    "silu": OpInfo("UK_EPI_SILU", "", "f"),
    "sigmoid": OpInfo("UK_EPI_SIGMOID", "", "f"),
    "tanh": OpInfo("UK_EPI_TANH", "", "f"),
    "to_float": OpInfo("UK_EPI_TO_FLOAT", "", "i"),
    "requantize": OpInfo("UK_EPI_REQUANTIZE", "", "f"),  # per tensor scale (p0)
    "requantize_col": OpInfo("UK_EPI_REQUANTIZE", "column", "f"),
}

# Output element types a fused kernel stores, by the final value domain, and their UK_OUT_*.
OUT_TYPES: Dict[str, Tuple[str, str, str]] = {  # token: (domain, UK_OUT_*, C element type)
    "f32": ("f", "UK_OUT_F32", "float"),
    "f16": ("f", "UK_OUT_F16", "uint16_t"),
    "bf16": ("f", "UK_OUT_BF16", "uint16_t"),
    "s32": ("i", "UK_OUT_S32", "int32_t"),
    "s8": ("i", "UK_OUT_S8", "int8_t"),
    "u8": ("i", "UK_OUT_U8", "uint8_t"),
}

MAX_OPS = 16


@dataclass(frozen=True)
class RenderedOp:
    """One op as the template emits it: its token, index in the list and the domain it runs in."""

    token: str
    index: int
    is_int: bool
    info: OpInfo


def check(ops: Sequence[str], out: str, family: str) -> List[RenderedOp]:
    """Validates an op list for a kernel of accumulator ``family`` ("float" / "int") storing
    ``out``; returns the ops with their domains. ValueError names what is wrong."""
    if out not in OUT_TYPES:
        raise ValueError(f"codegen epilogue: out must be one of {sorted(OUT_TYPES)}, got {out!r}")
    if len(ops) > MAX_OPS:
        raise ValueError(f"codegen epilogue: at most {MAX_OPS} ops, got {len(ops)}")
    domain = "f" if family == "float" else "i"
    quantized = False
    rendered = []
    for i, tok in enumerate(ops):
        if tok not in OPS:
            raise ValueError(f"codegen epilogue: unknown op {tok!r} at {i}; known: {sorted(OPS)}")
        if quantized:
            raise ValueError("codegen epilogue: requantize must be the last op")
        info = OPS[tok]
        if domain not in info.domains:
            raise ValueError(f"codegen epilogue: {tok} at {i} does not run on "
                             f"{'int32' if domain == 'i' else 'float'} values")
        rendered.append(RenderedOp(tok, i, domain == "i", info))
        if tok == "to_float":
            domain = "f"
        elif tok.startswith("requantize"):
            domain, quantized = "i", True
    want, _, _ = OUT_TYPES[out]
    if want != domain or (out in ("s8", "u8")) != quantized:
        raise ValueError(f"codegen epilogue: the ops end in {'int32' if domain == 'i' else 'float'} values"
                         f"{' (requantized)' if quantized else ''}; they cannot be stored as {out}")
    return rendered


def name_suffix(ops: Sequence[str], out: str) -> str:
    """The op list in a kernel name (XNNPACK-style: what it computes is in the name)."""
    return "__" + "_".join(list(ops) + ["to", out])
