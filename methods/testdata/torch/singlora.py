"""SingLoRA (Bensaid et al. 2025, arXiv 2507.05566): W = W0 + (alpha/r) u(t) A A^T
with one A of max(out, in) x r; on a non-square layer the paper (Sec. 4.4)
truncates A to its first min(out, in) rows, A*: in > out gives the truncated
(A A^T)[:out, :in], out > in gives A A*^T. The ramp u(t) = min(t/T, 1), t the
optimiser steps taken (0 in the first step's forward), T = ramp * steps
rounded half up, at least 1. A's initial value is exported from the Go side."""
import math

import torch
import torch.nn.functional as F


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("singlora cross-check: dropout must be 0")
    r = o["rank"]
    s = o["alpha"] / r
    state = {"t": 0, "T": max(1, math.floor(o["ramp"] * case["steps"] + 0.5))}
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A = lay.add(lib.tensor(L["init"]["singlora_A"], max(m, n), r))

        def fwd(h, W=W, b=b, A=A, m=m, n=n):
            if n > m:
                dW = (A @ A.T)[:m, :n]
            else:
                dW = A @ A[:n].T
            u = min(state["t"] / state["T"], 1.0)
            return F.linear(h, W, b) + F.linear(h, s * u * dW)

        lay.forward = fwd
        lay.state = state
        out.append(lay)
    return out


def after_step(o, lays, step):
    lays[0].state["t"] = step + 1
