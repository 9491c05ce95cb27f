"""NOLA (Koohpayegani et al., ICLR 2024, arXiv 2310.02556) as the authors'
code (UCDvision/NOLA: GenerateParams, NOLALinear inside its LoRA module)
computes it: delta W = (alpha/r) B A with A = A0 + sum_i a_i A_i and
B = sum_j b_j B_j. Bases: torch.manual_seed(seed); nn.init.uniform_(W, -1, 1)
on a (k, rows, cols) block, times 1/sqrt(k). A0 is NOLALinear's own frozen
Kaiming weight (exported from the Go side), the coefficients start at 0.
Layer i's seeds: basis_seed + 2i (A), basis_seed + 2i + 1 (B)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def generate_basis(seed, num, rows, cols):
    rng_state = torch.get_rng_state()
    torch.manual_seed(seed)
    w = torch.zeros(num, rows, cols)
    nn.init.uniform_(w, a=-1.0, b=1.0)
    w = w * (1.0 / math.sqrt(num))
    torch.set_rng_state(rng_state)
    return w


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("nola cross-check: dropout must be 0")
    r, k = o["rank"], o["num_basis"]
    nb = o["num_basis_b"] or k
    s = o["alpha"] / r
    seed = o["basis_seed"]
    out = []
    for i, L in enumerate(layers):
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        basis_a = generate_basis(seed + 2 * i, k, r, n)
        basis_b = generate_basis(seed + 2 * i + 1, nb, m, r)
        A0 = lib.tensor(L["init"]["nola_A0"], r, n)
        ca = lay.add(torch.zeros(k))
        cb = lay.add(torch.zeros(nb))

        def fwd(h, W=W, b=b, basis_a=basis_a, basis_b=basis_b, A0=A0, ca=ca, cb=cb):
            A = torch.einsum("b,boi->oi", ca, basis_a) + A0
            B = torch.einsum("b,boi->oi", cb, basis_b)
            return F.linear(h, W, b) + (h @ A.T @ B.T) * s

        lay.forward = fwd
        out.append(lay)
    return out
