"""DeLoRA (Bini et al. 2025, arXiv 2503.18225) as HF PEFT's
peft.tuners.delora.layer.DeloraLinear computes it:
    w_norm = torch.norm(W0, dim=0)                      (per input channel)
    h = F.linear(x * w_norm, A)
    An = clamp(A.norm(dim=1), min=1e-4); Bn = clamp(B.norm(dim=0), min=1e-4)
    h = h * (lambda / r) / (An * Bn)
    y = base(x) + F.linear(h, B)
A kaiming_uniform_(a=√5) (exported), B zeros (init_weights) or kaiming too
(exported), lambda = delora_lambda, trainable.
"""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    r = o["rank"]
    out = []
    for L in layers:
        out_f, in_f = L["out"], L["in"]
        W, b = lib.tensor(L["W"], out_f, in_f), lib.tensor(L["b"], out_f)
        lay = lib.Layer(W, b)
        A = lay.add(lib.tensor(L["init"]["delora_A"], r, in_f))
        if o["init_weights"]:
            B = torch.zeros(out_f, r)
        else:
            B = lib.tensor(L["init"]["delora_B"], out_f, r)
        B = lay.add(B)
        lam = lay.add(torch.empty(1).fill_(float(o["delora_lambda"])))
        w_norm = torch.norm(W, dim=0).detach()

        def fwd(x, W=W, b=b, A=A, B=B, lam=lam, w_norm=w_norm):
            h = F.linear(x * w_norm, A)
            An = torch.clamp(A.norm(dim=1), min=1e-4)
            Bn = torch.clamp(B.norm(dim=0), min=1e-4)
            h = h * ((lam / r) / (An * Bn))
            return F.linear(x, W, b) + F.linear(h, B)

        lay.forward = fwd
        out.append(lay)
    return out
