"""LLM decode through PyTorch: a small transformers Llama (random weights, tiny dimensions) through
``ukernels.torch.optimize`` against torch f32, greedy generate(), and optimize's handling of
torch's own threads. Skipped, saying so, without torch or transformers (``.ci/run`` installs
both)."""
import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")
ut = pytest.importorskip("ukernels.torch")

import ukernels  # noqa: E402
from conftest import *  # noqa: E402,F401,F403 - the isa fixture


@pytest.fixture(scope="module")
def llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=160, num_attention_heads=4, num_key_value_heads=2,
                      num_hidden_layers=2, vocab_size=300, max_position_embeddings=128)
    return LlamaForCausalLM(cfg).eval()


def _ids():
    return torch.randint(0, 300, (1, 9), generator=torch.Generator().manual_seed(3))


def _logits(model, ids):
    with torch.inference_mode():
        return model(ids).logits.float()


@pytest.mark.parametrize("kw,rms_tol", [
    ({}, 1e-5),                                          # f32: rounding only (the order of the sums)
    ({"weight_dtype": "int8"}, 0.03),                    # x and W to 8 bits: ~0.6% each per layer
    ({"weight_dtype": "int4", "group_size": 32}, 0.25),  # W to 4 bits (max/7 per group): ~9% per layer
])
def test_llama_through_optimize_close_to_torch_f32(llama, kw, rms_tol):
    """The logits' error against torch f32 within the bound each weight format's rounding allows
    on random weights, two layers and the vocabulary projection deep (measured with three seeds:
    int8 1.3-1.5% rms, int4 g32 15.5-16.8%): rms(error) <= rms_tol x rms(logits) and no element off
    by more than 5 x that; f32's greedy tokens identical."""
    ids = _ids()
    ref = _logits(llama, ids)
    opt = ut.optimize(llama, fuse=True, fuse_qkv=True, **kw)
    got = _logits(opt, ids)
    rms = float(ref.pow(2).mean().sqrt())
    err = got - ref
    assert float(err.pow(2).mean().sqrt()) <= rms_tol * rms
    assert float(err.abs().max()) <= 5 * rms_tol * rms
    unfused = ut.optimize(llama, **kw)
    assert sum(isinstance(m, ut.Linear) for m in unfused.modules()) == 2 * 7 + 1  # q k v o gate up down, lm_head
    if kw:  # quantized: one call for q/k/v and one for gate/up/silu/product, bit for bit the unfused values
        torch.testing.assert_close(got, _logits(unfused, ids), rtol=0, atol=0)
        assert sum(isinstance(m, ut.SwiGLU) for m in opt.modules()) == 2
    else:  # f32: the same layers in other calls; rounding order may differ
        torch.testing.assert_close(got, _logits(unfused, ids), rtol=1e-6, atol=1e-6)
    assert sum(type(m).__name__ == "_SharedInputPart" for m in opt.modules()) == 2 * 3
    if not kw:
        with torch.inference_mode():
            a = llama.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=0)
            b = opt.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=0)
        assert torch.equal(a, b)


def test_decode_steps_take_the_one_call_path(llama):
    """Greedy decode of an int8 model: every Linear call of a decode step is M = 1 and runs the
    decode path (runtime/decode.py)."""
    opt = ut.optimize(llama, weight_dtype="int8")
    with torch.inference_mode():
        opt.generate(_ids(), max_new_tokens=3, do_sample=False, pad_token_id=0)
    lins = [m for m in opt.modules() if isinstance(m, ut.Linear)]
    assert all(m.inner._decode is not None for m in lins)


