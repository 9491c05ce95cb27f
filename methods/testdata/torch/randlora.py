"""RandLoRA (Albert et al. 2025) as HF PEFT's peft.tuners.randlora computes
it. The shared frozen bases are drawn here as RandLoraModel draws them,
from torch.Generator().manual_seed(projection_prng_key), sized to the
elementwise largest (out, in) of the targeted layers (d = min, D = max):

- dense: _kaiming_init creates bf16 tensors (accelerate's
  is_bf16_available() is True on a CPU) and fills them with
  kaiming_uniform_(a=√5, generator): A (r, 1, d), then ⌈d/r⌉ blocks
  (D, 1, r) concatenated along dim 1 for B; each divided by its own std in
  bf16; the layer casts them to float32.
- sparse / very_sparse: torch.rand A (r, 1, d) then B (D, n, r); below
  1/(2s) → −1, above 1 − 1/(2s) → +1, else 0; divided by the std; s = 3 or
  √d.

Per layer (RandLoraLayer / Linear.get_scaled_bases): n = ⌈min(in,out)/r⌉,
λ (r, n) = 0, γ (n, min) = 1/max(n, min); update_A = (λ[:, :, None] ·
A[:, :n, :min] · γ[None]).flatten(end_dim=1), update_B =
B[:max, :n, :].flatten(start_dim=1); the smaller side gets update_A;
y = x W0ᵀ + b + F.linear(F.linear(x, ·), ·) · α/r. No shared inputs from
the Go side (init_weights=True draws nothing)."""
import math

import torch
import torch.nn.functional as F


def kaiming_bf16(shape, generator):
    t = torch.empty(shape, dtype=torch.bfloat16)
    # torch.nn.init.kaiming_uniform_(t, a=√5, generator=...) (torch ≥ 2.1
    # takes the generator; its body is this):
    fan_in = shape[1] * math.prod(shape[2:])
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    std = gain / math.sqrt(fan_in)
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return t.uniform_(-bound, bound, generator=generator)


def bases(o, layers):
    r = o["rank"]
    out_d = max(L["out"] for L in layers)
    in_d = max(L["in"] for L in layers)
    max_dim, min_dim = max(out_d, in_d), min(out_d, in_d)
    gen = torch.Generator(device="cpu").manual_seed(o["projection_prng_key"])
    num_bases = min_dim / r
    num_bases = int(num_bases) if num_bases.is_integer() else int(num_bases) + 1
    if o["sparse"] or o["very_sparse"]:
        sparsity = math.sqrt(min_dim) if o["very_sparse"] else 3
        A = torch.rand((r, 1, min_dim), generator=gen)
        B = torch.rand((max_dim, num_bases, r), generator=gen)
        Bs, As = torch.zeros(B.shape), torch.zeros(A.shape)
        Bs[B < 1 / (2 * sparsity)] = -1
        Bs[B > 1 - 1 / (2 * sparsity)] = 1
        As[A < 1 / (2 * sparsity)] = -1
        As[A > 1 - 1 / (2 * sparsity)] = 1
        return As / As.std(), Bs / Bs.std()
    A = kaiming_bf16((r, 1, min_dim), gen)
    B = torch.cat([kaiming_bf16((max_dim, 1, r), gen) for _ in range(num_bases)], dim=1)
    A, B = A / A.std(), B / B.std()
    return A.float(), B.float()


def build(o, layers, case, lib):
    r = o["rank"]
    A, B = bases(o, layers)
    scaling = o["alpha"] / r
    out = []
    for L in layers:
        out_f, in_f = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], out_f, in_f), lib.tensor(L["b"], out_f)
        lay = lib.Layer(W, bias)
        min_dim, max_dim = min(out_f, in_f), max(out_f, in_f)
        n = min_dim / r
        n = int(n) if n.is_integer() else int(n) + 1
        if o["init_weights"]:
            lam = torch.zeros(r, n)
            gam = torch.full((n, min_dim), 1 / max(n, min_dim))
        else:
            lam = lib.tensor(L["init"]["lambda"], r, n)
            gam = torch.ones(n, min_dim) / max(out_f, in_f)
        lam, gam = lay.add(lam), lay.add(gam)
        sA = A[:, :n, :min_dim]
        sB = B[:max_dim, :n, :]

        def fwd(x, W=W, bias=bias, lam=lam, gam=gam, sA=sA, sB=sB, in_f=in_f, min_dim=min_dim):
            update_B = sB.flatten(start_dim=1)
            update_A = (lam[:, :, None] * sA * gam[None, ]).flatten(end_dim=1)
            if min_dim == in_f:
                first, second = update_A, update_B
            else:
                first, second = update_B.T, update_A.T
            return x @ W.T + bias + F.linear(F.linear(x, first), second) * scaling

        lay.forward = fwd
        out.append(lay)
    return out
