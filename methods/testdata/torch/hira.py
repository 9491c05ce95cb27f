"""HiRA (Huang et al., ICLR 2025) as HF PEFT's peft.tuners.hira computes it
for a Linear layer: result = base(x) + F.linear(dropout(x), W0 * (A.T @ B.T).T)
, i.e. delta = W0 * (B @ A), no scaling. Init: init_weights True draws A
Kaiming-uniform, "gaussian" A ~ N(0, 1/r^2) (both exported from the Go side)
and zeros B; False keeps random A and B (both exported)."""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    if o["hira_dropout"]:
        raise ValueError("hira cross-check: hira_dropout must be 0")
    r = o["rank"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A = lay.add(lib.tensor(L["init"]["hira_A"], r, n))
        if o["init_weights"] == "false":
            B = lay.add(lib.tensor(L["init"]["hira_B"], m, r))
        else:
            B = lay.add(torch.zeros(m, r))

        def fwd(h, W=W, b=b, A=A, B=B):
            prod = torch.mm(A.T, B.T)
            return F.linear(h, W, b) + F.linear(h, W * prod.T)

        lay.forward = fwd
        out.append(lay)
    return out
