"""MiSS (Kang and Yin 2024, arXiv 2409.15371) as HF PEFT's
peft.tuners.miss.layer.MissLinear computes it:

- init_weights True ("balance"): miss_block D is (r, out), zero;
  y = base(x) + sum(pad(x).reshape(..., in_pad // r, r), dim=-2) @ D.
- init_weights False: the same with D kaiming_uniform_(a=√5) (exported).
- "mini": D is (r, mini_r), used as D.repeat(1, out // mini_r).
- "bat" (Bone): miss_block (out/r, r, r); W is viewed as blocks
  W.reshape(out/r, r, in/r, r).permute(2, 0, 1, 3), delta = W @ B + B,
  permuted back, and y = F.linear(x, W + delta, bias).
"""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    r, form = o["rank"], o["init_weights"]
    out = []
    for L in layers:
        out_f, in_f = L["out"], L["in"]
        W, b = lib.tensor(L["W"], out_f, in_f), lib.tensor(L["b"], out_f)
        lay = lib.Layer(W, b)
        if form == "bat":
            blk = lay.add(torch.zeros(out_f // r, r, r))

            def fwd(h, W=W, b=b, blk=blk, r=r):
                Wb = W.reshape(W.size(0) // r, r, W.size(1) // r, r).permute(2, 0, 1, 3)
                delta = (Wb @ blk + blk).permute(1, 2, 0, 3).reshape(*W.shape)
                return F.linear(h, W + delta, b)
        else:
            if form == "mini":
                blk = torch.zeros(r, o["mini_r"])
            elif form == "false":
                blk = lib.tensor(L["init"]["miss_block"], r, out_f)
            else:
                blk = torch.zeros(r, out_f)
            blk = lay.add(blk)

            def fwd(h, W=W, b=b, blk=blk, r=r, out_f=out_f):
                miss = blk.repeat(1, out_f // o["mini_r"]) if form == "mini" else blk
                x = h
                if x.size(-1) % r != 0:
                    x = F.pad(x, (0, (r - x.size(-1) % r) % r))
                return F.linear(h, W, b) + torch.sum(x.reshape(*x.shape[:-1], x.size(-1) // r, r), dim=-2) @ miss
        lay.forward = fwd
        out.append(lay)
    return out
