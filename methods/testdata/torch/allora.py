"""ALLoRA (Huang and Balestriero 2024) as peftbench implements it (the
paper's exact formula was not retrievable; see methods/allora.go): LoRA
without dropout or scaling, h W0^T + b + (h A^T) B^T, A Kaiming (exported)
and B = 0, where each row theta_i of A and of B learns at
lr / sqrt(||theta_i||^2 + 1/eta^2), from the weights before the update
(norm "factor": one norm per matrix).

apply "lr": every row of A and B is a leaf tensor of its own (stacked in
the forward pass) in its own AdamW param group, whose lr is set from the
coefficient before each step - torch's AdamW then scales both the step and
the decoupled weight decay. apply "gradient": plain AdamW, and each row of
the clipped gradient is multiplied by its coefficient before the step."""
import math

import torch


def coefficients(o, rows):
    """One coefficient per row tensor of one matrix."""
    inv = 1.0 / (o["eta"] * o["eta"])
    with torch.no_grad():
        sq = [float((r.double() ** 2).sum()) for r in rows]
    if o["norm"] == "factor":
        c = 1.0 / math.sqrt(sum(sq) + inv)
        return [c] * len(rows)
    return [1.0 / math.sqrt(s + inv) for s in sq]


def build(o, layers, case, lib):
    r = o["rank"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A0 = lib.tensor(L["init"]["lora_A"], r, n)
        a_rows = [lay.add(A0[i].clone()) for i in range(r)]
        b_rows = [lay.add(torch.zeros(r)) for _ in range(m)]
        lay.matrices = (a_rows, b_rows)

        def fwd(h, W=W, b=b, a_rows=a_rows, b_rows=b_rows):
            A, B = torch.stack(a_rows), torch.stack(b_rows)
            return h @ W.T + b + (h @ A.T) @ B.T

        lay.forward = fwd
        out.append(lay)
    return out


class RowLR:
    """AdamW whose row groups take lr * coefficient at every step."""

    def __init__(self, o, lays, groups, case):
        self.o, self.lays, self.lr = o, lays, case["lr"]
        self.opt = torch.optim.AdamW(groups, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8)
        self.group = {id(g["params"][0]): g for g in self.opt.param_groups}

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        for lay in self.lays:
            for rows in lay.matrices:
                for t, c in zip(rows, coefficients(self.o, rows)):
                    self.group[id(t)]["lr"] = self.lr * c
        self.opt.step()


def make_optimizer(o, lays, groups, case):
    if o["apply"] == "lr":
        return RowLR(o, lays, groups, case)
    return torch.optim.AdamW(groups, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8)


def before_step(o, lays, step):
    if o["apply"] != "gradient":
        return
    with torch.no_grad():
        for lay in lays:
            for rows in lay.matrices:
                for t, c in zip(rows, coefficients(o, rows)):
                    t.grad.mul_(c)
