"""MoRA (Jiang et al. 2024, arXiv 2405.12130) as the authors' code
(kongds/MoRA, peft-mora LoraLayer.update_layer and _apply_mora) computes it:
new_r = int(sqrt((in + out) * r) + 0.5) (even for type 6), M = nn.Linear(new_r,
new_r) zero-initialised, scaling 1, result = base(x) + _apply_mora(x). mora_type
"sharing" is their type 1, "rope" their type 6."""
import math

import torch
import torch.nn.functional as F


def apply_mora(x, M, in_f, out_f, r, mora_type, cache):
    if mora_type == 1:
        sum_inter = in_f // r
        if in_f % r != 0:
            pad_size = r - in_f % r
            x = torch.cat([x, x[..., :pad_size]], dim=-1)
            sum_inter += 1
        in_x = x.view(*x.shape[:-1], sum_inter, r).sum(dim=-2)
    else:  # 6
        sum_inter = in_f // r
        rb1 = in_f // r if in_f % r == 0 else in_f // r + 1
        if in_f % r != 0:
            pad_size = r - in_f % r
            x = torch.cat([x, x[..., :pad_size]], dim=-1)
            sum_inter += 1
        in_x = x.view(*x.shape[:-1], sum_inter, r)
        if "cos" not in cache:
            inv_freq = 1.0 / (10000 ** (torch.arange(0, r, 2).float() / r))
            t = torch.arange(rb1)
            freqs = torch.outer(t, inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            cache["cos"] = emb.cos().unsqueeze(0)
            cache["sin"] = emb.sin().unsqueeze(0)
        rh_in_x = torch.cat((-in_x[..., r // 2:], in_x[..., :r // 2]), dim=-1)
        in_x = in_x * cache["cos"] + rh_in_x * cache["sin"]

    out_x = F.linear(in_x, M)

    if mora_type == 1:
        repeat_time = out_f // r
        if out_f % r != 0:
            repeat_time += 1
        out_x = torch.cat([out_x] * repeat_time, dim=-1)[..., :out_f]
    else:
        out_x = out_x.view(*x.shape[:-1], -1)[..., :out_f]
        if out_x.shape[-1] < out_f:
            repeat_time = out_f // out_x.shape[-1]
            if out_f % out_x.shape[-1] != 0:
                repeat_time += 1
            out_x = torch.cat([out_x] * repeat_time, dim=-1)[..., :out_f]
    return out_x


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("mora cross-check: dropout must be 0")
    mora_type = {"sharing": 1, "rope": 6}[o["mora_type"]]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        new_r = int(math.sqrt((n + m) * o["rank"]) + 0.5)
        if mora_type == 6:
            new_r = new_r // 2 * 2
        M = lay.add(torch.zeros(new_r, new_r))
        cache = {}

        def fwd(h, W=W, b=b, M=M, m=m, n=n, new_r=new_r, cache=cache):
            return F.linear(h, W, b) + apply_mora(h, M, n, m, new_r, mora_type, cache)

        lay.forward = fwd
        out.append(lay)
    return out
