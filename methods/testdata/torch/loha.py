"""LoHa (FedPara, Hyeon-Woo et al. 2021) as HF PEFT's peft.tuners.loha
computes it for a Linear layer: delta = ((w1a @ w1b) * (w2a @ w2b)) * scale
with scale = alpha / r (HadaWeight), added as F.linear(x, delta) to the base
output. Init (reset_adapter_parameters): w1a, w1b, w2a Kaiming-uniform
(the Go side's draws, exported), w2b zeros; init_weights=False draws w2b too.
rank_dropout / module_dropout act only in training mode with torch's global
generator and are 0 in the cross-check."""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    if o["rank_dropout"] or o["module_dropout"]:
        raise ValueError("loha cross-check: rank_dropout and module_dropout must be 0")
    r = o["rank"]
    scale = o["alpha"] / r
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        init = L["init"]
        w1a = lay.add(lib.tensor(init["hada_w1_a"], m, r))
        w1b = lay.add(lib.tensor(init["hada_w1_b"], r, n))
        w2a = lay.add(lib.tensor(init["hada_w2_a"], m, r))
        if o["init_weights"]:
            w2b = lay.add(torch.zeros(r, n))
        else:
            w2b = lay.add(lib.tensor(init["hada_w2_b"], r, n))

        def fwd(h, W=W, b=b, w1a=w1a, w1b=w1b, w2a=w2a, w2b=w2b):
            delta = ((w1a @ w1b) * (w2a @ w2b)) * scale
            return F.linear(h, W, b) + F.linear(h, delta)

        lay.forward = fwd
        out.append(lay)
    return out
