"""Tile choice for the codegen path.

Heuristic (documented rule): the widest accumulator block that fits the
target's vector registers while keeping enough independent FMA chains:

* f32: avx512 16x16 (16 zmm accumulators), avx2 6x16 (12 ymm), generic 6x8
  (12 SSE/NEON-width vectors);
* s8 (K0=2): avx512/avx512_vnni 16x16, avx2 8x8, generic 8x8;
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
}

K0_OF = {"f32f32f32": 1, "s8s8s32": 2}


def choose_tile(types: str, target: str, M: int) -> Tuple[int, int, int]:
    """(M0, N0, K0) for a product with M rows on ``target``."""
    M0, N0 = DEFAULT_TILES[(types, target)]
    narrow = 1
    while narrow < M and narrow < M0:
        narrow *= 2
    return min(M0, narrow), N0, K0_OF[types]
