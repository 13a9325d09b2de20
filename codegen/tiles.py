"""Tile choice for the codegen path.

Heuristic (documented rule): the widest accumulator block that fits the
target's vector registers while keeping enough independent FMA chains:

* f32: avx512 16x16 (16 zmm accumulators), avx2 6x16 (12 ymm), generic 6x8
  (12 SSE/NEON-width vectors);
* s8 (K0=2; 4 on neon_dotprod): avx512/avx512_vnni 16x16, avx2 8x8, generic
  and neon 8x8;
* M0 narrows to the next power of two >= M (capped) for small M, as in the
  handwritten path (narrow f32 tiles split K over extra chains instead).
"""
from typing import Dict, Tuple

DEFAULT_TILES: Dict[Tuple[str, str], Tuple[int, int]] = {
    ("f32f32f32", "avx512"): (16, 16),
    ("f32f32f32", "avx512_vnni"): (16, 16),
    ("f32f32f32", "avx2"): (6, 16),
    ("f32f32f32", "generic"): (6, 8),
    ("s8s8s32", "avx512"): (16, 16),
    ("s8s8s32", "avx512_vnni"): (16, 16),
    ("s8s8s32", "avx2"): (8, 8),
    ("s8s8s32", "generic"): (8, 8),
    ("f32f32f32", "neon"): (8, 8),
    ("f32f32f32", "neon_dotprod"): (8, 8),
    ("s8s8s32", "neon"): (8, 8),
    ("s8s8s32", "neon_dotprod"): (8, 8),
}


def k0_of(types: str, target: str) -> int:
    """K0 of this element-type triple on this target (int family: the dot's group size)."""
    from .render import KernelSpec
    return KernelSpec(types, 1, 1, target).K0


def default_tile(types: str, target: str) -> Tuple[int, int]:
    """(M0, N0): the table entry, or the family's entry (f32 / s8) for the other element
    types (their tiles are the same register blocking, only the operand reads differ)."""
    from .targets import ELEMENT_TYPES
    hit = DEFAULT_TILES.get((types, target))
    if hit is None:
        family = ELEMENT_TYPES[types].family if types in ELEMENT_TYPES else "float"
        hit = DEFAULT_TILES[("f32f32f32" if family == "float" else "s8s8s32", target)]
    return hit


def choose_tile(types: str, target: str, M: int) -> Tuple[int, int, int]:
    """(M0, N0, K0) for a product with M rows on ``target``."""
    M0, N0 = default_tile(types, target)
    narrow = 1
    while narrow < M and narrow < M0:
        narrow *= 2
    return min(M0, narrow), N0, k0_of(types, target)
