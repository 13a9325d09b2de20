"""Planning a matmul dispatch: the ukernel (register) tile, the workgroup
(cache) tiles and the thread count.

Register blocking -- M0 x N0 x K0, the ukernel's tile -- is fixed per element
types and ISA: the C tile table's rows marked ``plan`` (``tile_table``, read from
csrc/arch/*/uk_mmt4d_*_tiles.inl through uk_mmt4d_tile_desc); M0 narrows to the next power of two >= M
(capped at M0) for small M (IREE's narrow tiles: a 1-row matvec uses the 1x16 tile instead
of wasting 15/16 of a 16x16 one).

Cache blocking (BLIS naming), from the L1d/L2 sizes of this CPU:

* KC (K block): the lhs micro-panel (M0 x KC) plus one rhs micro-panel
  (N0 x KC) fill L1d, so the lhs micro-panel stays in L1 while the ukernel
  streams rhs micro-panels past it (the hardware prefetcher brings the next
  from L2). With a prepacked rhs and a single row of tiles (M <= M0), long K
  blocks (``MAX_STREAM_K``) stream each panel.
* NC (workgroup width): the rhs block KC x NC fills at most half of L2, so it
  is reused from L2 by every M0-row step of the workgroup.
* MC (workgroup height): the MC x NC int32/f32 accumulator fills at most a
  quarter of L2 (``ACC_L2_SHARE``; it is revisited once per K block).
* Parallelism: while there are fewer than 4 workgroups per thread, NC and
  then MC are halved (never below one ukernel tile).
* Threads: one per ``MIN_FLOPS_PER_THREAD`` of work (2*M*N*K), capped at the
  pool size, so tiny products stay on the calling thread.
* One workgroup column (NC = N) when the whole packed rhs fits an eighth of L3
  (``l3_size``) and an M0 x N accumulator its budget: rows are split instead (also for
  parallelism, while the row workgroups balance over the threads), each workgroup packs
  its own lhs rows right before use (``lhs_pack_in_tile``), and every row workgroup
  streams the rhs from L3. Up to ``ONE_ROW_MAX_M`` rows, an rhs packed by the call keeps
  one workgroup row instead (below).
* rhs packing: in a separate parallel phase before the tiles, unless there is
  a single workgroup row (M <= MC, e.g. decode-time matvecs): then every rhs
  block is used once, and each workgroup packs its KC x NC block into its own
  L2-sized scratch right before the ukernel call (BLIS's order), so b is read
  from memory once instead of written and re-read packed.
* rhs read in place (small M, ``rhs_in_place``): when b has unit column stride,
  M <= ``DIRECT_MAX_M`` and the register tile has K0 = 1 (the float tiles), b
  is not packed at all: the ukernel reads its rows as the K steps of the rhs
  panels (``uk_mmt4d_params_t.rhs_stride1``). KC is then a few rows
  (``direct_kc``, 8): each K block streams KC rows of b side by side -- several
  sequential streams, which this memory system needs to reach its read
  bandwidth (one stream: ~12 GB/s; four: ~25 GB/s, measured) -- while the
  MC x NC accumulator stays in L1/L2. 16-bit float inputs keep their own tiles
  (no widening: the narrow rows are what is read).
"""
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Optional, Tuple

from ukernels.abi import ElementTypes

@dataclass(frozen=True)
class TileRow:
    """One row of the C tile table (csrc/uk_mmt4d_internal.h: UK_TILE), read through
    uk_mmt4d_tile_desc: the table is the one list of tiles; the planner only reads it."""

    types: str  # element-type triple name, e.g. "s8s8s32"
    M0: int
    N0: int
    K0: int
    required_cpu: int
    required_flags: int
    plan: bool  # the planner's register tile for ``types`` where the row applies
    generic: bool  # a portable row (any shape; M0 x N0 x K0 its default register tile)
    has_scaled: bool
    has_group: bool
    has_scaled_group: bool
    name: str


