"""LoLDU (Shi et al. 2024, arXiv 2410.13618) as the authors' code
(SKDDJ/LoLDU, minloldu/loldu.py) computes it: P, L, U = torch.linalg.lu(W0),
D = diag(U), U <- U / D (rows); the first r columns of L, entries of D and
rows of U; vector_z = D_r; scaling_factor sigma = alpha / r; the residual
W0 - sigma0 * P L_r diag(D_r) U_r is frozen and the layer applies
residual + sigma * P L_r diag(z) U_r. z trains, and sigma with train_scale.
The decomposition runs here in float64 (the code's in float32)."""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    r = o["rank"]
    sigma0 = o["alpha"] / r
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        P, Lf, Uf = torch.linalg.lu(W.to(lib.F64))
        D = torch.diagonal(Uf)
        Uf = Uf / D.unsqueeze(-1)
        PL = (P @ Lf[:, :r]).float()
        Ur = Uf[:r].float()
        Dr = D[:r].float()
        res = (W.to(lib.F64) - sigma0 * (P @ Lf[:, :r]) @ torch.diag(D[:r]) @ Uf[:r]).float()
        z = lay.add(Dr.clone())
        if o["train_scale"]:
            sigma = lay.add(torch.tensor(sigma0, dtype=torch.float32))
        else:
            sigma = torch.tensor(sigma0, dtype=torch.float32)

        def fwd(h, res=res, b=b, PL=PL, Ur=Ur, z=z, sigma=sigma):
            return F.linear(h, res + sigma * (PL * z) @ Ur, b)

        lay.forward = fwd
        out.append(lay)
    return out
