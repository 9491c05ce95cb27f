"""Tied-LoRA (Renduchintala et al. 2023, arXiv 2311.09578):
delta W_l x = (alpha/r) Lambda_v B Lambda_u A x with A, B tied across the layers
of one projection type and per-layer u (r), v (out). The cross-check MLP's fc1
and fc2 are two types, so each layer has its own A, B here. A's Kaiming init is
exported from the Go side; B = 0, u = v = 1. train_a / train_uv freeze A or
u, v."""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("tied-lora cross-check: dropout must be 0")
    r = o["rank"]
    s = o["alpha"] / r
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A = lib.tensor(L["init"]["tied_lora_A"], r, n)
        if o["train_a"]:
            lay.add(A)
        B = lay.add(torch.zeros(m, r))
        u, v = torch.ones(r), torch.ones(m)
        if o["train_uv"]:
            lay.add(u)
            lay.add(v)

        def fwd(h, W=W, b=b, A=A, B=B, u=u, v=v):
            dW = v[:, None] * (B @ (u[:, None] * A))
            return F.linear(h, W, b) + s * F.linear(h, dW)

        lay.forward = fwd
        out.append(lay)
    return out
