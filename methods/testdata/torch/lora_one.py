"""LoRA-One (Zhang, Liu and Chen 2025) as the authors' code initialises it
(YuanheZ/LoRA-One run_exp.py, direction "LoRA-One"): G = mean over
grad_batches of dL/dW0 with the adapters off; -G = U S Vh (canonical
signs); B = U_r sqrt(S_r)/sqrt(S_1), A = sqrt(S_r) Vh_r/sqrt(S_1); scale
"stable" divides both by sqrt(gamma), "gd" by s; s = alpha/sqrt(r) with
use_rslora; W0 is not reset (unless residual), so training starts at
W0 + s B A."""
import math

import torch


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("lora-one cross-check: dropout must be 0")
    r = o["rank"]
    s = o["alpha"] / math.sqrt(r) if o["use_rslora"] else o["alpha"] / r
    Ws = [lib.tensor(L["W"], L["out"], L["in"]).requires_grad_() for L in layers]
    bs = [lib.tensor(L["b"], L["out"]) for L in layers]
    fwd = [lambda h, W=W, b=b: h @ W.T + b for W, b in zip(Ws, bs)]
    grads = [torch.zeros_like(W) for W in Ws]
    for _ in range(o["grad_batches"]):
        for acc, g in zip(grads, torch.autograd.grad(lib.case_loss(case, fwd), Ws)):
            acc += g
    out = []
    for W, b, G in zip(Ws, bs, grads):
        W = W.detach()
        U, S, Vh = lib.canonical_svd(-G / o["grad_batches"])
        c = 1 / math.sqrt(S[0].item())
        if o["scale"] == "stable":
            c /= math.sqrt(o["stable_gamma"])
        elif o["scale"] == "gd":
            c /= s
        root = c * S[:r].sqrt()
        A0, B0 = root[:, None] * Vh[:r], U[:, :r] * root[None, :]
        base = (W.to(lib.F64) - s * B0 @ A0).float() if o["residual"] else W
        lay = lib.Layer(W, b)
        A, B = lay.add(A0.float()), lay.add(B0.float())
        lay.forward = lambda h, base=base, b=b, A=A, B=B: h @ base.T + b + s * (h @ A.T) @ B.T
        out.append(lay)
    return out
