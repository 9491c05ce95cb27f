"""LoRI (Zhang et al. 2025, arXiv 2504.07448): delta W = s (B * M) A, A frozen
(exported, the trial's random draw), B trained from 0, s = alpha / r. Both
stages of the authors' code (juzhengz/LoRI) in one run: LoRI-D trains B dense
for the first round(dense_fraction * steps) steps (half up, at least 1);
then the mask keeps |B| >= the k-th largest |B|, k = int((1 - sparsity) * N),
over every B at once (mask_scope "global", extract_mask.py get_model_mask) or
per layer ("layer", its get_matrixwise_mask); LoRI-S restarts: B from 0
(reset_b; else B * M), a fresh AdamW, and trains B * M."""
import math

import torch
import torch.nn.functional as F

_state = {}


def build(o, layers, case, lib):
    r = o["rank"]
    s = o["alpha"] / r
    _state.clear()
    _state["steps"] = case["steps"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A = lib.tensor(L["init"]["lori_A"], r, n)
        B = lay.add(torch.zeros(m, r))
        lay.B, lay.M = B, None

        def fwd(h, W=W, b=b, A=A, B=B, lay=lay):
            Bm = B if lay.M is None else B * lay.M
            return F.linear(h, W, b) + s * (h @ A.T) @ Bm.T

        lay.forward = fwd
        out.append(lay)
    return out


def make_optimizer(o, lays, groups, case):
    opt = torch.optim.AdamW(groups, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8)
    _state["opt"] = opt
    return opt


def _masks(o, Bs):
    absb = torch.cat([B.detach().abs().reshape(-1) for B in Bs])
    k = int((1 - o["sparsity"]) * absb.numel())
    if k <= 0:
        return [torch.zeros_like(B) for B in Bs]
    thr = torch.topk(absb, k).values[-1]
    return [(B.detach().abs() >= thr).float() for B in Bs]


def after_step(o, lays, step):
    dense = max(1, math.floor(o["dense_fraction"] * _state["steps"] + 0.5))
    if step != dense - 1:
        return
    Bs = [lay.B for lay in lays]
    if o["mask_scope"] == "global":
        Ms = _masks(o, Bs)
    else:
        Ms = [_masks(o, [B])[0] for B in Bs]
    with torch.no_grad():
        for lay, M in zip(lays, Ms):
            lay.M = M
            if o["reset_b"]:
                lay.B.zero_()
            else:
                lay.B.mul_(M)
    opt = _state["opt"]
    opt.state.clear()
