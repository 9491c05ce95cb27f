"""MELoRA (Ren et al., ACL 2024) as the authors' code (ChasonShi/MELoRA,
peft-0.5.0/src/peft/tuners/melora.py) computes a Linear layer: the input is
cut into g = n_split equal blocks, mini LoRA i (rank r_i = r/g) maps block
i to output block i, each scaled by its own lora_alpha / r_i, and the
outputs are concatenated: result += cat_i(B_i(A_i(x_i)) * alpha / r_i).

Shared inputs from the Go side: the A_i (Kaiming, from the trial's stream),
stacked as an (r, in/g) matrix; every B_i = 0."""
import torch


def build(o, layers, case, lib):
    r, g, alpha = o["rank"], o["n_split"], o["alpha"]
    ri = r // g
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, bias)
        Astack = lib.tensor(L["init"]["melora_A"], r, n // g)
        As = [lay.add(Astack[i * ri:(i + 1) * ri].clone()) for i in range(g)]
        Bs = [lay.add(torch.zeros(m // g, ri)) for _ in range(g)]

        def fwd(x, W=W, bias=bias, As=As, Bs=Bs, n=n):
            parts = []
            for i in range(g):
                xi = x[:, i * (n // g):(i + 1) * (n // g)]
                parts.append((xi @ As[i].T) @ Bs[i].T * (alpha / ri))
            return x @ W.T + bias + torch.cat(parts, dim=-1)

        lay.forward = fwd
        out.append(lay)
    return out
