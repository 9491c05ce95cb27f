"""VB-LoRA (Li et al. 2024) as HF PEFT's peft.tuners.vblora computes it:
ONE trainable vector bank (num_vectors × vector_length) shared by every
targeted layer; per layer logits_A (r, in/b, h) and logits_B (out/b, r, h);
each length-b sub-vector is the softmax over its top-k logits times the
selected bank vectors (VBLoRALayer._get_low_rank_matrix); A = that
reshaped to (r, in), B = that transposed(1, 2) and reshaped to (out, r);
y = x W0ᵀ + b + F.linear(F.linear(x, A), B), no scale.

Shared inputs from the Go side: the bank and each layer's logits (drawn
from the trial's stream; HF draws them from torch's global generator)."""
import torch
import torch.nn.functional as F


def low_rank_matrix(logits, bank, topk):
    top_k_logits, indices = logits.topk(topk, dim=-1)
    topk_weights = F.softmax(top_k_logits, dim=-1)
    return (topk_weights.unsqueeze(-1) * bank[indices]).sum(-2)


def build(o, layers, case, lib):
    r, h, b, k = o["rank"], o["num_vectors"], o["vector_length"], o["topk"]
    bank = lib.tensor(layers[0]["init"]["bank"], h, b)
    out = []
    for i, L in enumerate(layers):
        out_f, in_f = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], out_f, in_f), lib.tensor(L["b"], out_f)
        lay = lib.Layer(W, bias)
        if i == 0:
            lay.add(bank)  # one tensor, listed once
        la = lay.add(lib.tensor(L["init"]["logits_A"], r, in_f // b, h))
        lb = lay.add(lib.tensor(L["init"]["logits_B"], out_f // b, r, h))

        def fwd(x, W=W, bias=bias, la=la, lb=lb):
            A = low_rank_matrix(la, bank, k).reshape(la.shape[0], -1)
            B = low_rank_matrix(lb, bank, k).transpose(1, 2).reshape(-1, lb.shape[1])
            return x @ W.T + bias + F.linear(F.linear(x, A), B)

        lay.forward = fwd
        out.append(lay)
    return out
