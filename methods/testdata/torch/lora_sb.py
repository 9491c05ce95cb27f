"""LoRA-SB (Ponkshe, Singhal et al. 2024) as the authors' code initialises
it (lora-sb utils/gradient_utils.py, initialization_utils.py): G = mean
over grad_batches of dL/dW0 with the adapters off; first-update
approximation D = -eta sign(G) (update "sign") or -eta G ("grad"); D = U S
Vh (exact, canonical signs); B = U_r and A = Vh_r frozen, R = diag(S_r)
trainable; Delta W = s B R A with s = 1 (alpha = r); W0 kept (unless
residual: B (R - R0) A)."""
import torch


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("lora-sb cross-check: dropout must be 0")
    r, eta = o["rank"], o["init_lr"]
    Ws = [lib.tensor(L["W"], L["out"], L["in"]).requires_grad_() for L in layers]
    bs = [lib.tensor(L["b"], L["out"]) for L in layers]
    fwd = [lambda h, W=W, b=b: h @ W.T + b for W, b in zip(Ws, bs)]
    grads = [torch.zeros_like(W) for W in Ws]
    for _ in range(o["grad_batches"]):
        for acc, g in zip(grads, torch.autograd.grad(lib.case_loss(case, fwd), Ws)):
            acc += g
    out = []
    for W, b, G in zip(Ws, bs, grads):
        W = W.detach()
        G = G / o["grad_batches"]
        D = -eta * torch.sign(G) if o["update"] == "sign" else -eta * G
        U, S, Vh = lib.canonical_svd(D)
        Bf, Af = U[:, :r].float(), Vh[:r].float()
        R0 = torch.diag(S[:r]).float()
        lay = lib.Layer(W, b)
        R = lay.add(R0.clone())
        Rf = R0 if o["residual"] else torch.zeros_like(R0)
        lay.forward = lambda h, W=W, b=b, Bf=Bf, Af=Af, R=R, Rf=Rf: h @ W.T + b + ((h @ Af.T) @ (R - Rf).T) @ Bf.T
        out.append(lay)
    return out
