"""Flora (Hao, Cao and Mou 2024, arXiv 2402.03293) as peftbench's
Flora-Adam (methods/flora.go): Adam whose momentum is stored only as a
rank-r random projection C, resampled every kappa steps with the momentum
transferred (C <- down_new(up_old(C))), in the authors' flora_opt order:
u = G/(sqrt(v_hat) + eps) with Adam's elementwise v; the update's momentum
is beta1*up(C_prev) + (1-beta1)*u, then (at t % kappa == 0) the resample,
then C <- beta1*C + (1-beta1)*down(u); U = M/(1 - beta1^t), clipped to
RMS <= clip_threshold (flora_opt's Adafactor update clipping).

Projections are drawn here from torch.Generator().manual_seed(seed + 1 + i +
k*L) (i: the weight's index among the L targeted weights, k: the
interval): 2*r*d uniforms, Box-Muller in float64, / sqrt(r): r x m (left,
m < n: down(X) = A X) or n x r (right: down(X) = X A). Weights with
r >= min(m, n) are not compressed: plain AdamW."""
import math

import torch

F64 = torch.float64


def build(o, layers, case, lib):
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        lay = lib.Layer(lib.tensor(L["W"], m, n), lib.tensor(L["b"], m))
        W = lay.add(lay.W.clone())
        b = lay.add(lay.b.clone(), decay=False)
        lay.forward = lambda h, W=W, b=b: h @ W.T + b
        out.append(lay)
    return out


def gaussian(seed, shape, r):
    n = shape[0] * shape[1]
    g = torch.Generator().manual_seed(seed)
    u = torch.empty(2 * n).uniform_(0, 1, generator=g).to(F64)
    z = torch.sqrt(-2 * torch.log(1 - u[:n])) * torch.cos(2 * math.pi * u[n:])
    return (z / math.sqrt(r)).float().reshape(shape)


class FloraAdam(torch.optim.Optimizer):
    def __init__(self, groups, o):
        mats = [dict(g) for g in groups if g["params"][0].dim() == 2]
        for i, g in enumerate(mats):
            g["index"] = i
        self.L = len(mats)
        comp = [g for g in mats if min(g["params"][0].shape) > o["rank"]]
        plain = [g for g in mats if min(g["params"][0].shape) <= o["rank"]]
        vecs = [dict(g) for g in groups if g["params"][0].dim() != 2]
        super().__init__(comp or [{"params": []}], {})
        self.inner = torch.optim.AdamW(vecs + plain, betas=(0.9, 0.999), eps=1e-8)
        self.o = o

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        self.inner.zero_grad(set_to_none)

    def proj(self, i, k, m, n):
        o = self.o
        r = o["rank"]
        shape = (r, m) if m < n else (n, r)
        return gaussian(o["projection_seed"] + 1 + i + k * self.L, shape, r)

    @torch.no_grad()
    def step(self):
        o, b1, b2, eps = self.o, 0.9, 0.999, 1e-8
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                lr, wd, i = g["lr"], g["weight_decay"], g["index"]
                G = p.grad
                m, n = G.shape
                left = m < n
                down = (lambda A, X: A @ X) if left else (lambda A, X: X @ A)
                up = (lambda A, C: A.T @ C) if left else (lambda A, C: C @ A.T)
                st = self.state[p]
                t, k = st.get("t", 0), st.get("k", 0)
                A = self.proj(i, k, m, n)
                if "C" not in st:
                    st["C"] = torch.zeros_like(down(A, G))
                    st["v"] = torch.zeros_like(G)
                t += 1
                C = st["C"]
                v = st["v"].mul_(b2).addcmul_(G, G, value=1 - b2)
                u = G / ((v / (1 - b2 ** t)).sqrt() + eps)
                M = b1 * up(A, C) + (1 - b1) * u
                if t % o["kappa"] == 0:
                    k += 1
                    A2 = self.proj(i, k, m, n)
                    C = down(A2, up(A, C))
                    A = A2
                C = b1 * C + (1 - b1) * down(A, u)
                U = M / (1 - b1 ** t)
                if o["clip_threshold"] > 0:
                    rms = (U.to(F64).norm() / math.sqrt(U.numel())).item()
                    U = U / max(1.0, rms / o["clip_threshold"])
                p.mul_(1 - lr * wd)
                p.add_(U, alpha=-lr)
                st["C"], st["t"], st["k"] = C, t, k
        self.inner.step()


def make_optimizer(o, lays, groups, case):
    return FloraAdam(groups, o)