@lru_cache(maxsize=None)
def tile_table() -> Tuple[TileRow, ...]:
    """The tile table of this build, in selection order (the last matching row wins), then
    the portable rows."""
    from ukernels._lib import ffi, lib
    from ukernels.abi import ELEMENT_TYPES
    by_code = {t.uk_type: t.name for t in ELEMENT_TYPES.values()}
    rows = []
    desc = ffi.new("uk_mmt4d_tile_desc_t*")
    for i in range(lib.uk_mmt4d_tile_count()):
        if lib.uk_mmt4d_tile_desc(i, desc) != lib.UK_STATUS_OK:
            raise RuntimeError(f"uk_mmt4d_tile_desc({i}) failed")
        if desc.type not in by_code:
            continue  # a triple Python does not expose
        rows.append(TileRow(by_code[desc.type], desc.M0, desc.N0, desc.K0, int(desc.required_cpu),
                            int(desc.required_flags), bool(desc.plan), bool(desc.generic), bool(desc.has_scaled),
                            bool(desc.has_group), bool(desc.has_scaled_group), ffi.string(desc.name).decode()))
    return tuple(rows)


MIN_FLOPS_PER_THREAD = 4_000_000
STREAM_NC_TILES = 16  # workgroup width (tiles) of prepacked one-row products, at least
DIRECT_MAX_M = 32  # largest M whose rhs is read in place (see the module doc)
MAX_STREAM_K = 1024  # K block of prepacked single-row products (see plan_matmul)
DEFAULT_L1D = 32 * 1024
DEFAULT_L2 = 512 * 1024


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    mult = 1
    if text.endswith("K"):
        mult, text = 1024, text[:-1]
    elif text.endswith("M"):
        mult, text = 1024 * 1024, text[:-1]
    return int(text) * mult


@lru_cache(maxsize=None)
def cache_entries() -> Tuple[Dict[str, str], ...]:
    """cpu0's cache levels as sysfs describes them (each a dict of its level, type, size and
    shared_cpu_list files' text, absent files left out), in index order; those read before an
    unreadable one (none off Linux)."""
    out = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            if not entry.startswith("index"):
                continue
            info = {}
            for name in ("level", "type", "size", "shared_cpu_list"):
                path = os.path.join(base, entry, name)
                if name == "shared_cpu_list" and not os.path.exists(path):
                    continue
                with open(path) as f:
                    info[name] = f.read().strip()
            out.append(info)
    except OSError:
        pass
    return tuple(out)


@lru_cache(maxsize=None)
def cache_sizes() -> Tuple[int, int]:
    """(L1d, L2) bytes per core of cpu0, from sysfs; defaults if unreadable."""
    l1d, l2 = DEFAULT_L1D, DEFAULT_L2
    try:
        for e in cache_entries():
            level, kind, size = int(e["level"]), e["type"], _parse_size(e["size"])
            if level == 1 and kind in ("Data", "Unified"):
                l1d = size
            elif level == 2 and kind in ("Data", "Unified"):
                l2 = size
    except ValueError:
        pass
    return l1d, l2


DEFAULT_L3 = 8 * 1024 * 1024


@lru_cache(maxsize=None)
def l3_size() -> int:
    """Bytes of cpu0's last-level (L3) cache, from sysfs; DEFAULT_L3 if unreadable."""
    try:
        for e in cache_entries():
            if int(e["level"]) == 3 and e["type"] in ("Data", "Unified"):
                return _parse_size(e["size"])
    except (ValueError, KeyError):
        pass
    return DEFAULT_L3


def _isa_bits(isa: str) -> int:
    from ukernels import cpu
    try:
        return cpu.isa_cpu_bits(isa)
    except KeyError:  # a level of another architecture (e.g. "neon" planned on x86): no rows apply
        return 0


@lru_cache(maxsize=None)
def _register_tile(types_name: str, isa: str, flags: int = 0, max_k0: int = 1 << 30) -> Tuple[int, int, int]:
    """The planner's register tile: the last table row marked ``plan`` for this triple whose
    CPU bits the ISA level has and whose required flags ``flags`` carries (and K0 <= max_k0),
    else the portable row's."""
    bits = _isa_bits(isa)
    tile = None
    for r in tile_table():
        if r.generic and r.types == types_name and tile is None:
            tile = (r.M0, r.N0, r.K0)
    for r in tile_table():
        if (r.plan and not r.generic and r.types == types_name and r.K0 <= max_k0
                and bits & r.required_cpu == r.required_cpu and flags & r.required_flags == r.required_flags):
            tile = (r.M0, r.N0, r.K0)
    if tile is None:
        raise KeyError(f"no tile for {types_name} in this build's table")
    return tile


