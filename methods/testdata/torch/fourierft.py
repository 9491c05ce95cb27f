"""FourierFT (Gao et al. 2024) as HF PEFT computes it
(peft/tuners/fourierft/layer.py): n_frequency positions from
torch.randperm(out·in, generator=torch.Generator().manual_seed(random_loc_seed)),
split into (i // in, i % in); a dense spectrum holding the trainable real
coefficients there; ΔW = torch.fft.ifft2(spectrum).real · scaling; the layer
adds F.linear(x, ΔW) to the base output. The initial coefficients (HF's
torch.randn, init_weights=False) come from the Go side; init_weights=True
starts them at zero."""
import torch


def build(o, layers, case, lib):
    out = []
    nf, scaling = o["n_frequency"], o["scaling"]
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        idx = torch.randperm(m * n, generator=torch.Generator().manual_seed(o["random_loc_seed"]))[:nf]
        idx = torch.stack([idx // n, idx % n], dim=0)
        if o["init_weights"]:
            c = torch.zeros(nf)
        else:
            c = lib.tensor(L["init"]["spectrum"], nf)
        c = lay.add(c)

        def delta(c=c, idx=idx, m=m, n=n):
            dense = torch.zeros(m, n)
            dense[idx[0, :], idx[1, :]] = c.float()
            return torch.fft.ifft2(dense).real * scaling

        lay.forward = lambda h, W=W, b=b, delta=delta: h @ W.T + b + torch.nn.functional.linear(h, delta())
        out.append(lay)
    return out
