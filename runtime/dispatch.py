"""Executing a planned matmul: fill the C dispatch descriptor and run it on
the pool with the GIL released (cffi releases it around every C call)."""
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ukernels._lib import ffi, lib
from ukernels._sync import BoundedMemo
from ukernels.abi import ElementTypes, UkernelError, address_of, cpu_data_for, tile_function_name
from ukernels.runtime import interrupt, threads, workspace
from ukernels.runtime.epilogue import LoweredEpilogue, lower, to_c
from ukernels.runtime.fusion import Fusion, check_fusion, register_form, resolve_fusion
from ukernels.runtime.plan import MatmulPlan, plan_matmul

# The codegen modules the "auto" rule consults are imported here, not on the
# first call: an import still in progress when a signal handler re-enters
# ukernels on the same thread would hand the handler a half-initialised module.
from ukernels.codegen import CodegenError, cache, prebuilt, targets, tiles, tuning  # noqa: E402

_HANDWRITTEN = ffi.cast("uk_mmt4d_fn_t", ffi.addressof(lib, "uk_mmt4d"))


@dataclass(frozen=True)
class Resolution:
    """What a call resolves to: the plan and the ukernel behind the ABI."""

    plan: MatmulPlan
    backend: str  # "ukernel" or "codegen"
    function: str  # the tile function (handwritten) or generated kernel name
    fn: object  # uk_mmt4d_fn_t
    flags: int  # extra mmt4d flags
    kernel: Optional[object] = None  # codegen.cache.CompiledKernel
    fused: bool = False  # the generated kernel applies the epilogue in registers (fusion="register")
    # descriptors with this resolution's fixed fields filled in, by (input type, ISA, batch):
    # a call copies one and sets only its operands (~25 fewer cffi field writes, ~3.5 us)
    templates: dict = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class PackedRhs:
    """A rhs packed once as [N1][K1][N0][K0] (ukernels.Linear's weight; int4: nibbles)."""

    data: np.ndarray
    N: int
    K: int
    N0: int
    K0: int
    # group-quantized weights: per-group scales [N1][G][N0] float32 (ukernel UK_FLAG_GROUP_SCALES)
    group_scales: Optional[np.ndarray] = None
    group_size: int = 0


def lhs_flags(types: ElementTypes, lhs_symmetric: bool) -> int:
    """uk_mmt4d flags a call may add for what it promises of its lhs (``lhs_symmetric``: an s8
    lhs without -128, as ukernels.quantize.quantize_rows makes), which enable the tiles exact
    only then (runtime/plan.py: tile rows that require flags)."""
    return lib.UK_FLAG_LHS_S8_SYMMETRIC if lhs_symmetric and types.name == "s8s8s32" else 0


def fusion_for(fusion: str, backend: str, types: ElementTypes, M: int, N: int, K: int, isa: str,
               lowered: LoweredEpilogue, group_scaled: bool = False, narrowed: bool = False) -> Fusion:
    """Where this call's epilogue runs (runtime/fusion.py): "register" asks for a generated kernel
    that applies it in registers (an error with the handwritten backend, or where no register form
    exists); "auto" takes it where the backend resolves to codegen and tune measured it faster."""
    if fusion == "tile":
        return _TILE
    check_fusion(fusion, backend, group_scaled, narrowed)
    if fusion == "register":
        return resolve_fusion("register", "codegen", lowered, None)
    if group_scaled or narrowed:
        return _TILE_AUTO_HANDWRITTEN
    chosen = backend
    if backend == "auto":
        chosen = "codegen" if _auto_uses_codegen(types, M, N, K, isa, threads.get_num_threads()) else "ukernel"
    if chosen != "codegen":
        return _TILE_AUTO_HANDWRITTEN
    form, _ = register_form(lowered)
    tuned = None
    if form is not None:
        sig = Fusion(True, "", *form).signature
        tuned = tuning.tuned_fusion(types.name, targets.target_for_isa(isa, types.name), M, N, K, sig)
    return resolve_fusion("auto", chosen, lowered, tuned)


