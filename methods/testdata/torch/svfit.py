"""SVFit (Sun et al. 2024, arXiv 2409.05926): W0 = U S Vᵀ, W = W_e +
U_r diag(σ') V_rᵀ with W_e = W0 − U_r S_r V_rᵀ frozen and only σ' (init S_r)
trained. Computed here in the paper's form, the frozen residual W_e plus the
rank-r term, from this module's own SVD of W0."""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    r = o["rank"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        U, S, Vh = lib.canonical_svd(W)
        We = (W.to(lib.F64) - U[:, :r] @ torch.diag(S[:r]) @ Vh[:r]).float()
        Ur, Vr = U[:, :r].float(), Vh[:r].float()
        sig = lay.add(S[:r].float().clone())

        def fwd(h, We=We, b=b, Ur=Ur, Vr=Vr, sig=sig):
            return F.linear(h, We + (Ur * sig) @ Vr, b)

        lay.forward = fwd
        out.append(lay)
    return out
