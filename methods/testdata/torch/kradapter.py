"""KRAdapter (Albert et al., ICCV 2025) as the authors' KRAdapterLinearLayer
(PaulAlbert31/KRAdapter README) computes a Linear layer: k = min(in, out),
q = int(sqrt(k)), d the smallest with q(q+d) >= max(in, out); U (k, q) = 0,
V (k, q+d) Kaiming-uniform(a=5);
update = (U.unsqueeze(1) * V.unsqueeze(-1)).view(k, -1), transposed when
the short sides of (out, in) and the update differ, cropped to [:out, :in];
result = base(x) + x @ update.T * scaling.

Shared input from the Go side: V (random, from the trial's stream)."""
import math

import torch


def build(o, layers, case, lib):
    s = o["scaling"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, bias)
        k, big = min(m, n), max(m, n)
        q = math.isqrt(k)
        d = 0
        while q * (q + d) < big:
            d += 1
        U = lay.add(torch.zeros(k, q))
        V = lay.add(lib.tensor(L["init"]["kr_V"], k, q + d))

        def fwd(x, W=W, bias=bias, U=U, V=V, m=m, n=n, k=k):
            update = (U.unsqueeze(1) * V.unsqueeze(-1)).view(k, -1)
            if torch.argmin(torch.tensor([m, n])) != torch.argmin(torch.tensor(update.shape)):
                update = update.T
            update = update[:m, :n]
            return x @ W.T + bias + s * x @ update.T

        lay.forward = fwd
        out.append(lay)
    return out
