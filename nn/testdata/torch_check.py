"""Replays a Go training run of package nn in PyTorch (torch_test.go).

Usage: torch_check.py DIR... For each DIR, DIR/spec.json describes the model, its tensors
(raw little-endian float32 files in DIR), the trainable ones, the batch and
the optimiser; the script trains for spec["steps"] AdamW steps and writes
DIR/out.json with the loss of every step, the gradients of the first and
last steps (before clipping) and the final values of the trainable tensors.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def main(d):
    torch.set_num_threads(1)
    spec = json.load(open(os.path.join(d, "spec.json")))
    T = {}
    for t in spec["tensors"]:
        a = np.fromfile(os.path.join(d, t["file"]), dtype="<f4").reshape(t["shape"])
        T[t["name"]] = torch.tensor(a)
    trainable = spec["trainable"]
    for p in trainable:
        T[p["name"]].requires_grad_(True)
    lora = spec.get("lora") or {}
    lora_layers = set(lora.get("layers", []))
    scale = lora.get("scale", 0.0)

    def linear(name, x):
        y = x @ T[name + ".weight"].T
        if name + ".bias" in T:
            y = y + T[name + ".bias"]
        if name in lora_layers:
            y = y + scale * ((x @ T[name + ".lora_A.weight"].T) @ T[name + ".lora_B.weight"].T)
        return y

    eps = spec["norm_eps"]

    def norm(name, x):
        w = T[name + ".weight"]
        if name + ".bias" in T:
            return F.layer_norm(x, (x.shape[-1],), w, T[name + ".bias"], eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    acts = {"relu": F.relu, "tanh": torch.tanh, "gelu": lambda x: F.gelu(x, approximate="tanh")}

    if spec["model"] == "mlp":
        x = torch.tensor(np.fromfile(os.path.join(d, spec["x"]), dtype="<f4").reshape(spec["x_shape"]))
        names = spec["linears"]

        def forward():
            h = x
            for i, n in enumerate(names):
                h = linear(n, h)
                if i + 1 < len(names):
                    h = acts[spec["act"]](h)
            return h
    else:
        cfg = spec["cfg"]
        B, S = spec["batch"], spec["seq"]
        D, H = cfg["Dim"], cfg["Heads"]
        hd = D // H
        ids = torch.tensor(spec["ids"], dtype=torch.long)
        pos = torch.arange(S).repeat(B)
        mask = torch.ones(S, S, dtype=torch.bool).tril()

        def attention(q, k, v):
            def split(t):
                return t.view(B, S, H, hd).transpose(1, 2)
            q, k, v = split(q), split(k), split(v)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            s = s.masked_fill(~mask, float("-inf"))
            o = torch.softmax(s, dim=-1) @ v
            return o.transpose(1, 2).reshape(B * S, D)

        def forward():
            h = T["tok_emb.weight"][ids] + T["pos_emb.weight"][pos]
            for i in range(cfg["Blocks"]):
                p = "blocks.%d." % i
                a = norm(p + "ln1", h)
                a = attention(linear(p + "attn.q", a), linear(p + "attn.k", a), linear(p + "attn.v", a))
                h = h + linear(p + "attn.o", a)
                m = norm(p + "ln2", h)
                h = h + linear(p + "mlp.down", F.gelu(linear(p + "mlp.up", m), approximate="tanh"))
            return linear("head", norm("ln_f", h))

    labels = torch.tensor(spec["labels"], dtype=torch.long)
    o = spec["opt"]
    groups = [{"params": [T[p["name"]]], "lr": o["lr"] * p["lrmul"],
               "weight_decay": o["wd"] if p["decay"] else 0.0} for p in trainable]
    opt = torch.optim.AdamW(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    params = [T[p["name"]] for p in trainable]
    out = {"losses": []}
    steps = spec["steps"]
    for step in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(forward(), labels, ignore_index=-1)
        loss.backward()
        out["losses"].append(loss.item())
        if step == 0 or step == steps - 1:
            key = "grads_first" if step == 0 else "grads_last"
            out[key] = {p["name"]: T[p["name"]].grad.flatten().tolist() for p in trainable}
        if o["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, o["clip"])
        opt.step()
    out["final"] = {p["name"]: T[p["name"]].detach().flatten().tolist() for p in trainable}
    json.dump(out, open(os.path.join(d, "out.json"), "w"))


if __name__ == "__main__":
    for d in sys.argv[1:]:
        main(d)
