"""The planner's documented rules (runtime/plan.py)."""
import pytest

from ukernels.abi import F32F32F32, S8S8S32
from ukernels.runtime.plan import ACC_L2_SHARE, MAX_STREAM_K, MIN_FLOPS_PER_THREAD, plan_matmul


@pytest.mark.parametrize("types", [F32F32F32, S8S8S32], ids=lambda t: t.name)
@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
@pytest.mark.parametrize("shape", [(1, 4096, 4096), (16, 4096, 4096), (1024, 1024, 1024), (127, 255, 511), (3, 5, 7)])
def test_blocking_invariants(types, isa, shape):
    M, N, K = shape
    for threads in (1, 2):
        p = plan_matmul(types, M, N, K, isa, threads)
        assert p.MC % p.M0 == 0 and p.NC % p.N0 == 0 and p.KC % p.K0 == 0
        assert p.M0 <= max(1, 2 * M)  # narrow tiles for small M
        assert 1 <= p.threads <= threads
        if 2 * M * N * K < 2 * MIN_FLOPS_PER_THREAD:
            assert p.threads == 1  # tiny products stay on the calling thread
        mb, nb = p.workgroups
        if p.threads > 1 and (p.M1 * p.N1) >= 4 * p.threads:
            assert mb * nb >= 4 * p.threads  # enough workgroups to balance


def test_single_row_products_pack_rhs_in_tile_and_prepacked_ones_stream_whole_k():
    p = plan_matmul(F32F32F32, 16, 4096, 4096, "avx512", 2)
    assert p.rhs_pack_in_tile and p.KC < 4096  # in-tile blocks stay wide (K blocked)
    q = plan_matmul(F32F32F32, 16, 4096, 4096, "avx512", 2, None, True)
    # prepacked: long K blocks stream each panel (capped for accuracy: blocks are added, see below)
    assert not q.rhs_pack_in_tile and q.KC == MAX_STREAM_K < 4096  # long blocks, up to the cap
    assert plan_matmul(F32F32F32, 16, 4096, 11008, "avx512", 2, None, True).KC == MAX_STREAM_K
    assert plan_matmul(F32F32F32, 1, 4096, 4096, "avx2", 1, None, True).NC >= 4 * 16  # tile groups fit
    r = plan_matmul(F32F32F32, 1024, 1024, 1024, "avx512", 2)
    assert not r.rhs_pack_in_tile  # several workgroup rows share each packed rhs block


@pytest.mark.parametrize("prepacked", [False, True])
def test_float_k_blocks_are_bounded_so_error_grows_like_blas(prepacked):
    """Shape class: very long K (1e6) -- K is always blocked (<= MAX_STREAM_K per block for
    prepacked single-row products, L1-sized otherwise) and float blocks are summed, never
    one accumulation chain over all of K: ACCUMULATE adds each block's sum (tests/test_accuracy.py)."""
    for M in (1, 16, 256):
        p = plan_matmul(F32F32F32, M, 64, 1_000_000, "avx2", 1, None, prepacked)
        assert p.KC <= MAX_STREAM_K


def test_16_bit_float_inputs_are_widened_while_packed_unless_prepacked():
    """Shape class: f16/bf16 inputs on x86 SIMD levels. Packed per call -> f32 tiles on
    operands widened by the pack (in-register conversion costs ~30% on AVX2); prepacked
    weights keep the narrow 16-bit tiles (decode calls are bound by the weight's bytes)."""
    from ukernels.abi import BF16BF16F32, F16F16F32
    for types in (F16F16F32, BF16BF16F32):
        p = plan_matmul(types, 256, 256, 256, "avx2", 1)
        assert p.types.name == "f32f32f32" and p.lhs_packed_bytes == p.M1 * p.K1 * p.M0 * p.K0 * 4
        q = plan_matmul(types, 1, 4096, 4096, "avx2", 1, None, True)
        assert q.types.name == types.name and q.rhs_packed_bytes == q.N1 * q.K1 * q.N0 * q.K0 * 2
        assert plan_matmul(types, 256, 256, 256, "generic", 1).types.name == types.name


