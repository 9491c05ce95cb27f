"""DyLoRA (Valipour et al., EACL 2023) as the authors' loralib computes a
training step (huawei-noah/Efficient-NLP, DyLoRA/loralib): at the step's
rank b the layer adds (alpha/r) * sqrt(r/b)^2 * (x A[:b]^T) B[:, :b]^T, i.e.
scale alpha/b; in frozen mode (nested dropout) A[:b-1] and B[:, :b-1] are
detached, so only row b of A and column b of B get a gradient. One b per
step for all layers.

Shared inputs from the Go side: A (Kaiming, from the trial's stream), B = 0,
and the ranks the method's own stream draws (b of step 0, then one after
each optimiser step)."""
import torch


def build(o, layers, case, lib):
    r, alpha, frozen = o["rank"], o["alpha"], o["frozen"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, bias)
        A = lay.add(lib.tensor(L["init"]["lora_A"], r, n))
        B = lay.add(torch.zeros(m, r))
        lay.ranks = [int(v) for v in L["init"]["ranks"]]
        lay.b = lay.ranks[0]

        def fwd(x, W=W, bias=bias, A=A, B=B, lay=lay):
            b = lay.b
            if frozen:
                Ab = torch.cat([A[:b - 1].detach(), A[b - 1:b]], dim=0)
                Bb = torch.cat([B[:, :b - 1].detach(), B[:, b - 1:b]], dim=1)
            else:
                Ab, Bb = A[:b], B[:, :b]
            return x @ W.T + bias + (alpha / b) * (x @ Ab.T) @ Bb.T

        lay.forward = fwd
        out.append(lay)
    return out


def after_step(o, lays, step):
    for lay in lays:
        lay.b = lay.ranks[step + 1]
