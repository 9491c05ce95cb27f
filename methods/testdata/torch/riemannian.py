"""HF PEFT's Riemannian-preconditioned LoRA (peft.optimizers.riemannian,
Zhang and Pilanci 2024): plain LoRA, h W0^T + b + s (h A^T) B^T with A
Kaiming (exported from the Go side) and B = 0, or PiSSA's factors of W0
(computed here from W0's SVD); after clipping, before AdamW steps, each
pair's gradients become g_A <- pinv(B^T B + reg I) g_A and
g_B <- g_B pinv(A A^T + reg I)."""
import torch


def build(o, layers, case, lib):
    r, s = o["rank"], o["alpha"] / o["rank"]
    if o["dropout"]:
        raise ValueError("riemannian cross-check: dropout must be 0")
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        Wbase = W
        if o["init"] == "pissa":
            # Meng et al. 2024: A = sqrt(S_r/s) V_r^T, B = U_r sqrt(S_r/s),
            # the frozen base W0 - s B A.
            U, S, Vh = lib.canonical_svd(W)
            root = torch.sqrt(S[:r] / s)
            A0, B0 = root[:, None] * Vh[:r], U[:, :r] * root[None, :]
            Wbase = (W.to(lib.F64) - s * B0 @ A0).float()
            A, B = lay.add(A0.float()), lay.add(B0.float())
        elif o["init"] in ("kaiming", "gaussian"):
            A = lay.add(lib.tensor(L["init"]["lora_A"], r, n))
            B = lay.add(torch.zeros(m, r))
        else:
            raise ValueError(o["init"])
        lay.A, lay.B = A, B
        lay.forward = lambda h, W=Wbase, b=b, A=A, B=B: h @ W.T + b + s * (h @ A.T) @ B.T
        out.append(lay)
    return out


def before_step(o, lays, step):
    reg = o["reg"]
    with torch.no_grad():
        for lay in lays:
            a, b = lay.A.detach().double(), lay.B.detach().double()
            eye = torch.eye(a.shape[0], dtype=torch.float64)
            pa = torch.linalg.pinv(a @ a.T + reg * eye)
            pb = torch.linalg.pinv(b.T @ b + reg * eye)
            lay.A.grad.copy_((pb @ lay.A.grad.double()).float())
            lay.B.grad.copy_((lay.B.grad.double() @ pa).float())