_TILE = Fusion(False, "fusion='tile' asked")
_TILE_AUTO_HANDWRITTEN = Fusion(False, "auto: the handwritten ukernels leave the epilogue to the tile level")


def _tile_for_packed(types: ElementTypes, M: int, isa: str, backend: str, packed, lhs_symmetric: bool = False):
    """The register tile for a prepacked rhs: M0 by the usual rule, N0/K0 fixed by the packing.
    ``packed`` is a PackedRhs, or a provider with ``for_tile(N0, K0) -> PackedRhs`` (Linear:
    the generated and handwritten tiles of a CPU may differ, e.g. vdpbf16ps' K0 = 2)."""
    if backend == "codegen":
        M0, N0, K0 = tiles.choose_tile(types.name, targets.target_for_isa(isa, types.name), M)
    else:
        from ukernels.runtime.plan import ukernel_tile
        M0, N0, K0 = ukernel_tile(types, isa, M, lhs_flags(types, lhs_symmetric))
    if hasattr(packed, "for_tile"):
        return (M0, N0, K0), packed.for_tile(N0, K0)
    if (N0, K0) != (packed.N0, packed.K0):
        raise ValueError(f"this weight was packed for {packed.N0}x{packed.K0} tiles but the active ISA ({isa}) "
                         f"uses {N0}x{K0}; repack it (construct the Linear again) under this ISA")
    return (M0, N0, K0), packed


def _codegen_plan(types: ElementTypes, M: int, N: int, K: int, isa: str, nthreads: int,
                  tile=None, target=None, prepacked: bool = False, rhs_in_place: bool = False, k_align: int = 1,
                  batch: int = 1, rhs_shared: bool = False, fused=None):
    """The plan and kernel spec of a generated kernel; ``fused``: (op tokens, out type) of an
    epilogue applied in registers (the dispatch then never reads b in place: the kernel's
    last K block writes the result, which the in-place path's K-block groups would not give)."""
    from ukernels.codegen.render import KernelSpec
    target = target or targets.target_for_isa(isa, types.name)
    tile = tile or tuning.tuned_tile(types.name, target, M, N, K) or tiles.choose_tile(types.name, target, M)
    plan = plan_matmul(types, M, N, K, isa, nthreads, tuple(tile), prepacked, rhs_in_place and not fused, k_align,
                       batch, rhs_shared)
    kc1 = plan.KC // plan.K0
    ops, out = fused if fused else ((), "")
    return plan, KernelSpec(types.name, plan.M0, plan.N0, target, kc1 if plan.K1 >= kc1 else None, ops, out)


# Resolutions by call signature (a repeated call costs one dict lookup); bounded,
# so a process that sees millions of distinct shapes does not grow without limit.
MEMO_CAPACITY = 4096
_auto_choice: BoundedMemo = BoundedMemo(MEMO_CAPACITY)
_resolved: BoundedMemo = BoundedMemo(MEMO_CAPACITY)
_warned_fallback = False


def forget_resolutions() -> None:
    """Drop memoised auto decisions and codegen resolutions (after tuning, in tests)."""
    _auto_choice.clear()
    _resolved.clear()


def _auto_uses_codegen(types: ElementTypes, M: int, N: int, K: int, isa: str, nthreads: int) -> bool:
    """The "auto" rule: a generated kernel when a manifest lists one generated
    for exactly this shape, or the shape was tuned on this machine; else the
    handwritten ukernels. (Prebuilt kernels listed only by tile serve
    backend="codegen" without a compiler but do not change "auto".)"""
    from ukernels._env import getenv
    key = (types.name, M, N, K, isa, nthreads, getenv("UKERNELS_KERNEL_PATH"), getenv("UKERNELS_CACHE_DIR"))
    hit = _auto_choice.get(key)
    if hit is None:
        target = targets.target_for_isa(isa, types.name)
        hit = (prebuilt.generated_for_shape(types.name, target, M, N, K)
               or tuning.tuned_tile(types.name, target, M, N, K) is not None)
        _auto_choice.put(key, hit)
    return hit