def native_16bit_float_dot(types: ElementTypes, isa: str) -> bool:
    """Whether this CPU has a dot-product instruction for these 16-bit float inputs (their
    register tile pairs K: K0 > 1)."""
    return types.name in ("f16f16f32", "bf16bf16f32") and _register_tile(types.name, isa)[2] > 1


def ukernel_tile(types: ElementTypes, isa: str, M: int, flags: int = 0) -> Tuple[int, int, int]:
    """(M0, N0, K0) for these types at this ISA (and this CPU's dot-product features),
    narrowed for small M. ``flags``: uk_mmt4d flags the call will carry (rows that require
    one, e.g. UK_FLAG_LHS_S8_SYMMETRIC, apply only with it)."""
    return _narrowed(_register_tile(types.name, isa, flags), M)


def _narrowed(tile: Tuple[int, int, int], M: int) -> Tuple[int, int, int]:
    """``tile`` with M0 cut to the smallest power of two >= M (small M: narrow tiles)."""
    M0, N0, K0 = tile
    narrow = 1
    while narrow < M and narrow < M0:
        narrow *= 2
    return min(M0, narrow), N0, K0


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_down(x: int, m: int) -> int:
    return max(m, (x // m) * m)


def kernel_types_for(types: ElementTypes, isa: str, prepacked: bool) -> ElementTypes:
    """The triple the ukernel computes. Shape class: 16-bit float inputs (f16, bf16) whose
    rhs is packed by this call, on x86 SIMD levels: both operands are widened to f32 while
    they are packed and the f32 tile runs -- on AVX2 the 16-bit tiles convert in registers
    on every k step and reach ~0.65-0.74x of f32 (bench/bench_types.py), the widened call
    ~0.9-1.0x. Prepacked (narrow) weights keep the 16-bit tiles: those calls are usually
    decode-shaped, bound by reading the weight, where narrow bytes win."""
    if (types.name in ("f16f16f32", "bf16bf16f32") and not prepacked and isa in ("avx2", "avx512")
            and not native_16bit_float_dot(types, isa)):  # vdpbf16ps: bf16 at twice f32's rate, keep it
        from ukernels.abi import F32F32F32
        return F32F32F32
    return types


@dataclass(frozen=True)
class MatmulPlan:
    """Everything the C dispatch needs besides the buffers."""

    types: ElementTypes  # the triple the ukernel computes (see kernel_types_for)
    isa: str
    M: int
    N: int
    K: int
    M0: int
    N0: int
    K0: int
    MC: int
    NC: int
    KC: int
    threads: int
    # 1 workgroup row (M <= MC): each workgroup packs its rhs blocks in its scratch
    rhs_pack_in_tile: bool = False
    # small M, K0 = 1: the ukernel reads b's rows in place (with rhs_pack_in_tile: only
    # a partial last column tile is packed)
    rhs_direct: bool = False
    # 1 workgroup column (N <= NC): each workgroup packs its KC x MC lhs blocks in its scratch
    lhs_pack_in_tile: bool = False
    # derived sizes, filled in by __post_init__
    M1: int = 0
    N1: int = 0
    K1: int = 0
    lhs_packed_bytes: int = 0
    rhs_packed_bytes: int = 0
    # (each thread's scratch -- accumulator, output row, in-tile blocks -- is sized by the C
    # dispatch's own layout: uk_matmul_scratch_bytes, runtime/dispatch.py)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "M1", _ceil_div(self.M, self.M0))
        set_(self, "N1", _ceil_div(self.N, self.N0))
        set_(self, "K1", _ceil_div(self.K, self.K0))
        set_(self, "lhs_packed_bytes", self.M1 * self.K1 * self.M0 * self.K0 * self.types.lhs.itemsize)
        set_(self, "rhs_packed_bytes", _ceil_div(self.N1 * self.K1 * self.N0 * self.K0 * self.types.rhs_bits, 8))

    @property
    def workgroups(self) -> Tuple[int, int]:
        """Workgroup tiles along M and N."""
        return _ceil_div(self.M1, self.MC // self.M0), _ceil_div(self.N1, self.NC // self.N0)


DIRECT_KC = 8
ONE_ROW_MAX_M = 512  # rows up to which one workgroup row is planned (see plan_matmul)


def ACC_L2_SHARE(l2: int) -> int:  # noqa: N802 - a planner constant, as a function of L2
    """Bytes of L2 the MC x NC accumulator may take (see plan_matmul)."""
    return l2 // 4


def direct_kc(M0: int, K: int) -> int:
    """K block of an rhs read in place: 8 rows, i.e. 8 side-by-side read streams. More rows
    lose twice (measured, plain matmul 1..32 x 4096 x 4096 vs numpy, 1 thread, KC 4/8/16/32:
    M=1 1.00/1.15/0.56/0.36, M=16 0.87/0.96/0.62/0.65): rows a power-of-two stride apart
    share L1 sets (8-way), and the row block no longer fits beside the accumulator."""
    return max(1, min(K, DIRECT_KC))


# Largest M at which 16-bit float inputs whose dot-product tile pairs K (vdpbf16ps: K0 = 2, so
# b must be packed) still read b in place through their K0 = 1 widening tiles instead.
# Measured (bf16 matmul M x 4096 x 4096, 1 thread, Zen 4, GFLOP/s read in place / packed
# in-tile for vdpbf16ps): M=1 21.1/4.6, M=4 31.0/17.5, M=6 37.8/-, M=8 27.7/24.5,
# M=10 -/28.9, M=16 35.4/47.1, M=32 39.0/73.3.
NATIVE_DOT_DIRECT_MAX_M = 8


def _widening_tile(types: ElementTypes, isa: str, M: int) -> Tuple[int, int, int]:
    """The K0 = 1 tile of these 16-bit float types without their dot-product feature tile."""
    return _narrowed(_register_tile(types.name, isa, 0, 1), M)


def _reads_rhs_in_place(types: ElementTypes, M: int, isa: str, tile, prepacked: bool, rhs_in_place: bool) -> bool:
    if not rhs_in_place or prepacked or M > DIRECT_MAX_M:
        return False
    if tile is None and M <= NATIVE_DOT_DIRECT_MAX_M and native_16bit_float_dot(types, isa):
        return _widening_tile(types, isa, M)[2] == 1
    K0 = tile[2] if tile is not None else ukernel_tile(types, isa, M)[2]
    return K0 == 1


@lru_cache(maxsize=1024)
def plan_matmul(types: ElementTypes, M: int, N: int, K: int, isa: str, max_threads: int,
                tile: Optional[Tuple[int, int, int]] = None, prepacked: bool = False,
                rhs_in_place: bool = False, k_align: int = 1, batch: int = 1,
                rhs_shared: bool = False, narrow_to: Optional[ElementTypes] = None, flags: int = 0) -> MatmulPlan:
    """The dispatch plan for an (M, K) x (K, N) product (rules in the module doc).

    ``tile`` overrides the handwritten ukernel tile (the codegen path picks its own);
    ``prepacked``: the rhs is already packed (``Linear``), so it is never packed here;
    ``rhs_in_place``: b has unit column stride, so small-M calls may read it unpacked;
    ``k_align``: K blocks are a multiple of this many elements (the group size of
    group-quantized weights, whose scales change at group boundaries);
    ``batch``: that many independent products in the call (threads and workgroup counts
    cover all of them); ``rhs_shared``: one b for all of them, packed once (never in-tile);
    ``narrow_to``: float32 operands rounded to this triple (bf16) while they are packed --
    precision="bf16" without a rounded copy of either operand (so b is never read in place);
    ``flags``: uk_mmt4d flags the call carries (tile rows that require them may be planned)."""
    shared = batch > 1 and rhs_shared
    if shared or narrow_to is not None:
        rhs_in_place = False
    if narrow_to is not None:
        types = narrow_to
    direct = _reads_rhs_in_place(types, M, isa, tile, prepacked, rhs_in_place)
    if tile is None and not direct:
        types = kernel_types_for(types, isa, prepacked)
    if tile is None and direct and native_16bit_float_dot(types, isa):
        tile = _widening_tile(types, isa, M)
    M0, N0, K0 = tile if tile is not None else ukernel_tile(types, isa, M, flags)
    l1d, l2 = cache_sizes()
    esize = types.lhs.itemsize
    acc_size = types.acc.itemsize
    K1 = max(1, _ceil_div(K, K0))
    N1 = max(1, _ceil_div(N, N0))
    M1 = max(1, _ceil_div(M, M0))

    # K block: one lhs and one rhs micro-panel fill L1 (the hardware prefetcher streams the
    # next rhs panel from L2). The accumulator (MC x NC, 4-byte elements) is held to a
    # quarter of L2 and the rhs block (KC x NC) to half. Measured here (Zen 4, L1d 32 KiB, L2
    # 1 MiB; f32 16x16x1, 1 thread, GFLOP/s, numpy alongside): 2048^3 76.7 with the earlier
    # L1/2 and L2/8 (32x1024, KC 128) vs 100.6 with these (128x512, KC 256), numpy 100.1;
    # 1024^3 92.7 vs 98.4 (numpy 95.8); 256x4096x1024 90.6 vs 96.0 (256x256; numpy 86.2).
    kc1 = max(1, l1d // ((M0 + N0) * K0 * esize))
    if M1 == 1 and prepacked:
        # One row of tiles over a prepacked rhs: each packed panel is read once,
        # and long K blocks stream it without restarts (measured on Linear at
        # 4x4096x4096: 45 vs 30 GFLOP/s for whole-K calls). Not when the rhs is
        # packed here: the in-tile blocks would shrink to a few columns
        # (16x4096x4096: 29 vs 44). Capped at MAX_STREAM_K elements: float
        # tiles add each K block's sum from zero (uk_mmt4d_internal.h), so the
        # error grows like KC + K/KC, as BLAS's does, not along all of K.
        # Measured (Linear, 1 thread, K blocks 512/1024/2048/4096): M=1 26.3/27.7/
        # 27.6/27.3 GB/s with the grouped one-row tiles; error vs numpy at K=1e5
        # 1.23/1.29/1.48/1.89x (M=1) and 0.78/1.36/1.60/2.30x (M=4): 1024.
        kc1 = max(kc1, MAX_STREAM_K // K0)
    if direct:
        kc1 = direct_kc(M0, K1)
    kc1 = min(kc1, K1)
    if k_align > 1:
        g1 = max(1, k_align // K0)
        kc1 = max(g1, kc1 // g1 * g1)
    KC = kc1 * K0
    nc1 = max(1, (l2 // 2) // (KC * N0 * esize))
    if M1 == 1 and prepacked:
        # streamed panels are used once, so L2 does not bound NC; the tile group of
        # one-row tiles (csrc/uk_mmt4d_internal.h: UK_TILE_GROUP) needs several per call
        nc1 = max(nc1, STREAM_NC_TILES)
    nc1 = min(nc1, N1)
    # One workgroup column (NC = N; rows split, each workgroup packing its own lhs rows in tile:
    # no lhs pack phase, no barrier before the tiles, no lhs written by one core and read by
    # the other) when the whole packed rhs stays in L3 (an eighth of it; every row workgroup
    # streams it) and an accumulator of M0 rows x N fits its budget. Measured here (median
    # GFLOP/s of interleaved blocks, `python bench/ab_plan.py SHAPE --kind K --threads T OLD`,
    # this plan vs the earlier one): Linear 512^3 1T 106 vs 101 (512x128), 2T 213 vs 205
    # (512x64); 256^3 2T 199 vs 147 (256x32); 127x255x511 2T 201 vs 186 (128x32); 64x512x512
    # 2T 195 vs 150 (64x64); 1024^3 1T 108 vs 101, 2T 216 vs 203 (64x1024 vs 128x512); matmul
    # 1024^3 1T 104 vs 97, 2T 191 vs 181; 4096x1024x1024 2T 217 vs 205; 1024x4096x256 2T 192 vs
    # 181 (16x4096). Not with a larger rhs: 2048x1024x2048 (8 MiB) 2T 192 vs 197, 2048^3
    # (16 MiB) 1T 90 vs 105. Not, up to ONE_ROW_MAX_M rows, when this call packs the rhs: the
    # one-row plan packs it in tile; split rows would read panels both threads' pack tasks
    # wrote, half from the other core (matmul 127x255x511 2T: one-row 167 vs 157).
    one_column = (not direct and K * N * types.rhs_bits // 8 <= l3_size() // 8
                  and N1 * N0 * M0 * acc_size <= ACC_L2_SHARE(l2)
                  and (prepacked or M1 * M0 > ONE_ROW_MAX_M))
    if one_column:
        nc1 = N1
    mc1 = max(1, ACC_L2_SHARE(l2) // (nc1 * N0 * M0 * acc_size))
    mc1 = min(mc1, M1)
    if not direct and not one_column and M1 > mc1 and M1 * M0 <= ONE_ROW_MAX_M:
        # Up to ONE_ROW_MAX_M rows: one workgroup row (all of M) and narrower columns, so each
        # rhs block is read (and, unless prepacked, packed in tile) once per call instead of
        # once per MC rows. Measured here (Zen 4, GFLOP/s, interleaved with numpy's; KC 128 and
        # an L2/8 accumulator then): matmul 256x4096x1024 1T 88 -> 97 (MC x NC 32x1024 ->
        # 256x128), 2T 175; 512x4096x1024 1T 92.6 -> 98.5 (512x64); Linear 256x4096x1024 1T
        # 98 -> 103-105, 2T 189 -> 201-205. Not above: 1024^3 1T 101.9 (32x1024) vs 90.9-95.3
        # (256x128 .. 1024x32).
        mc1 = M1
        nc1 = max(1, min(nc1, ACC_L2_SHARE(l2) // (mc1 * M0 * N0 * acc_size)))
    if direct:
        mc1 = M1  # one workgroup row: b is streamed once
        nc1 = max(1, min(nc1, ACC_L2_SHARE(l2) // (mc1 * M0 * N0 * acc_size)))  # the accumulator stays in L2

    flops = 2 * M * N * K * batch
    threads = max(1, min(max_threads, flops // MIN_FLOPS_PER_THREAD))
    if threads > 1:
        # b read in place: one workgroup per thread, so each streams long row segments
        # (2 KB segments per row prefetch poorly: 1x4096x4096, 2 threads, 0.61x numpy with
        # 8 workgroups)
        want = threads if direct else 4 * threads
        if one_column and not direct:
            # rows first; the column stays whole when the row workgroups balance over the
            # threads (64x512x512 2T: 4 workgroups of 16 rows 195 vs 8 of 16x256 172); 48 rows
            # make 3 for 2 threads, so columns are split too (48x256x2048 2T: 12 of 16x64 173
            # vs 3 of 16x256 145)
            while batch * _ceil_div(M1, mc1) < want and mc1 > 1:
                mc1 = _ceil_div(mc1, 2)
            rows = batch * _ceil_div(M1, mc1)
            if rows >= want or rows % threads == 0:
                want = 0
        while batch * _ceil_div(M1, mc1) * _ceil_div(N1, nc1) < want and nc1 > 1:
            nc1 = _ceil_div(nc1, 2)
        while batch * _ceil_div(M1, mc1) * _ceil_div(N1, nc1) < want and mc1 > 1 and not direct:
            mc1 = _ceil_div(mc1, 2)
    rhs_pack_in_tile, lhs_pack_in_tile = in_tile_packing(M1, N1, mc1, nc1, prepacked or shared, direct)
    return MatmulPlan(types, isa, M, N, K, M0, N0, K0, mc1 * M0, nc1 * N0, KC, threads, rhs_pack_in_tile,
                      direct, lhs_pack_in_tile)


def in_tile_packing(M1: int, N1: int, mc1: int, nc1: int, rhs_packed_once: bool, rhs_direct: bool
                    ) -> Tuple[bool, bool]:
    """(rhs_pack_in_tile, lhs_pack_in_tile) of workgroups of mc1 x nc1 tiles over M1 x N1 tiles.
    ``rhs_packed_once``: the rhs is prepacked, or shared by a batch and packed once.

    One workgroup row: every rhs block is used by exactly one workgroup, so it is packed right
    before use (in cache) instead of in a separate phase that writes and re-reads all of the
    packed rhs through memory. One workgroup column: likewise every lhs block is used by one
    workgroup (skinny 4096x128x4096: 79 -> 87 GFLOP/s on 1 thread, 156 -> 173 on 2; numpy 88 /
    169). b read in place (rhs_direct) keeps its in-tile block for a partial column tile and
    packs no lhs in tile."""
    rhs_in_tile = _ceil_div(M1, mc1) == 1 and not rhs_packed_once
    lhs_in_tile = _ceil_div(N1, nc1) == 1 and not rhs_direct
    return rhs_in_tile, lhs_in_tile