def test_small_m_bf16_reads_b_in_place_even_where_a_dot_product_tile_exists():
    """Shape class: bf16 x bf16 with M <= NATIVE_DOT_DIRECT_MAX_M on a CPU with vdpbf16ps,
    whose tile pairs K (K0 = 2, so b would be packed). Reading b in place through the K0 = 1
    widening tile wins there (M=1: 21 vs 4.6 GFLOP/s, measured); larger M take the dot tile."""
    from ukernels.abi import BF16BF16F32
    from ukernels.runtime.plan import NATIVE_DOT_DIRECT_MAX_M, native_16bit_float_dot
    if not native_16bit_float_dot(BF16BF16F32, "avx512"):
        pytest.skip("this CPU lacks AVX512_BF16 (vdpbf16ps): no K0=2 bf16 tile to weigh against")
    for M in range(1, NATIVE_DOT_DIRECT_MAX_M + 1):
        p = plan_matmul(BF16BF16F32, M, 4096, 4096, "avx512", 1, rhs_in_place=True)
        assert p.rhs_direct and p.K0 == 1 and p.types == BF16BF16F32
    for M in (NATIVE_DOT_DIRECT_MAX_M + 1, 16, 32):
        p = plan_matmul(BF16BF16F32, M, 4096, 4096, "avx512", 1, rhs_in_place=True)
        assert not p.rhs_direct and p.K0 == 2


@pytest.fixture
def zen4_caches(monkeypatch):
    """The planner on this machine's cache sizes (L1d 32 KiB, L2 1 MiB, L3 32 MiB), whatever the host."""
    from ukernels.runtime import plan
    monkeypatch.setattr(plan, "cache_sizes", lambda: (32 * 1024, 1024 * 1024))
    monkeypatch.setattr(plan, "l3_size", lambda: 32 * 1024 * 1024)
    plan.plan_matmul.cache_clear()
    yield
    plan.plan_matmul.cache_clear()


@pytest.mark.parametrize("prepacked", [False, True], ids=["matmul", "Linear"])
@pytest.mark.parametrize("M", [200, 256, 512])
def test_up_to_512_rows_use_one_workgroup_row(zen4_caches, M, prepacked):
    """Prefill-like products (M <= ONE_ROW_MAX_M, wide N): all rows in one workgroup row, so
    each rhs block is read once per call (packed in tile unless prepacked)."""
    for threads in (1, 2):
        p = plan_matmul(F32F32F32, M, 4096, 1024, "avx512", threads, None, prepacked)
        assert p.workgroups[0] == 1 and p.MC >= M
        assert p.rhs_pack_in_tile == (not prepacked)
        assert p.MC * p.NC * 4 <= ACC_L2_SHARE(1024 * 1024)  # the accumulator stays a fraction of L2 (pinned)
        assert p.workgroups[1] >= 4 * p.threads


def test_square_products_above_512_rows_keep_several_workgroup_rows():
    p = plan_matmul(F32F32F32, 1024, 1024, 1024, "avx512", 1)
    assert p.workgroups[0] > 1 and not p.rhs_pack_in_tile


@pytest.mark.parametrize("prepacked", [False, True], ids=["matmul", "Linear"])
def test_skinny_products_pack_lhs_in_tile(zen4_caches, prepacked):
    """One workgroup column (N <= NC, e.g. 4096x128x4096): each lhs block is used by one
    workgroup, so it is packed right before use, not in a phase of its own."""
    for threads in (1, 2):
        p = plan_matmul(F32F32F32, 4096, 128, 4096, "avx512", threads, None, prepacked)
        assert p.workgroups[1] == 1 and p.lhs_pack_in_tile and p.workgroups[0] >= 4 * p.threads
    q = plan_matmul(F32F32F32, 2048, 4096, 1024, "avx512", 1)  # several workgroup columns
    assert q.workgroups[1] > 1 and not q.lhs_pack_in_tile
    r = plan_matmul(F32F32F32, 4, 64, 4096, "avx512", 1, None, False, True)  # b read in place
    assert r.rhs_direct and not r.lhs_pack_in_tile


@pytest.mark.parametrize("shape", [(512, 512, 512), (256, 256, 256), (127, 255, 511), (64, 512, 512),
                                   (512, 384, 1024)])
def test_prepacked_rhs_in_one_workgroup_column_splits_rows(zen4_caches, shape):
    """Shape class: a prepacked rhs (Linear) whose N fits one workgroup column (NC = N), up to
    ONE_ROW_MAX_M rows. The rows are split (for the accumulator budget and for threads) and
    each workgroup packs its own lhs rows in tile; the one-row plan of a wide N would put the
    lhs through a pack phase read by every column workgroup (and the other core)."""
    M, N, K = shape
    for threads in (1, 2):
        p = plan_matmul(F32F32F32, M, N, K, "avx512", threads, (16, 16, 1), True)
        assert p.NC >= N and p.workgroups[1] == 1 and p.lhs_pack_in_tile
        assert p.MC * p.NC * 4 <= 256 * 1024  # the accumulator budget (ACC_L2_SHARE)
        if p.threads > 1:
            rows = p.workgroups[0]
            assert rows % p.threads == 0 or rows >= 4 * p.threads  # balanced over the threads