def _auto_fell_back(types: ElementTypes, M: int, N: int, K: int, isa: str, nthreads: int, exc) -> None:
    """Warn once per process, and make "auto" use the handwritten kernels for this
    signature from now on (no compiler run, no log file per call)."""
    from ukernels._env import getenv
    key = (types.name, M, N, K, isa, nthreads, getenv("UKERNELS_KERNEL_PATH"), getenv("UKERNELS_CACHE_DIR"))
    _auto_choice.put(key, False)
    global _warned_fallback
    if not _warned_fallback:
        _warned_fallback = True
        import warnings
        warnings.warn(f"ukernels: backend='auto' falls back to the handwritten ukernels (and keeps doing so in "
                      f"this process for kernels that cannot be generated): {exc}", RuntimeWarning, stacklevel=5)


def resolve(types: ElementTypes, M: int, N: int, K: int, isa: str, backend: str,
            tile=None, target=None, prepacked: bool = False, describe: bool = False,
            rhs_in_place: bool = False, k_align: int = 1, batch: int = 1, rhs_shared: bool = False,
            narrow_to: Optional[ElementTypes] = None, lhs_symmetric: bool = False, fused=None) -> Resolution:
    """Plans the call and resolves its ukernel: handwritten, or generated (compiled
    on first use, then cached on disk and memoised in the process). "auto" follows
    ``_auto_uses_codegen`` and falls back to handwritten, with one warning, if the
    generated kernel cannot be built. ``describe`` fills in the handwritten tile
    function's name (for explain; the call path does not need it). ``lhs_symmetric``: the
    lhs has no -128 (see lhs_flags), which the handwritten tiles may use. ``fused``: (op tokens,
    out type) for a generated kernel that applies the epilogue in registers (runtime/fusion.py;
    codegen only)."""
    nthreads = threads.get_num_threads()
    if fused is not None:
        backend = "codegen"
    if narrow_to is not None:
        backend = "ukernel"  # rounding while packing is the handwritten dispatch's (matmul checks)
    if backend == "auto":
        backend = "codegen" if _auto_uses_codegen(types, M, N, K, isa, nthreads) else "ukernel"
        if backend == "codegen":
            try:
                return resolve(types, M, N, K, isa, "codegen", tile, target, prepacked, describe, rhs_in_place,
                               k_align, batch, rhs_shared)
            except CodegenError as exc:
                _auto_fell_back(types, M, N, K, isa, nthreads, exc)
                backend = "ukernel"
    if backend == "codegen":
        from ukernels._env import getenv
        key = (types.name, M, N, K, isa, nthreads, tile, target, prepacked, rhs_in_place, k_align, batch,
               rhs_shared, getenv("UKERNELS_CACHE_DIR"), getenv("CC"), getenv("UKERNELS_KERNEL_PATH"), fused)
        hit = _resolved.get(key)
        if hit is None:
            plan, spec = _codegen_plan(types, M, N, K, isa, nthreads, tile, target, prepacked, rhs_in_place,
                                       k_align, batch, rhs_shared, fused)
            kernel = cache.get_kernel(spec)
            hit = _resolved.put(key, Resolution(plan, "codegen", kernel.name, kernel.fn, 0, kernel,
                                                fused=fused is not None))
        return hit
    key = (types.name, M, N, K, isa, nthreads, tile, prepacked, describe, rhs_in_place, k_align, batch, rhs_shared,
           narrow_to, lhs_symmetric)
    hit = _resolved.get(key)
    if hit is None:
        extra = lhs_flags(types, lhs_symmetric)
        plan = plan_matmul(types, M, N, K, isa, nthreads, tile, prepacked, rhs_in_place, k_align, batch, rhs_shared,
                           narrow_to, extra)
        name = tile_function_name(plan.types, plan.M0, plan.N0, plan.K0, isa, flags=extra) if describe else ""
        hit = _resolved.put(key, Resolution(plan, "ukernel", name, _HANDWRITTEN,
                                            lib.UK_FLAG_ALLOW_GENERIC_FALLBACK | extra))
    return hit


