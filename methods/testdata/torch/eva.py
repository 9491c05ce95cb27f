"""EVA (Paischer et al. 2024) as HF PEFT's peft.tuners.lora.eva computes it,
with the PCA exact instead of incremental (peftbench's convention): each
targeted layer's inputs over calib_batches batches (the case's one batch,
as the Go test's calibration repeats it) with the adapters off; centred,
SVD X - mu = U S Vh; components Vh signed by svd_flip(u_based_decision=
False) (largest-|.| entry of each row positive); explained-variance ratio
S^2 / ||X - mu||_F^2. Each layer offers its first round(rho*r) components;
among layers of equal in+out the r*L best ratios win (stable order: layer,
then component). A = components[:r_l] (/ sqrt(S) if whiten), B = 0,
alpha_l = alpha*r_l/r if adjust_scaling_factors, s = alpha_l/r_l."""
import torch


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("eva cross-check: dropout must be 0")
    r, nb = o["rank"], o["calib_batches"]
    xs = lib.layer_inputs(case)
    pcs = []
    for L, x in zip(layers, xs):
        X = x.to(lib.F64).repeat(nb, 1)
        Xc = X - X.mean(dim=0)
        _, S, Vh = torch.linalg.svd(Xc, full_matrices=False)
        idx = Vh.abs().argmax(dim=1)
        sign = torch.sign(Vh[torch.arange(Vh.shape[0]), idx])
        Vh = Vh * sign[:, None]
        k = min(round(o["rho"] * r), L["in"], X.shape[0])
        ratio = S ** 2 / (Xc ** 2).sum()
        pcs.append((Vh[:k], S[:k], ratio[:k]))
    ranks = [0] * len(layers)
    classes = {}
    for i, L in enumerate(layers):
        classes.setdefault(L["in"] + L["out"], []).append(i)
    for members in classes.values():
        cands = [(pcs[i][2][p].item(), i) for i in members for p in range(len(pcs[i][2]))]
        cands.sort(key=lambda c: -c[0])  # stable
        for _, i in cands[: r * len(members)]:
            ranks[i] += 1
    out = []
    for L, (comps, S, _), rl in zip(layers, pcs, ranks):
        W, b = lib.tensor(L["W"], L["out"], L["in"]), lib.tensor(L["b"], L["out"])
        lay = lib.Layer(W, b)
        if rl == 0:
            lay.forward = lambda h, W=W, b=b: h @ W.T + b
            out.append(lay)
            continue
        A0 = comps[:rl]
        if o["whiten"]:
            A0 = A0 / S[:rl].sqrt()[:, None]
        alpha = o["alpha"] * rl / r if o["adjust_scaling_factors"] else o["alpha"]
        s = alpha / rl
        A = lay.add(A0.float())
        B = lay.add(torch.zeros(L["out"], rl))
        lay.forward = lambda h, W=W, b=b, A=A, B=B, s=s: h @ W.T + b + s * (h @ A.T) @ B.T
        out.append(lay)
    return out