def test_torch_threads_limited_while_optimized_model_runs(llama, monkeypatch):
    """torch_threads='auto': torch's intra-op threads are 1 inside the forward and generate() of
    the optimized model when ukernels runs several threads, and restored after (also after an
    error); None leaves them alone; an int sets them."""
    seen = []
    real_forward = type(llama).forward

    def spy(self, *a, **k):
        seen.append(torch.get_num_threads())
        return real_forward(self, *a, **k)

    monkeypatch.setattr(type(llama), "forward", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(ukernels.runtime.threads, "_requested", 2)
    try:
        opt = ut.optimize(llama)
        _logits(opt, _ids())
        assert seen[-1] == 1 and torch.get_num_threads() == 2
        with torch.inference_mode():
            opt.generate(_ids(), max_new_tokens=2, do_sample=False, pad_token_id=0)
        assert seen[-1] == 1 and torch.get_num_threads() == 2
        with pytest.raises(Exception):
            opt(torch.full((1, 3), 10**6))  # an out-of-range token id: the forward raises
        assert torch.get_num_threads() == 2
        copied = copy.deepcopy(opt)  # the copy's hooks and generate use its own setting
        _logits(copied, _ids())
        assert seen[-1] == 1 and torch.get_num_threads() == 2
        assert copied.generate.model is copied
        untouched = ut.optimize(llama, torch_threads=None)
        _logits(untouched, _ids())
        assert seen[-1] == 2
        three = ut.optimize(llama, torch_threads=3)
        _logits(three, _ids())
        assert seen[-1] == 3 and torch.get_num_threads() == 2
        monkeypatch.setattr(ukernels.runtime.threads, "_requested", 1)
        _logits(opt, _ids())
        assert seen[-1] == 2  # ukernels on one thread: "auto" leaves torch alone
    finally:
        torch.set_num_threads(before)


def test_optimized_model_pickles(llama):
    opt = ut.optimize(llama, weight_dtype="int8")
    again = pickle.loads(pickle.dumps(opt))
    ids = _ids()
    torch.testing.assert_close(_logits(again, ids), _logits(opt, ids), rtol=0, atol=0)


def test_errors():
    with pytest.raises(ValueError, match="torch_threads"):
        ut.optimize(torch.nn.Linear(4, 4), torch_threads=0)
    with pytest.raises(TypeError, match="nn.Module"):
        ut.optimize(np.ones(3))
    meta = torch.nn.Linear(8, 4, device="meta")
    with pytest.raises(ValueError, match="meta"):
        ut.optimize(torch.nn.Sequential(meta))
    # a model with no Linear is returned optimized as it is (nothing to replace)
    plain = torch.nn.Sequential(torch.nn.ReLU())
    assert isinstance(ut.optimize(plain)[0], torch.nn.ReLU)


def test_shared_input_parts_right_for_any_call_pattern(llama):
    """The fused q/k/v parts give each projection's own result whatever inputs they get: the
    same tensor (one product, reused), different tensors, a tensor changed in place between the
    calls, and a part called twice on one input."""
    attn = ut.optimize(llama, weight_dtype="int8", fuse_qkv=True).model.layers[0].self_attn
    ref = ut.optimize(llama, weight_dtype="int8").model.layers[0].self_attn
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(1, 3, 64, generator=g), torch.randn(1, 3, 64, generator=g)
    with torch.inference_mode():
        for name, x in (("q_proj", a), ("k_proj", a), ("v_proj", b), ("q_proj", b), ("q_proj", b)):
            assert torch.equal(getattr(attn, name)(x), getattr(ref, name)(x))
        y = attn.q_proj(a)
        a.mul_(2.0)  # changed in place: the cached product is stale
        assert torch.equal(attn.k_proj(a), ref.k_proj(a))
        assert torch.equal(attn.v_proj(a), ref.v_proj(a))
        assert torch.equal(y, ref.q_proj(a / 2.0))


def test_siblings_that_do_not_concatenate_stay_separate():
    """q/k/v of different in_features (or a bias on some only) are left as separate layers."""
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj = (torch.nn.Linear(8, 4), torch.nn.Linear(6, 4),
                                                     torch.nn.Linear(8, 4, bias=False))

        def forward(self, x, y):
            return self.q_proj(x) + self.k_proj(y) + self.v_proj(x)

    m = Odd()
    opt = ut.optimize(m, fuse_qkv=True)
    assert all(isinstance(getattr(opt, n), ut.Linear) for n in ("q_proj", "k_proj", "v_proj"))
    x, y = torch.randn(2, 8), torch.randn(2, 6)
    with torch.inference_mode():
        torch.testing.assert_close(opt(x, y), m(x, y), rtol=1e-5, atol=1e-5)


def test_gated_linear_equals_separate_layers(isa):
    """ukernels.GatedLinear (one call) against a Linear with the SiLU fused times a Linear, bit
    for bit, at every ISA level; errors."""
    from ukernels import ops as O
    rng = np.random.default_rng(9)
    for wd, g in (("int8", None), ("int4", 32), ("int8", 64)):
        for I, K in ((70, 64), (129, 128)):
            gw, uw = rng.standard_normal((I, K)).astype(np.float32), rng.standard_normal((I, K)).astype(np.float32)
            gl = ukernels.GatedLinear(gw, uw, weight_dtype=wd, group_size=g)
            lg = ukernels.Linear(gw, weight_dtype=wd, group_size=g, epilogue=[O.Silu()])
            lu = ukernels.Linear(uw, weight_dtype=wd, group_size=g)
            for M in (1, 3, 16, 20):
                x = rng.standard_normal((M, K)).astype(np.float32)
                np.testing.assert_array_equal(gl(x), lg(x) * lu(x))
    with pytest.raises(ValueError, match="weight_dtype"):
        ukernels.GatedLinear(gw, uw, weight_dtype="bf16")
    with pytest.raises(ValueError, match="one shape"):
        ukernels.GatedLinear(gw, uw[:, :-1])
    with pytest.raises(ValueError, match="in_features"):
        gl(np.ones((1, K + 1), np.float32))