def _desc_template(r: Resolution, types: ElementTypes, isa: str, B: int):
    """A ``uk_matmul_desc_t`` with every field that depends only on the resolution (plan, ukernel,
    types, ISA, batch) filled in; per-call fields (operands, buffers, ops, cancel) are left zero."""
    key = (types.uk_type, isa, B)
    hit = r.templates.get(key)
    if hit is not None:
        return hit
    plan = r.plan
    t = ffi.new("uk_matmul_desc_t*")
    t.type = types.uk_type
    if plan.types.name != types.name:  # operands widened (kernel_types_for) or narrowed while packed
        t.kernel_type = plan.types.uk_type
    t.M, t.N, t.K = plan.M, plan.N, plan.K
    t.M0, t.N0, t.K0 = plan.M0, plan.N0, plan.K0
    t.MC, t.NC, t.KC = plan.MC, plan.NC, plan.KC
    t.rhs_pack_in_tile, t.rhs_direct = int(plan.rhs_pack_in_tile), int(plan.rhs_direct)
    t.lhs_pack_in_tile = int(plan.lhs_pack_in_tile)
    t.epilogue_fused = int(r.fused)
    nthreads = max(plan.threads, 1)
    t.mmt4d, t.mmt4d_flags = r.fn, r.flags
    t.scratch_stride = lib.uk_matmul_scratch_bytes(t)  # the C dispatch's scratch layout, per thread
    t.cpu_data = cpu_data_for(isa)  # shared and kept for the process (ukernels.abi)
    t.max_threads = nthreads
    t.pack_tasks_hint = max(1, -(-4 * nthreads // B))  # per item: ~4 pack tasks per thread in all
    t.batch = B
    if len(r.templates) < 8:
        r.templates[key] = t
    return t


# ---- small plain calls: matmul(a, b) with nothing else, replayed ------------------------------
# A call with no epilogue, out, precision or backend choice but "ukernel", whose operands the C
# side reads as they are and whose work area (packed operands and scratch) is at most
# REPLAY_MAX_WORK bytes, is recorded after it ran: its filled descriptor (everything but the
# operand and buffer addresses) under a key of dtypes, shapes, strides and every setting the slow
# path reads (ISA, threads, codegen environment). The next such call with the same key copies it
# and runs -- none of the validation, epilogue lowering, planning and resolution lookups in
# between (8x8x8: see the closing note of issue 10; 400^3 to 512^3 on 2 threads: 35-60 us of
# 0.6-1.4 ms). A replay arms the Ctrl-C handler as the slow path does (interrupt.should_arm).
_SMALL_MAX = 256
# Largest work area a replay keeps per thread (it stays allocated for the thread's replays;
# calls with larger workspaces take the slow path, whose workspace release_workspace() frees)
REPLAY_MAX_WORK = 16 * 1024 * 1024
_small: Dict[tuple, tuple] = {}
_SETTINGS = ("UKERNELS_ISA", "UKERNELS_NUM_THREADS", "UKERNELS_SPIN_US", "UKERNELS_KERNEL_PATH",
             "UKERNELS_CACHE_DIR", "CC")
_settings = None  # ukernels._env.snapshot_fn(_SETTINGS), made on first use


def small_call_key(a: np.ndarray, b: Optional[np.ndarray], backend: str = "auto") -> Optional[tuple]:
    """The replay key of matmul(a, b, backend=backend) (2-D ndarrays; b None: a Linear's own
    weight), or None when it cannot replay (an operand the C side would not read as it is)."""
    if not (a.flags.aligned and (b is None or b.flags.aligned)):
        return None
    global _settings
    if _settings is None:
        from ukernels._env import snapshot_fn
        _settings = snapshot_fn(_SETTINGS)
    limit = threads._local.limit  # the thread_limit in force on this thread (None: none)
    if b is None:
        return (a.dtype, a.shape, a.strides, threads._requested, limit, _settings())
    return (a.dtype, b.dtype, a.shape, b.shape, a.strides, b.strides, threads._requested, limit, _settings(), backend)


_replay_work = workspace.replay_area  # this thread's replay work area (runtime/workspace.py)


def run_small(key: tuple, a: np.ndarray, b: Optional[np.ndarray], table: Optional[dict] = None
              ) -> Optional[np.ndarray]:
    """The call recorded for ``key`` (in ``table``, default the matmul one) run on these
    operands, or None if none is recorded."""
    hit = (_small if table is None else table).get(key)
    if hit is None:
        return None
    template, shape, out_dtype, work_bytes, _keep, contiguous, flops, pooled = hit
    out = np.empty(shape, out_dtype)
    pa = _from_buffer(a) if contiguous[0] else ffi.cast("void*", a.ctypes.data)
    pb = _NULL if b is None else _from_buffer(b) if contiguous[1] else ffi.cast("void*", b.ctypes.data)
    pool = threads.get_pool() if pooled else _NULL
    w = _replay_work
    armed = flops >= interrupt.MIN_FLOPS and interrupt.should_arm(flops)
    cancel = interrupt.arm() if armed else _NULL
    try:
        if w.busy:  # re-entered: a leased buffer of its own
            with workspace.lease() as ws:
                status = _run_replay(template, pa, pb, _from_buffer(out),
                                     ffi.cast("void*", ws.address("replay", work_bytes)), pool, cancel)
        else:
            # one snapshot of the area (array, pointer, bytes): this frame keeps the array alive
            # (a release, a signal handler's call or interpreter exit may drop the thread's own)
            buf = w.buf
            if buf is None or buf[2] < work_bytes:
                array = np.empty(work_bytes + 64, np.uint8)
                base = array.ctypes.data
                buf = w.buf = (array, ffi.cast("void*", base + (-base % 64)), work_bytes)
            w.busy = True
            try:
                status = _run_replay(template, pa, pb, _from_buffer(out), buf[1], pool, cancel)
            finally:
                w.busy = False
    finally:
        if armed:
            interrupt.disarm()
    if status != _OK:
        if status == lib.UK_STATUS_CANCELLED:  # Ctrl-C: Python's handler raises here, or the call runs again
            interrupt.deliver()
            return run_small(key, a, b, table)
        raise UkernelError("uk_matmul_run", status)
    return out


# run_small's per-call names, bound once
_OK, _NULL, _from_buffer, _run_replay = lib.UK_STATUS_OK, ffi.NULL, ffi.from_buffer, lib.uk_matmul_run_replay


def _same_data(view: np.ndarray, arr: np.ndarray) -> bool:
    """Whether ``view`` (the 3-D operand the C side read) is ``arr``'s memory, not a converted copy."""
    return view.ctypes.data == arr.ctypes.data


def _buffer_ok(arr: np.ndarray) -> bool:
    """Whether ffi.from_buffer can pass ``arr`` (as address_of does)."""
    return bool(arr.flags.c_contiguous and arr.size)


def _record_small(table: dict, key: tuple, d, keep: tuple, shape, out_dtype, lhs_bytes: int, rhs_bytes: int,
                  scratch_bytes: int, contiguous: tuple) -> None:
    """Keeps descriptor ``d`` for replays (uk_matmul_run_replay): its buffers become offsets into
    one work area, each 64-byte aligned; ``contiguous``: whether a and b (the key fixes their
    strides) are non-empty C-contiguous arrays, passed as buffers; ``keep``: what its pointers need alive (the resolution,
    the epilogue's C ops and arrays, a prepacked rhs)."""
    align = lambda n: (n + 63) // 64 * 64  # noqa: E731
    rhs_at = align(lhs_bytes)
    scratch_at = rhs_at + align(rhs_bytes)
    work_bytes = scratch_at + align(scratch_bytes)
    if work_bytes > REPLAY_MAX_WORK:
        return
    t = ffi.new("uk_matmul_desc_t*", d[0])
    t.a = t.b = t.out = ffi.NULL  # each replay's operands
    t.cancel = ffi.NULL  # each replay's (run_small arms it)
    t.lhs_packed = ffi.cast("void*", 0)
    if not t.rhs_prepacked:
        t.rhs_packed = ffi.cast("void*", rhs_at)
    t.scratch = ffi.cast("void*", scratch_at)
    if len(table) >= _SMALL_MAX:
        table.clear()
    table[key] = (t, shape, out_dtype, work_bytes, keep, contiguous, 2 * t.M * t.N * t.K * max(1, t.batch),
                  t.max_threads > 1)


def _writable_in_place(out: Optional[np.ndarray], N: int, a: np.ndarray, b: Optional[np.ndarray]) -> bool:
    """Whether the dispatch may write ``out`` (B, M, N) directly: unit-stride rows that do not
    overlap, whole-element strides, and no memory shared with the operands."""
    if out is None:
        return False
    e = out.itemsize
    return (out.strides[2] == e and out.strides[1] % e == 0 and out.strides[0] % e == 0
            and (out.shape[1] <= 1 or out.strides[1] >= N * e) and not np.may_share_memory(out, a)
            and (b is None or not np.may_share_memory(out, b)))


def run_matmul(a: np.ndarray, b: Optional[np.ndarray], types: ElementTypes, epilogue: Optional[LoweredEpilogue],
               isa: str, backend: str = "ukernel", tile=None, target=None,
               packed: Optional[PackedRhs] = None, out: Optional[np.ndarray] = None,
               narrow_to: Optional[ElementTypes] = None, small_key: Optional[tuple] = None,
               small_table: Optional[dict] = None, lhs_symmetric: bool = False, fusion: str = "auto") -> np.ndarray:
    """out = epilogue(a @ b) through the resolved ukernel; inputs pre-validated.
    With ``packed``, b is None and the prepacked rhs is used (its N0/K0 fix the tile).
    ``out`` of the result's shape and the epilogue's dtype, validated by the caller: written
    directly when its rows are unit-stride and it shares no memory with a or b, else through a
    temporary. Stacks (one dispatch): a (B, M, K), b (B, K, N) with any batch strides (0: shared,
    packed once), out (B, M, N); epilogue operands are shared by the items. ``narrow_to``: f32
    operands rounded to this triple while packed (runtime/plan.py: plan_matmul). ``small_key``:
    matmul's replay key of a plain call (see run_small), recorded here (in ``small_table``,
    default matmul's) if the call qualifies. ``lhs_symmetric``: a has no -128 (see lhs_flags).
    ``fusion``: where the epilogue runs ("auto", "tile", "register": runtime/fusion.py)."""
    a3 = a if a.ndim == 3 else a[None]
    b3 = None if b is None else (b if b.ndim == 3 else b[None])
    B, M, K = a3.shape
    N = packed.N if packed is not None else b3.shape[2]
    shared = B == 1 or b3 is None or b3.strides[0] == 0
    group_size = getattr(packed, "group_size", 0) if packed is not None else 0
    if epilogue is None:
        epilogue = lower((), types, M, N)
    fz = fusion_for(fusion, backend, types, M, N, K, isa, epilogue, bool(group_size), narrow_to is not None)
    if fz.register:
        backend = "codegen"
    if group_size and backend == "auto":
        backend = "ukernel"  # the handwritten group variants keep the group loop in registers
    if packed is not None and tile is None:
        chosen = backend
        if narrow_to is not None:  # x rounded while packed against a prepacked bf16 weight: handwritten
            chosen = "ukernel"
        elif backend == "auto":  # resolve() below still falls back if the generated kernel cannot be built
            chosen = "codegen" if _auto_uses_codegen(types, M, N, K, isa, threads.get_num_threads()) else "ukernel"
        tile, packed = _tile_for_packed(narrow_to or types, M, isa, chosen, packed, lhs_symmetric)
    elif packed is not None and hasattr(packed, "for_tile"):
        packed = packed.for_tile(tile[1], tile[2])
    given = out
    out3 = None if out is None else (out if out.ndim == 3 else out[None])
    in_place = _writable_in_place(out3, N, a, b)
    if not in_place:
        out3 = np.empty((B, M, N), dtype=epilogue.out_dtype)
    result = out3 if a.ndim == 3 else out3[0]
    if B == 0 or M == 0 or N == 0:
        return given if given is not None else result
    rhs_in_place = packed is None and b3.strides[2] == b3.itemsize
    r = resolve(types, M, N, K, isa, backend, tile, target, packed is not None, rhs_in_place=rhs_in_place,
                k_align=max(1, packed.group_size) if packed is not None else 1, batch=B, rhs_shared=shared,
                narrow_to=narrow_to, lhs_symmetric=lhs_symmetric, fused=(fz.ops, fz.out) if fz.register else None)
    plan = r.plan
    pool = threads.get_pool() if plan.threads > 1 else ffi.NULL

    # The lease, descriptor, cpu bits, op list and operands stay referenced from
    # this frame until the C call returns (a daemon thread inside this call at
    # interpreter exit keeps them alive; see runtime/workspace.py).
    with workspace.lease() as ws:
        d = ffi.new("uk_matmul_desc_t*", _desc_template(r, types, isa, B)[0])
        ia = a.itemsize
        d.a = address_of(a3)
        d.a_stride0, d.a_stride1, d.a_batch_stride = a3.strides[1] // ia, a3.strides[2] // ia, a3.strides[0] // ia
        if packed is None:
            ib = b3.itemsize
            d.b = address_of(b3)
            d.b_stride0, d.b_stride1 = b3.strides[1] // ib, b3.strides[2] // ib
            d.b_batch_stride = 0 if shared else b3.strides[0] // ib
        eo = out3.itemsize
        d.out = address_of(out3)
        d.out_stride0 = out3.strides[1] // eo if M > 1 else N
        d.out_batch_stride = out3.strides[0] // eo
        d.out_type = epilogue.out_type
        lhs_bytes = 0 if plan.lhs_pack_in_tile else plan.lhs_packed_bytes * B
        d.lhs_packed = ffi.cast("void*", ws.address("lhs", lhs_bytes))
        rhs_bytes = 0
        if packed is not None:
            if (plan.N0, plan.K0) != (packed.N0, packed.K0):
                raise RuntimeError(f"internal: plan tile {plan.N0}x{plan.K0} does not match the packed rhs "
                                   f"{packed.N0}x{packed.K0}")
            d.rhs_packed = ffi.from_buffer(packed.data)
            d.rhs_prepacked = 1
            if packed.group_scales is not None:
                d.rhs_group_scales = ffi.cast("const float*", ffi.from_buffer(packed.group_scales))
                d.group_size = packed.group_size
        elif not plan.rhs_pack_in_tile:  # (in-tile packing and rhs_direct: in the template)
            rhs_bytes = plan.rhs_packed_bytes * (1 if shared else B)
            d.rhs_packed = ffi.cast("void*", ws.address("rhs", rhs_bytes))
        scratch_bytes = d.scratch_stride * max(plan.threads, 1)
        d.scratch = ffi.cast("void*", ws.address("scratch", scratch_bytes))
        c_ops, n_ops, keep = to_c(epilogue.ops)
        d.ops, d.num_ops = c_ops, n_ops
        armed = interrupt.should_arm(2 * M * N * K * B)
        d.cancel = interrupt.arm() if armed else ffi.NULL
        try:
            status = lib.uk_matmul_run(d, pool)
        finally:
            if armed:
                interrupt.disarm()
        if (small_key is not None and status == lib.UK_STATUS_OK and given is None
                and B == 1 and a.ndim == 2 and _same_data(a3, a)
                and (packed is not None or _same_data(b3, b))):
            _record_small(_small if small_table is None else small_table, small_key, d,
                          (r, c_ops, keep, packed), result.shape, result.dtype, lhs_bytes, rhs_bytes, scratch_bytes,
                          (_buffer_ok(a), b is None or _buffer_ok(b)))
        del keep, c_ops
    if status == lib.UK_STATUS_CANCELLED:  # Ctrl-C: Python's handler raises here, or the call runs again
        interrupt.deliver()
        return run_matmul(a, b, types, epilogue, isa, backend, tile, target, packed, given, narrow_to,
                          lhs_symmetric=lhs_symmetric, fusion=fusion)
    if status != lib.UK_STATUS_OK:
        raise UkernelError("uk_matmul_run", status)
    if given is None:
        return result
    if not in_place:
        np.copyto(given, result)
    return given
