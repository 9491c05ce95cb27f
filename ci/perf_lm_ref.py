#!/usr/bin/env python3
"""PyTorch CPU reference for `bench perf --lm`: one LM LoRA training step.

Builds a random GPT-2- or GPT-NeoX-shaped causal LM in plain torch (no
transformers), puts LoRA (r=8, alpha=16, B zero, no dropout) on every layer's
fused query/key/value projection (HF PEFT's default target for both
families), freezes everything else, and times training steps: forward, the
causal-LM loss (HF shift, mean over batch·(seq−1) targets, logits formed in
full as transformers does), backward, gradient clipping at 1, AdamW (lr 1e-4,
weight decay 0.01) on the adapter. The weights are random: the step's cost
depends on the shapes only, which are the same as the Go side's.

Prints a JSON array of {"name", "value", "unit"} on stdout:

    torch/step/lm/NAME/lora      ms        median of the timed steps
    torch/tokens/lm/NAME/lora    tokens/s  batch·seq over that median
    torch/mem/lm/NAME/peak_rss   bytes     this process's VmHWM after the steps

GPT-2: learned positions, pre-LN blocks, GELU tanh, tied head. GPT-NeoX:
rotary on the first ROTARY columns of each head (rotate-half), parallel
residual x + attn(ln1 x) + mlp(ln2 x), exact GELU, untied head.

Usage: perf_lm_ref.py --family gpt2|gpt_neox --name NAME --layers L --dim D
--heads H --ffn F --vocab V [--rotary R] --batch B --seq T [--warmup W]
[--steps S] [--threads N]
"""

import argparse
import json
import os
import statistics
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", choices=("gpt2", "gpt_neox"), required=True)
    ap.add_argument("--name", required=True)
    for k in ("layers", "dim", "heads", "ffn", "vocab", "batch", "seq"):
        ap.add_argument("--" + k, type=int, required=True)
    ap.add_argument("--rotary", type=int, default=0, help="rotated columns per head (GPT-NeoX)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    return ap.parse_args()


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    a = parse_args()
    # As ci/perf_ref.py: let OpenBLAS pick its kernel for this CPU, with the
    # same thread count as the engine (before torch loads).
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(var, None)
    if a.threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(a.threads)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"perf_lm_ref: torch unavailable ({e})", file=sys.stderr)
        json.dump([], sys.stdout)
        return
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, h, B, T = a.dim, a.heads, a.batch, a.seq
    hd = d // h

    def w(*shape):
        return torch.randn(*shape) * 0.02

    layers = []
    for _ in range(a.layers):
        layers.append(dict(
            ln1=(1 + w(d), w(d)), ln2=(1 + w(d), w(d)),
            qkv=(w(3 * d, d), w(3 * d)), o=(w(d, d), w(d)),
            up=(w(a.ffn, d), w(a.ffn)), down=(w(d, a.ffn), w(d)),
            A=torch.nn.Parameter(w(8, d)), B=torch.nn.Parameter(torch.zeros(3 * d, 8))))
    embed = w(a.vocab, d)
    pos = w(1024, d) if a.family == "gpt2" else None
    head = embed if a.family == "gpt2" else w(a.vocab, d)
    lnf = (1 + w(d), w(d))
    params = [p for l in layers for p in (l["A"], l["B"])]
    scale = 16 / 8

    if a.rotary > 0:
        inv = 1.0 / (10000 ** (torch.arange(0, a.rotary, 2).float() / a.rotary))
        f = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos(), emb.sin()

    def rope(x):
        rd = a.rotary
        xr, xp = x[..., :rd], x[..., rd:]
        half = torch.cat((-xr[..., rd // 2:], xr[..., :rd // 2]), dim=-1)
        return torch.cat((xr * cos + half * sin, xp), dim=-1)

    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)

    def attention(q, k, v):
        s = (q @ k.transpose(-1, -2)) * hd ** -0.5
        return torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v

    def ln(x, p):
        return F.layer_norm(x, (d,), p[0], p[1], 1e-5)

    def attn(l, x):
        qkv = F.linear(x, *l["qkv"]) + scale * F.linear(F.linear(x, l["A"]), l["B"])
        if a.family == "gpt2":
            q, k, v = (t.view(B, T, h, hd).transpose(1, 2) for t in qkv.split(d, dim=-1))
        else:
            qkv = qkv.view(B, T, h, 3 * hd).transpose(1, 2)
            q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
            if a.rotary > 0:
                q, k = rope(q), rope(k)
        o = attention(q, k, v).transpose(1, 2).reshape(B, T, d)
        return F.linear(o, *l["o"])

    def mlp(l, x):
        u = F.linear(x, *l["up"])
        u = F.gelu(u, approximate="tanh") if a.family == "gpt2" else F.gelu(u)
        return F.linear(u, *l["down"])

    def loss_fn(ids):
        x = embed[ids]
        if pos is not None:
            x = x + pos[:T]
        for l in layers:
            if a.family == "gpt2":
                x = x + attn(l, ln(x, l["ln1"]))
                x = x + mlp(l, ln(x, l["ln2"]))
            else:
                x = mlp(l, ln(x, l["ln2"])) + attn(l, ln(x, l["ln1"])) + x
        logits = F.linear(ln(x, lnf), head)
        return F.cross_entropy(logits[:, :-1].reshape(-1, a.vocab), ids[:, 1:].reshape(-1))

    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, a.vocab, (B, T), generator=torch.Generator().manual_seed(1))

    def step():
        opt.zero_grad(set_to_none=False)
        loss_fn(ids).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"perf_lm_ref: {a.name}: torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{a.warmup} warm-up + {a.steps} timed steps, median {med * 1e3:.0f} ms", file=sys.stderr)
    out = [{"name": f"torch/step/lm/{a.name}/lora", "value": med * 1e3, "unit": "ms"},
           {"name": f"torch/tokens/lm/{a.name}/lora", "value": B * T / med, "unit": "tokens/s"},
           {"name": f"torch/mem/lm/{a.name}/peak_rss", "value": peak_rss(), "unit": "bytes"}]
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
