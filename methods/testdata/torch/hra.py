"""HRA (Yuan et al. 2024) as HF PEFT's peft.tuners.hra.layer.HRALinear
computes it: W' = W0 @ H with H from get_delta_weight, then F.linear.

H = prod_i (I - 2 u_i u_i^T / |u_i|^2) over the columns of hra_u (In x r),
built by right-multiplying the identity in column order; with apply_GS the
columns are orthonormalised by Gram-Schmidt first and H = I - 2 Q Q^T.
hra_u's initial value (HF: Kaiming-uniform halves repeated, or plain
Kaiming-uniform) is drawn from the trial's stream and comes from Go.
"""
import torch
import torch.nn.functional as F


def delta_weight(U, rank, apply_GS):
    """HF's HRALinear.get_delta_weight (reverse=False)."""
    n = U.shape[0]
    if apply_GS:
        weight = [(U[:, 0] / U[:, 0].norm()).view(-1, 1)]
        for i in range(1, rank):
            ui = U[:, i].view(-1, 1)
            for j in range(i):
                ui = ui - (weight[j].t() @ ui) * weight[j]
            weight.append((ui / ui.norm()).view(-1, 1))
        weight = torch.cat(weight, dim=1)
        return torch.eye(n) - 2 * weight @ weight.t()
    Un = U / U.norm(dim=0)
    weight = torch.eye(n)
    for i in range(rank):
        ui = Un[:, i].view(-1, 1)
        weight = weight - 2 * weight @ ui @ ui.t()
    return weight


def build(o, layers, case, lib):
    r, gs = o["rank"], o["apply_GS"]
    out = []
    for L in layers:
        W, b = lib.tensor(L["W"], L["out"], L["in"]), lib.tensor(L["b"], L["out"])
        lay = lib.Layer(W, b)
        U = lay.add(lib.tensor(L["init"]["hra_u"], L["in"], r))
        lay.U = U

        def fwd(h, W=W, b=b, U=U):
            new_weight = torch.mm(torch.eye(W.shape[1]), delta_weight(U, r, gs))
            return F.linear(h, torch.mm(W, new_weight), b)

        lay.forward = fwd
        out.append(lay)
    return out
