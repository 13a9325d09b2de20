"""Rendering one mmt4d ukernel from its template."""
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import jinja2

from . import epilogue as epilogue_ops
from .targets import ELEMENT_TYPES, Target, spelling, target as get_target

TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
# One template per accumulator family; the element types are data (targets.ELEMENT_TYPES, spelling()).
_FAMILY_TEMPLATES = {"float": "mmt4d_f32.c.j2", "int": "mmt4d_s8.c.j2"}


@dataclass(frozen=True)
class KernelSpec:
    """What one generated ukernel is specialised for."""

    types: str  # a key of targets.ELEMENT_TYPES, e.g. "f32f32f32", "bf16bf16f32", "u8s8s32"
    M0: int
    N0: int
    target: str
    static_k: Optional[int] = None  # K (in tiles) the caller's K blocks use, if known
    # fusion="register": the lowered epilogue op list (codegen/epilogue.py tokens) applied in
    # registers at the last K block, and the final type stored ("f32", "s8", ...); out "" is a
    # plain kernel (the dispatch applies the epilogue per tile)
    epilogue: Tuple[str, ...] = ()
    out: str = ""

    @property
    def fused(self) -> bool:
        return bool(self.out)

    @property
    def K0(self) -> int:
        """1 for the float family; the integer dot's group size (2, or 4 with NEON sdot)."""
        if self.types not in ELEMENT_TYPES or ELEMENT_TYPES[self.types].family == "float":
            return 1
        sp = spelling(get_target(self.target), self.types)
        return sp.k0 if sp is not None else 2

    @property
    def name(self) -> str:
        """XNNPACK-style: types, tile and target in the name."""
        k = f"_k{self.static_k}" if self.static_k else ""
        fused = epilogue_ops.name_suffix(self.epilogue, self.out) if self.out else ""
        return f"ukg_mmt4d_{self.types}_{self.M0}x{self.N0}x{self.K0}{k}__{self.target}{fused}"

    @classmethod
    def from_json(cls, doc, what: str = "kernel spec") -> "KernelSpec":
        """A spec from untrusted JSON (a manifest, cache metadata): every field type-checked,
        then ``check()``ed; anything else raises ValueError naming ``what``."""
        if not isinstance(doc, dict):
            raise ValueError(f"{what}: expected an object, got {type(doc).__name__}")
        extra = set(doc) - {"types", "M0", "N0", "target", "static_k", "epilogue", "out"}
        if extra:
            raise ValueError(f"{what}: unknown fields {sorted(extra)}")
        types, target, M0, N0, sk = (doc.get("types"), doc.get("target"), doc.get("M0"), doc.get("N0"),
                                     doc.get("static_k"))

        def small_int(v):
            return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096

        if not isinstance(types, str) or not isinstance(target, str):
            raise ValueError(f"{what}: 'types' and 'target' must be strings")
        if not small_int(M0) or not small_int(N0):
            raise ValueError(f"{what}: 'M0' and 'N0' must be integers in [1, 4096], got {M0!r}, {N0!r}")
        if sk is not None and not (isinstance(sk, int) and not isinstance(sk, bool) and 1 <= sk <= 1 << 40):
            raise ValueError(f"{what}: 'static_k' must be null or a positive integer, got {sk!r}")
        ep, out = doc.get("epilogue", []), doc.get("out", "")
        if not isinstance(ep, (list, tuple)) or not all(isinstance(x, str) for x in ep) or not isinstance(out, str):
            raise ValueError(f"{what}: 'epilogue' must be a list of op names and 'out' a string")
        if ep and not out:
            raise ValueError(f"{what}: an 'epilogue' needs its 'out' type")
        spec = cls(types, M0, N0, target, sk, tuple(ep), out)
        try:
            spec.check()
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
        return spec

    def check(self) -> Target:
        """Validates the spec; returns its target."""
        if self.types not in ELEMENT_TYPES:
            raise ValueError(f"codegen: unsupported element types {self.types!r}; supported: {sorted(ELEMENT_TYPES)}")
        t = get_target(self.target)
        if spelling(t, self.types) is None:
            raise ValueError(f"codegen: target {t.name} has no spelling for {self.types} yet")
        if self.M0 < 1 or self.N0 < 1:
            raise ValueError(f"codegen: tile {self.M0}x{self.N0} must be positive")
        if self.static_k is not None and self.static_k < 1:
            raise ValueError(f"codegen: static_k must be >= 1 or None, got {self.static_k}")
        family = ELEMENT_TYPES[self.types].family
        if self.out or self.epilogue:
            epilogue_ops.check(self.epilogue, self.out, family)
            if family == "int" and not spelling(t, self.types).dot and self.N0 % 4:
                raise ValueError(f"codegen: a fused epilogue on the portable int kernel needs N0 % 4 == 0, "
                                 f"got N0={self.N0}")
        lanes = t.f32_lanes if family == "float" else (t.s32_lanes or 1)
        if family == "float" or spelling(t, self.types).dot:
            if self.N0 % lanes:
                raise ValueError(f"codegen: N0={self.N0} must be a multiple of the {t.name} vector width {lanes}")
            if not t.fits(self.M0, self.N0, lanes):
                raise ValueError(f"codegen: tile {self.M0}x{self.N0} needs more than the "
                                 f"{t.vector_registers} vector registers of {t.name}")
        return t


@lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def k_split(spec: KernelSpec) -> int:
    """Chains per accumulator: narrow f32 tiles split K so that enough FMAs are
    in flight (latency 4 x 2 pipes needs >= 8 independent accumulators)."""
    if ELEMENT_TYPES[spec.types].family != "float":
        return 1
    t = get_target(spec.target)
    acc = spec.M0 * (spec.N0 // t.f32_lanes)
    ks = 1
    while acc * ks * 2 <= 8 and (acc * ks * 2 + 2 * (spec.N0 // t.f32_lanes) * ks) <= t.vector_registers:
        ks *= 2
    return ks


TILE_GROUP = 4  # one-row tiles computed side by side (csrc/uk_mmt4d_internal.h: UK_TILE_GROUP)


@lru_cache(maxsize=256)
def render(spec: KernelSpec) -> str:
    """The C source of the kernel ``spec.name``."""
    t = spec.check()
    e = ELEMENT_TYPES[spec.types]
    template = _environment().get_template(_FAMILY_TEMPLATES[e.family])
    fused = {}
    if spec.fused:
        eops = epilogue_ops.check(spec.epilogue, spec.out, e.family)
        tokens = {op.token for op in eops}
        # v (float lanes) / vi (int32 lanes): the family's own plus the other when an op crosses over
        fused = dict(eops=eops, out=spec.out, uk_out=epilogue_ops.OUT_TYPES[spec.out][1],
                     octype=epilogue_ops.OUT_TYPES[spec.out][2],
                     needs_f="to_float" in tokens, needs_i=bool(tokens & {"requantize", "requantize_col"}))
    return template.render(name=spec.name, t=t, M0=spec.M0, N0=spec.N0, K0=spec.K0, static_k=spec.static_k,
                           KS=k_split(spec), G=TILE_GROUP, types=spec.types, e=e, sp=spelling(t, spec.types),
                           fused=spec.fused, **fused)

