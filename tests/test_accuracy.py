"""f32 accuracy no worse than the BLAS a user would otherwise call: the max
error against a float64 reference, on the same inputs, within 2x numpy's at
K = 4096, 65536 and 10^6 (float K blocks are accumulated from zero and added,
so the error grows like BLAS's instead of along one chain over all of K)."""
import numpy as np
import pytest

import ukernels

SHAPES = [(32, 32, 4096), (16, 16, 65536), (4, 8, 1_000_000), (1, 16, 1_000_000), (1, 64, 300_000),
          (3, 64, 100_000)]


@pytest.mark.parametrize("data", ["normal", "positive"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_f32_error_within_2x_of_numpy(shape, data):
    M, N, K = shape
    rng = np.random.default_rng(K + M)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    if data == "positive":  # no cancellation: the worst case for long accumulation chains
        a, b = np.abs(a), np.abs(b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    err_numpy = np.abs(a @ b - ref).max()
    err_matmul = np.abs(ukernels.matmul(a, b) - ref).max()
    err_linear = np.abs(ukernels.Linear(b, layout="kn")(a) - ref).max()  # prepacked: long K blocks
    assert err_matmul <= 2 * err_numpy, (err_matmul, err_numpy)
    assert err_linear <= 2 * err_numpy, (err_linear, err_numpy)
