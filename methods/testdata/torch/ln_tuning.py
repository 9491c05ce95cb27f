"""LN tuning's PyTorch cross-check (methods/lntuning_test.go,
TestLNTuningTorch), on its own small model with norm layers: the MLP of
torch_methods.py has none, so this module defines no build() and
torch_methods.py never loads it.

The model: x → norm1 → fc1 → ReLU → norm2 → head (logits), the norms
LayerNorm (torch.nn.LayerNorm, eps 1e-5) or RMSNorm (HF's LlamaRMSNorm
formula: x · rsqrt(mean(x²) + eps) · γ). LN tuning as HF PEFT's
LNTuningLayer does it (peft/tuners/ln_tuning/layer.py): every targeted norm
is wrapped, its base module frozen, a copy.deepcopy of it trained, and the
forward pass goes through the copy; everything else is frozen. Targets are
HF's: a string target_modules is re.fullmatch'ed against module names, and
None targets every norm. AdamW with per-tensor weight decay flags (norm
tensors: none, as the transformers Trainer excludes them), global-norm
clipping before the step, as in torch_methods.py.

Usage: python3 ln_tuning.py CASES.json  → {"case name": [loss, ...]}
"""
import copy
import json
import re
import sys

import torch
import torch.nn.functional as F


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LNTuningLayer(torch.nn.Module):
    """HF PEFT's LNTuningLayer for one adapter: base frozen, copy trained."""

    def __init__(self, base):
        super().__init__()
        self.base_layer = base
        self.ln_tuning_layers = torch.nn.ModuleDict({"default": copy.deepcopy(base)})
        self.base_layer.requires_grad_(False)
        self.ln_tuning_layers.requires_grad_(True)

    def forward(self, x):
        return self.ln_tuning_layers["default"](x)


def tensor(values, *shape):
    return torch.tensor(values, dtype=torch.float32).reshape(*shape)


def run(case):
    norms = {}
    for n in case["norms"]:
        d = len(n["weight"])
        m = torch.nn.LayerNorm(d, eps=1e-5) if n["bias"] is not None else RMSNorm(d)
        with torch.no_grad():
            m.weight.copy_(tensor(n["weight"], d))
            if n["bias"] is not None:
                m.bias.copy_(tensor(n["bias"], d))
        norms[n["name"]] = m
    lins = {}
    for L in case["linears"]:
        lin = torch.nn.Linear(L["in"], L["out"])
        with torch.no_grad():
            lin.weight.copy_(tensor(L["W"], L["out"], L["in"]))
            lin.bias.copy_(tensor(L["b"], L["out"]))
        lin.requires_grad_(False)
        lins[L["name"]] = lin
    for m in norms.values():
        m.requires_grad_(False)
    target = case["target_modules"]
    for name in list(norms):
        if target is None or re.fullmatch(target, name):
            norms[name] = LNTuningLayer(norms[name])

    def forward(x):
        h = norms["norm1"](x)
        h = F.relu(lins["fc1"](h))
        h = norms["norm2"](h)
        return lins["head"](h)

    groups = []
    for name, m in norms.items():
        for pname, p in m.named_parameters():
            if p.requires_grad:
                groups.append({"params": [p], "lr": case["lr"], "weight_decay": 0.0})
    params = [g["params"][0] for g in groups]
    opt = torch.optim.AdamW(groups, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=case["weight_decay"])
    x = tensor(case["x"], case["batch"], case["features"])
    y = torch.tensor(case["labels"])
    losses = []
    for _ in range(case["steps"]):
        opt.zero_grad()
        loss = F.cross_entropy(forward(x), y)
        losses.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, case["clip"])
        opt.step()
    return losses


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    json.dump({c["name"]: run(c) for c in cases}, sys.stdout)


if __name__ == "__main__":
    main()
