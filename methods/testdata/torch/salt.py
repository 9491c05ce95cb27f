"""SALT (Elsayed et al. 2025, arXiv 2503.16055) as the authors' code
(BioMedIA-MBZUAI/SALT, prompt_adapted_SAM2/modeling/Adapters/SALT.py,
SALTLinear) computes it: W0 = U diag(S) Vh (thin SVD, this module's own,
with the sign rule of lib.canonical_svd); new_s = diag(S) with the top-r
diagonal replaced by trainable_scale_A * S_r + trainable_shift_B (init 1, 0)
and the trailing block increased by trainable_X @ trainable_Y (X exported,
Kaiming; Y = 0); W' = U relu(new_s) Vh. relu "elementwise" is the code's
F.relu on every entry; "diagonal" applies it to the diagonal of new_s only;
"none" drops it."""
import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    r, rl, mode = o["rank"], o["lora_rank"], o["relu"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        U, S, Vh = lib.canonical_svd(W)
        U, S, Vh = U.float(), S.float(), Vh.float()
        k = S.shape[0]
        scale = lay.add(torch.ones(r))
        shift = lay.add(torch.zeros(r))
        X = lay.add(lib.tensor(L["init"]["salt_X"], k - r, rl))
        Y = lay.add(torch.zeros(rl, k - r))

        def fwd(h, W=W, b=b, U=U, S=S, Vh=Vh, scale=scale, shift=shift, X=X, Y=Y):
            new_s = torch.diag(S).clone()
            new_s[:r, :r] = torch.diag(scale * S[:r] + shift)
            new_s[r:, r:] += X @ Y
            if mode == "elementwise":
                new_s = F.relu(new_s)
            elif mode == "diagonal":
                d = torch.diagonal(new_s)
                new_s = new_s - torch.diag(d) + torch.diag(F.relu(d))
            return F.linear(h, U @ new_s @ Vh, b)

        lay.forward = fwd
        out.append(lay)
    return out
