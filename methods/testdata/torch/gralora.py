"""GraLoRA (Jung et al. 2025) as HF PEFT's peft.tuners.gralora computes its
forward: gralora_A (k, in/k, r), gralora_B (k, r, out/k);
out = einsum("bljr, jro -> bljo", einsum("blni, nir -> blnr", x blocks, A)
.view(B, L, k, k, r/k).permute(0, 1, 3, 2, 4).reshape(B, L, k, r), B),
scaled by α/(r + hybrid_r), plus the hybrid LoRA pair under the same scale.

Shared inputs from the Go side: gralora_A (HF's layout) and the hybrid A,
drawn from the trial's stream (HF: torch's global generator). B = 0."""
import torch


def build(o, layers, case, lib):
    r, k, hr = o["rank"], o["gralora_k"], o["hybrid_r"]
    scaling = o["alpha"] / (r + hr)
    out = []
    for L in layers:
        out_f, in_f = L["out"], L["in"]
        W, bias = lib.tensor(L["W"], out_f, in_f), lib.tensor(L["b"], out_f)
        lay = lib.Layer(W, bias)
        A = lay.add(lib.tensor(L["init"]["gralora_A"], k, in_f // k, r))
        B = lay.add(torch.zeros(k, r, out_f // k))
        AG = BG = None
        if hr > 0:
            AG = lay.add(lib.tensor(L["init"]["gralora_A_general"], hr, in_f))
            BG = lay.add(torch.zeros(out_f, hr))

        def fwd(x, W=W, bias=bias, A=A, B=B, AG=AG, BG=BG, in_f=in_f):
            result = x @ W.T + bias
            x3 = x.unsqueeze(1)
            Bn, Ln, _ = x3.shape
            N, sub = k, r // k
            output = torch.einsum(
                "bljr, jro -> bljo",
                torch.einsum("blni, nir -> blnr", x3.view(Bn, Ln, N, in_f // N), A)
                .view(Bn, Ln, N, N, sub)
                .permute(0, 1, 3, 2, 4)
                .reshape(Bn, Ln, N, N * sub),
                B,
            ).reshape(Bn, Ln, -1).squeeze(1)
            result = result + scaling * output
            if AG is not None:
                result = result + scaling * ((x @ AG.T) @ BG.T)
            return result

        lay.forward = fwd
        out.append(lay)
    return out