def test_prepacked_rows_that_do_not_balance_also_split_columns(zen4_caches):
    """48 rows make 3 row workgroups for 2 threads: columns are split too (the lhs then goes
    through the pack phase)."""
    p = plan_matmul(F32F32F32, 48, 256, 2048, "avx512", 2, (16, 16, 1), True)
    assert p.threads == 2 and p.workgroups[0] == 3 and p.workgroups[1] > 1
    assert p.workgroups[0] * p.workgroups[1] >= 4 * p.threads


@pytest.mark.parametrize("shape", [(512, 512, 512), (127, 255, 511)])
def test_rhs_packed_by_the_call_keeps_one_workgroup_row(zen4_caches, shape):
    """matmul (the rhs packed by the call) up to ONE_ROW_MAX_M rows: one workgroup row, the rhs
    packed in tile, even where N would fit one column (rows split over a freshly packed rhs read
    every panel from the core that packed it)."""
    M, N, K = shape
    for threads in (1, 2):
        p = plan_matmul(F32F32F32, M, N, K, "avx512", threads)
        assert p.workgroups[0] == 1 and p.rhs_pack_in_tile


def test_wide_prepacked_rhs_keeps_one_workgroup_row(zen4_caches):
    """N beyond one workgroup column (256x4096x1024): the one-row plan as before."""
    for threads in (1, 2):
        p = plan_matmul(F32F32F32, 256, 4096, 1024, "avx512", threads, (16, 16, 1), True)
        assert p.workgroups[0] == 1 and p.workgroups[1] >= 4 * p.threads


@pytest.mark.parametrize("prepacked", [False, True], ids=["matmul", "Linear"])
@pytest.mark.parametrize("shape", [(1024, 1024, 1024), (4096, 1024, 1024), (1024, 4096, 256)])
def test_rhs_that_stays_in_l3_gets_one_workgroup_column(zen4_caches, shape, prepacked):
    """Shape class: above ONE_ROW_MAX_M rows (or a prepacked rhs), a whole packed rhs of at
    most L3/8 and an M0 x N accumulator within budget: NC = N, rows split, the lhs packed in
    tile by each row workgroup (no lhs pack phase)."""
    M, N, K = shape
    for threads in (1, 2):
        p = plan_matmul(F32F32F32, M, N, K, "avx512", threads, (16, 16, 1) if prepacked else None, prepacked)
        assert p.NC >= N and p.workgroups[1] == 1 and p.lhs_pack_in_tile and p.workgroups[0] >= 4 * p.threads
        assert p.MC * p.NC * 4 <= 256 * 1024


@pytest.mark.parametrize("shape", [(2048, 2048, 2048), (2048, 1024, 2048), (256, 4096, 1024)])
def test_rhs_beyond_l3_share_keeps_l2_blocked_columns(zen4_caches, shape):
    """A packed rhs above L3/8 (16, 8, 16 MiB here) would be streamed from memory by every row
    workgroup: the L2-blocked plan (several columns, or one workgroup row up to 512 rows)."""
    M, N, K = shape
    for prepacked in (False, True):
        p = plan_matmul(F32F32F32, M, N, K, "avx512", 1, (16, 16, 1) if prepacked else None, prepacked)
        assert p.workgroups[1] > 1 and p.NC * p.KC * 4 <= 512 * 1024


@pytest.mark.parametrize("entries, expected", [
    (({"level": "3", "type": "Unified", "size": "32768K"},), 32 * 1024 * 1024),
    (({"level": "3", "type": "Unified", "size": "lots"},), None),  # unparseable: the default
    (({"level": "x", "type": "Unified", "size": "8M"},), None),
    (({"level": "3"},), None),  # missing files
    (({"level": "2", "type": "Unified", "size": "1M"},), None),  # no L3 listed
    ((), None),  # no sysfs
])
def test_l3_size_reads_sysfs_and_falls_back_on_anything_else(monkeypatch, entries, expected):
    from ukernels.runtime import plan
    monkeypatch.setattr(plan, "cache_entries", lambda: entries)
    plan.l3_size.cache_clear()
    try:
        assert plan.l3_size() == (plan.DEFAULT_L3 if expected is None else expected)
    finally:
        plan.l3_size.cache_clear()
