"""MoSLoRA (Wu et al. 2024) as the authors' patched HF PEFT (wutaiqiang/
MoSLoRA, lora_use_mixer) computes a Linear layer: result = base(x) +
lora_B(lora_AB(lora_A(x))) * alpha / r, i.e. delta = (alpha/r) B M A with a
trainable r x r mixer M (lora_AB). Shared inputs from the Go side: A and M
(random inits from the trial's stream); B = 0."""
import torch


def build(o, layers, case, lib):
    r = o["rank"]
    s = o["alpha"] / r
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, bias)
        A = lay.add(lib.tensor(L["init"]["lora_A"], r, n))
        M = lay.add(lib.tensor(L["init"]["lora_AB"], r, r))
        B = lay.add(torch.zeros(m, r))
        lay.forward = lambda x, W=W, bias=bias, A=A, M=M, B=B: x @ W.T + bias + s * ((x @ A.T) @ M.T) @ B.T
        out.append(lay)
    return out
