"""BOFT as HF PEFT's peft.tuners.boft computes it (the CUDA path, which
honours boft_n_butterfly_factor; HF's CPU fallback resets it to 1), for the
cross-check (see torch_methods.py): permutation matrices from
block_butterfly_perm/perm2mat, R = cayley_batch(boft_R) =
solve(I + S, I − S, left=False) with S = (A − Aᵀ)/2, block-diagonal per
factor, B_i = P_i·BD_i·P_iᵀ, M = B_{m−1}⋯B_0 (the loop
M = B_i @ M), forward x @ M through the base layer, output minus bias times
s plus bias. init_weights false takes the Go side's draws
(layer["init"]["boft_R"], ["boft_s"])."""
import math

import torch


def block_butterfly_perm(n, b, r=3, n_butterfly_factor=1):
    if n_butterfly_factor == 0:
        return torch.arange(n)
    if b * r * 2 > n:
        raise ValueError("Invalid number of blocks!")
    block_size = int(n // b)
    indices = torch.arange(n)

    def sort_block(b, r):
        step = b / r
        initial_order = torch.arange(b)
        sorted_order = torch.empty(b, dtype=torch.long)
        evens = torch.arange(0, step, 2)
        odds = torch.arange(1, step, 2)
        sorted_seq = torch.cat((evens, odds), dim=0)
        for i, pos in enumerate(sorted_seq):
            sorted_order[int(i * r): int(i * r + r)] = initial_order[int(pos * r): int(pos * r + r)]
        return sorted_order

    sorted_order = sort_block(block_size, r)
    for i in range(0, n, block_size):
        block_end = i + block_size
        tmp = indices[i:block_end]
        indices[i:block_end] = tmp[sorted_order]
    return indices


def perm2mat(indices):
    n = len(indices)
    P = torch.zeros((n, n))
    for i, idx in enumerate(indices):
        P[i, idx] = 1
    return P


def cayley_batch(data):
    b, r, c = data.shape
    skew = 0.5 * (data - data.transpose(1, 2))
    eye = torch.eye(r).unsqueeze(0).expand(b, r, c)
    return torch.linalg.solve(eye + skew, eye - skew, left=False)


def build(o, layers, case, lib):
    out = []
    for L in layers:
        in_f, out_f = L["in"], L["out"]
        W, bias = lib.tensor(L["W"], out_f, in_f), lib.tensor(L["b"], out_f)
        lay = lib.Layer(W, bias)
        bs, bn = o["boft_block_size"], o["boft_block_num"]
        nbf = o["boft_n_butterfly_factor"] - 1
        if bs == 0:
            bs = in_f // bn
        else:
            bn = in_f // bs
        P = torch.empty((nbf + 1, in_f, in_f))
        for i in range(nbf + 1):
            P[i] = perm2mat(block_butterfly_perm(in_f, int(bn / (2 ** i)), int(bs / 2), nbf))
        if o["init_weights"]:
            R0, s0 = torch.zeros(nbf + 1, bn, bs, bs), torch.ones(out_f, 1)
        else:
            R0 = lib.tensor(L["init"]["boft_R"], nbf + 1, bn, bs, bs)
            s0 = lib.tensor(L["init"]["boft_s"], out_f, 1)
        R, s = lay.add(R0), lay.add(s0)

        def fwd(x, R=R, s=s, P=P, W=W, bias=bias):
            N, D, H, _ = R.shape
            rot = cayley_batch(R.view(N * D, H, H)).view(N, D, H, H)
            bd = torch.stack([torch.block_diag(*torch.unbind(rot[i])) for i in range(N)])
            batch = torch.bmm(P, torch.bmm(bd, P.permute(0, 2, 1)))
            M = batch[0]
            for i in range(1, batch.shape[0]):
                M = batch[i] @ M
            result = torch.nn.functional.linear(x @ M, W, bias)
            return (result - bias) * s.squeeze(-1) + bias

        lay.forward = fwd
        out.append(lay)
    return out
