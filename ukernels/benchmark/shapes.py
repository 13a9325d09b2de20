"""The shapes a benchmark runs: the defaults per suite, and ``--shapes FILE``.

A shapes file is text, one product per line::

    # comments and blank lines are ignored
    1024x1024x1024            M x N x K
    1x4096x4096   decode      an optional label (one word) after the shape
    127 255 511               spaces work as separators too

Every workload runs every shape in the file (the decode-shaped workloads too)."""
import os
import re
from dataclasses import dataclass
from typing import List, Optional


@dataclass(frozen=True)
class Shape:
    M: int
    N: int
    K: int
    label: str = ""

    @property
    def name(self) -> str:
        return f"{self.M}x{self.N}x{self.K}"

    @property
    def flops(self) -> int:
        return 2 * self.M * self.N * self.K

    @property
    def decode(self) -> bool:
        """Few rows times a large weight: bound by reading the weight, reported in GB/s."""
        return self.M <= 16 and self.N * self.K >= 1 << 22


MAX_DIM = 1 << 16

SQUARE = [Shape(n, n, n, "square") for n in (256, 512, 1024, 2048)]
TRANSFORMER = [Shape(256, 4096, 1024, "prefill"), Shape(1, 4096, 4096, "decode"), Shape(16, 4096, 4096, "decode"),
               Shape(1, 11008, 4096, "decode")]
OTHER = [Shape(4096, 128, 4096, "skinny"), Shape(127, 255, 511, "odd")]
FULL = SQUARE + TRANSFORMER + OTHER
QUICK = [Shape(256, 256, 256, "square"), Shape(1024, 1024, 1024, "square"), Shape(256, 4096, 1024, "prefill"),
         Shape(1, 4096, 4096, "decode"), Shape(127, 255, 511, "odd")]
# LLM layers (in_features x out_features of TinyLlama-1.1B and SmolLM2-135M; the vocabulary
# projection) at decode (M = 1) and prompt processing (M = 128): the decode workloads
LLM = [Shape(1, 192, 576, "decode"), Shape(1, 576, 576, "decode"), Shape(1, 1536, 576, "decode"),
       Shape(1, 5632, 2048, "decode"), Shape(1, 2048, 5632, "decode"), Shape(1, 32000, 2048, "decode"),
       Shape(128, 5632, 2048, "prompt")]
SUITES = {"quick": QUICK, "full": FULL, "llm": LLM}

_LINE = re.compile(r"^\s*(\d+)\s*[x\s]\s*(\d+)\s*[x\s]\s*(\d+)(?:\s+([A-Za-z0-9_.-]+))?\s*$")


def parse_shapes(text: str, source: str = "<shapes>") -> List[Shape]:
    """Shapes from the text of a shapes file (format in the module doc); ValueError naming the
    line on anything else."""
    shapes = []
    for n, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0]
        if not body.strip():
            continue
        m = _LINE.match(body)
        if not m:
            raise ValueError(f"{source}:{n}: expected 'MxNxK [label]', got {line.strip()!r}")
        M, N, K = (int(g) for g in m.groups()[:3])
        if not all(1 <= d <= MAX_DIM for d in (M, N, K)):
            raise ValueError(f"{source}:{n}: dimensions must be between 1 and {MAX_DIM}, got {M}x{N}x{K}")
        shapes.append(Shape(M, N, K, m.group(4) or ""))
    if not shapes:
        raise ValueError(f"{source}: no shapes in the file (expected lines like '1024x1024x1024')")
    return shapes


def load_shapes(path: str) -> List[Shape]:
    """Shapes from a file; ValueError (not a traceback) when it cannot be read or parsed."""
    try:
        if os.path.getsize(path) > 1 << 20:
            raise ValueError(f"shapes file {path!r} is larger than 1 MiB; is it the right file?")
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ValueError(f"cannot read shapes file {path!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"shapes file {path!r} is not UTF-8 text") from None
    return parse_shapes(text, path)


def suite_shapes(suite: str, path: Optional[str]) -> List[Shape]:
    return load_shapes(path) if path else list(SUITES[suite])
