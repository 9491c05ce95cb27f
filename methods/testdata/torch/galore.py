"""GaLore (Zhao et al. 2024, arXiv 2403.03507) and, with fira=True, Fira
(Chen et al. 2024, arXiv 2410.01623), re-implemented from the papers'
update rules and the authors' galore_torch / fira_adamw (proj_type "std"),
with torch.optim.AdamW's arithmetic and decay order (peftbench's
convention, see methods/galore.go).

Every targeted weight W (m×n) trains in full. Every update_proj_gap steps of
that weight (its steps 0, T, 2T, …) P comes from this side's own SVD of the
clipped gradient G (canonical_svd: float64, each u_i's largest-|.| entry
positive): P = U[:, :r] if m < n (R = Pᵀ G), else P = Vh[:r] (R = G Pᵀ);
Adam moments of R are kept across refreshes; ψ = m̂/(√v̂ + ε);
W ← W(1 − lr·wd) − lr·scale·back(ψ). Fira adds S = φ ⊙ (G − scale·back(R)),
φ = ‖ψ‖/(‖R‖ + 1e-8) along fira_adamw's norm_dim (0 if R has fewer rows
than columns, else 1), limited to grow by γ = 1.01 per step, and steps
W ← W(1 − lr·wd) − lr·(scale·back(ψ) + S). Biases: torch.optim.AdamW.
The sign of P cancels within a period (back(ψ(R)) is invariant to flipping
a column of P and the matching row of R, m, ψ); across a refresh the kept
moments meet the new P, so both sides use the same sign rule."""
import math

import torch


LIB = None  # torch_methods, for canonical_svd (build receives it)


def build(o, layers, case, lib):
    global LIB
    LIB = lib
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        lay = lib.Layer(lib.tensor(L["W"], m, n), lib.tensor(L["b"], m))
        W = lay.add(lay.W.clone())
        b = lay.add(lay.b.clone(), decay=False)
        lay.forward = lambda h, W=W, b=b: h @ W.T + b
        out.append(lay)
    return out


class ProjectedAdam(torch.optim.Optimizer):
    def __init__(self, groups, o, lib, fira=False):
        mats = [dict(g) for g in groups if g["params"][0].dim() == 2]
        vecs = [dict(g) for g in groups if g["params"][0].dim() != 2]
        super().__init__(mats, {})
        self.inner = torch.optim.AdamW(vecs, betas=(0.9, 0.999), eps=1e-8)
        self.o, self.lib, self.fira = o, lib, fira
        self.b1, self.b2, self.eps = 0.9, 0.999, 1e-8

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        self.inner.zero_grad(set_to_none)

    @torch.no_grad()
    def step(self):
        o, b1, b2 = self.o, self.b1, self.b2
        scale = o["scale"]
        for g in self.param_groups:
            p = g["params"][0]
            if p.grad is None:
                continue
            lr, wd = g["lr"], g["weight_decay"]
            G = p.grad
            m, n = G.shape
            r = min(o["rank"], m, n)
            left = m < n
            st = self.state[p]
            t = st.get("t", 0)
            if t % o["update_proj_gap"] == 0:
                U, S, Vh = self.lib.canonical_svd(G)
                st["P"] = (U[:, :r] if left else Vh[:r]).float()
            P = st["P"]
            R = P.T @ G if left else G @ P.T
            back = (lambda X: P @ X) if left else (lambda X: X @ P)
            if "m" not in st:
                st["m"], st["v"] = torch.zeros_like(R), torch.zeros_like(R)
            t += 1
            st["t"] = t
            mo = st["m"].mul_(b1).add_(R, alpha=1 - b1)
            v = st["v"].mul_(b2).addcmul_(R, R, value=1 - b2)
            psi = (mo / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + self.eps)
            p.mul_(1 - lr * wd)
            if not self.fira:
                p.add_(back(psi), alpha=-lr * scale)
                continue
            Sg = G - scale * back(R)
            dim = 0 if R.shape[0] < R.shape[1] else 1
            phi = psi.norm(dim=dim) / (R.norm(dim=dim) + 1e-8)
            Sg = Sg * (phi[None, :] if dim == 0 else phi[:, None])
            nS = Sg.norm().item()
            if "prev" in st:
                lim = max(nS / (st["prev"] + 1e-8), 1.01) / 1.01
                Sg = Sg / lim
                st["prev"] = nS / lim
            else:
                st["prev"] = nS
            p.add_(scale * back(psi) + Sg, alpha=-lr)
        self.inner.step()


def make_optimizer(o, lays, groups, case):
    return ProjectedAdam(groups, o, LIB)
