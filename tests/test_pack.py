"""uk_pack against a numpy reference: every flag combination, strides, padding."""
import numpy as np
import pytest

from ukernels.runtime.packing import pack


def reference_pack(x, T0, T1, tin, tout):
    TR, TC = (T1, T0) if tin else (T0, T1)
    R = -(-x.shape[0] // TR) * TR
    C = -(-x.shape[1] // TC) * TC
    padded = np.zeros((R, C), x.dtype)
    padded[: x.shape[0], : x.shape[1]] = x
    t = padded.reshape(R // TR, TR, C // TC, TC).transpose(0, 2, 1, 3)  # [or][oc][ir][ic]
    if tin:
        t = t.transpose(0, 1, 3, 2)
    if tout:
        t = t.transpose(1, 0, 2, 3)
    return t


def unpack(p, rows, cols, tin, tout):
    t = p.transpose(1, 0, 2, 3) if tout else p
    if tin:
        t = t.transpose(0, 1, 3, 2)
    o_r, o_c, TR, TC = t.shape
    return t.transpose(0, 2, 1, 3).reshape(o_r * TR, o_c * TC)[:rows, :cols]


@pytest.mark.parametrize("dtype", [np.float32, np.int8])
@pytest.mark.parametrize("tiles", [(8, 1), (16, 1), (8, 2), (16, 2), (3, 5), (1, 1), (4, 1)])
@pytest.mark.parametrize("tin", [False, True])
@pytest.mark.parametrize("tout", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (32, 16), (33, 70), (0, 5), (5, 0)])
def test_pack_matches_reference_and_round_trips(dtype, tiles, tin, tout, shape):
    rng = np.random.default_rng(0)
    x = rng.integers(-100, 100, shape).astype(dtype)
    p = pack(x, *tiles, transpose_inner=tin, transpose_outer=tout)
    np.testing.assert_array_equal(p, reference_pack(x, *tiles, tin, tout))
    np.testing.assert_array_equal(unpack(p, *shape, tin, tout), x)


@pytest.mark.parametrize("view", ["fortran", "negative", "step", "transposed"])
def test_pack_any_strides(view):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((40, 50)).astype(np.float32)
    x = {"fortran": np.asfortranarray(base), "negative": base[::-1, ::-1], "step": base[::3, ::2],
         "transposed": base.T}[view]
    for tin, tout in [(False, False), (True, True)]:
        p = pack(x, 8, 1, transpose_inner=tin, transpose_outer=tout)
        np.testing.assert_array_equal(p, reference_pack(np.ascontiguousarray(x), 8, 1, tin, tout))


def test_pack_does_not_modify_input_and_pads_with_zeros():
    x = np.arange(1, 3 * 5 + 1, dtype=np.float32).reshape(3, 5)
    before = x.copy()
    p = pack(x, 8, 1)
    np.testing.assert_array_equal(x, before)
    assert (p[0, :, 3:, :] == 0).all()


def test_pack_errors():
    with pytest.raises(ValueError, match="2-D"):
        pack(np.zeros(3, np.float32), 8, 1)
    with pytest.raises(TypeError, match="1-, 2- or 4-byte numeric type"):
        pack(np.zeros((3, 3)), 8, 1)
    with pytest.raises(ValueError, match="tile0"):
        pack(np.zeros((3, 3), np.float32), 0, 1)


@pytest.mark.parametrize("T0", [6, 8, 16])
@pytest.mark.parametrize("rows_extra", [0, 1, 5])
@pytest.mark.parametrize("cols", [8, 15, 64, 71])
def test_simd_lhs_pack_matches_reference_under_every_isa(isa, T0, rows_extra, cols):
    """The AVX2 transpose pack (f32, K0=1, T0 in 6/8/16): full panels, a partial
    last panel, and columns past the last multiple of 8 finished by portable code."""
    rng = np.random.default_rng(T0 * 100 + cols)
    x = rng.standard_normal((3 * T0 + rows_extra, cols)).astype(np.float32)
    np.testing.assert_array_equal(pack(x, T0, 1, isa=isa), reference_pack(x, T0, 1, False, False))
    strided = np.asfortranarray(x)  # non-unit column stride: portable path
    np.testing.assert_array_equal(pack(strided, T0, 1, isa=isa), reference_pack(x, T0, 1, False, False))
