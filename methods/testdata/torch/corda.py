"""CorDA (Yang et al. 2024) as HF PEFT's peft.tuners.lora.corda computes it:
per calibration batch X_b (the case's batch, calib_batches times, as the Go
test's calibration repeats it) X_b / |max X_b|, C = mean_b X_b^T X_b;
C + damp*mean(diag C)*I, damp 0.01 doubled until ||C_f C_f^-1 - I|| < 0.05;
W0 C_f = U S Vh (canonical signs), V = (Vh C_f^-1)^T; ipm keeps the first r
triplets, kpm the last r; S /= s; A = sqrt(S) V^T, B = U sqrt(S);
W_res = W0 - s B A frozen."""
import torch


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("corda cross-check: dropout must be 0")
    r, s, nb = o["rank"], o["alpha"] / o["rank"], o["calib_batches"]
    out = []
    for L, x in zip(layers, lib.layer_inputs(case)):
        W, b = lib.tensor(L["W"], L["out"], L["in"]), lib.tensor(L["b"], L["out"])
        C = torch.zeros(L["in"], L["in"], dtype=lib.F64)
        for _ in range(nb):
            xb = x.to(lib.F64)
            xb = xb / torch.max(xb).abs()
            C += xb.T @ xb
        C /= nb
        eye = torch.eye(L["in"], dtype=lib.F64)
        damp = 0.01
        while True:
            Cf = C + eye * torch.mean(torch.diag(C)) * damp
            inv = torch.linalg.inv(Cf)
            if torch.dist(Cf @ inv, eye).item() < 0.05:
                break
            damp *= 2
        U, S, Vh = lib.canonical_svd(W.to(lib.F64) @ Cf)
        V = (Vh @ inv).T
        sel = slice(0, r) if o["corda_method"] == "ipm" else slice(S.shape[0] - r, S.shape[0])
        Sr = S[sel] / s
        A0 = V[:, sel].T * Sr.sqrt()[:, None]
        B0 = U[:, sel] * Sr.sqrt()[None, :]
        Wres = (W.to(lib.F64) - s * B0 @ A0).float()
        lay = lib.Layer(W, b)
        A, B = lay.add(A0.float()), lay.add(B0.float())
        lay.forward = lambda h, Wres=Wres, b=b, A=A, B=B: h @ Wres.T + b + s * (h @ A.T) @ B.T
        out.append(lay)
    return out
