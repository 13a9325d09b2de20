"""ukernels.torch: tensors without copies, nn.Linear replacements, optimize() with activation
fusion in nn.Sequential, inference-only and device/dtype errors. Skipped, saying so, when
PyTorch is not installed (``.ci/run`` installs it)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
nn = torch.nn
ut = pytest.importorskip("ukernels.torch")


def ints(*shape, dtype=torch.float32):
    g = torch.Generator().manual_seed(sum(shape))
    return torch.randint(-3, 4, shape, generator=g).to(dtype)


def test_tensors_cross_without_copies():
    t = ints(3, 5)
    assert np.shares_memory(ut.to_numpy(t), t.numpy())
    bf = ints(2, 4, dtype=torch.bfloat16)
    assert torch.equal(ut.from_numpy(ut.to_numpy(bf)), bf)
    a, b = ints(4, 6), ints(6, 5)
    out = torch.empty(4, 5)
    assert ut.matmul(a, b, out=out) is out
    assert torch.equal(out, a @ b)
    assert torch.equal(ut.matmul(a, b, bias=ut.to_numpy(torch.ones(5))), a @ b + 1)
    assert torch.equal(ut.matmul(ints(3, 4, 6), b), ints(3, 4, 6) @ b)  # stacks


@pytest.mark.parametrize("act", [None, nn.ReLU(), nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU()])
def test_linear_from_module_matches_torch(act):
    torch.manual_seed(0)
    lin = nn.Linear(64, 40)
    x = torch.randn(2, 7, 64)
    ref = lin(x) if act is None else act(lin(x))
    with torch.no_grad():
        got = ut.Linear.from_module(lin, act)(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref.detach(), rtol=1e-5, atol=1e-5)


def test_optimize_replaces_linears_and_fuses_sequential_activations():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 64), nn.SiLU(),
                          nn.Sequential(nn.Linear(64, 16), nn.ReLU()), nn.Linear(16, 8))
    x = torch.randn(5, 32)
    with torch.no_grad():
        ref = model(x)
        opt = ut.optimize(model)
        got = opt(x)
    linears = [m for m in opt.modules() if isinstance(m, ut.Linear)]
    assert len(linears) == 4 and not any(isinstance(m, nn.Linear) for m in opt.modules())
    assert [m.fused for m in linears] == ["GELU", "SiLU", "ReLU", None]
    assert isinstance(model[0], nn.Linear)  # not inplace: the original is untouched
    cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
    assert (cos >= 0.99999).all() and (got - ref).abs().max() < 1e-4


def test_optimize_bf16_and_int8_weights():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 32))
    x = torch.randn(4, 128)
    with torch.no_grad():
        ref = model(x)
        for kw, cos_min in (({"precision": "bf16"}, 0.999), ({"weight_dtype": "int8"}, 0.999),
                            ({"weight_dtype": "int4", "group_size": 32}, 0.98)):
            got = ut.optimize(model, **kw)(x)
            cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
            assert (cos >= cos_min).all(), (kw, cos.min())


def test_inference_only_and_clear_errors():
    lin = ut.Linear.from_module(nn.Linear(8, 4))
    x = torch.randn(2, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="inference only"):
        lin(x)
    with torch.no_grad():
        assert lin(x).shape == (2, 4)
    with torch.inference_mode():
        assert lin(torch.randn(2, 8)).shape == (2, 4)
    with pytest.raises(TypeError, match="dtype torch.float64"):
        ut.matmul(torch.ones(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="nn.Linear"):
        ut.Linear.from_module(nn.ReLU())
    with pytest.raises(ValueError, match="cannot fuse"):
        ut.Linear.from_module(nn.Linear(8, 4), nn.Tanhshrink())


def test_non_cpu_tensors_are_refused():
    with pytest.raises(ValueError, match="on meta; ukernels runs on the CPU"):
        ut.matmul(torch.empty(2, 2, device="meta"), torch.ones(2, 2))
