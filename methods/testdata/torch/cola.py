"""Chain of LoRA (Xia, Qin and Hazan 2024): J LoRA modules trained one
after another on equal stages of the run (stage j ends after step
floor(j*steps/J + 1/2) - 1); at the end of each stage but the last the
module's s B A is merged into the (frozen) weight, the next module starts
(its A from the Go side's export, one per link; B = 0) and the optimiser
restarts from an empty state (torch.optim.AdamW state cleared)."""
import math

import torch


def build(o, layers, case, lib):
    r, s, J = o["rank"], o["alpha"] / o["rank"], o["cola_chain"]
    if o["dropout"]:
        raise ValueError("cola cross-check: dropout must be 0")
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        lay.links = [lib.tensor(L["init"]["A%d" % j], r, n) for j in range(J)]
        A = lay.add(lay.links[0].clone())
        B = lay.add(torch.zeros(m, r))
        lay.A, lay.B, lay.s, lay.Wc = A, B, s, W.clone()
        lay.forward = lambda h, lay=lay: h @ lay.Wc.T + lay.b + lay.s * (h @ lay.A.T) @ lay.B.T
        lay.link = 0
        out.append(lay)
    return out


def make_optimizer(o, lays, groups, case):
    opt = torch.optim.AdamW(groups, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8)
    J, steps = o["cola_chain"], case["steps"]
    knots = {math.floor(j * steps / J + 0.5) - 1 for j in range(1, J)}
    for lay in lays:
        lay.opt, lay.knots, lay.steps = opt, knots, steps
    return opt


def after_step(o, lays, step):
    if step not in lays[0].knots or step + 1 >= lays[0].steps:
        return
    with torch.no_grad():
        for lay in lays:
            lay.Wc += lay.s * (lay.B @ lay.A)  # tie a knot: merge into the weight
            lay.link += 1
            lay.A.copy_(lay.links[lay.link])
            lay.B.zero_()
    lays[0].opt.state.clear()  # a fresh optimiser for the new modules
