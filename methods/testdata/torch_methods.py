"""Re-implements LoRA, rsLoRA, DoRA, PiSSA and VeRA in PyTorch from the
papers' formulas and trains each on the case peftbench's methods test
writes (same base weights, same random factors, same data), printing the
loss before each of the AdamW steps as JSON: {"method": [loss, ...]}.

Usage: python3 torch_methods.py CASES.json
"""
import json
import math
import sys

import torch


def tensor(values, *shape):
    return torch.tensor(values, dtype=torch.float32).reshape(*shape)


def adapter(method, layer, rank, alpha):
    """Returns (forward(h), trainable tensors) for one linear layer."""
    out, inp = layer["out"], layer["in"]
    W, b = tensor(layer["W"], out, inp), tensor(layer["b"], out)
    if method in ("lora", "rslora"):
        # Hu et al. 2021: h W0ᵀ + s (h Aᵀ) Bᵀ, B = 0; rsLoRA: s = α/√r.
        s = alpha / rank if method == "lora" else alpha / math.sqrt(rank)
        A = tensor(layer["A"], rank, inp).requires_grad_()
        B = torch.zeros(out, rank, requires_grad=True)
        return (lambda h: h @ W.T + b + s * (h @ A.T) @ B.T), [A, B]
    if method == "pissa":
        # Meng et al. 2024: W0 = U S Vᵀ, A = √(S_r/s) V_rᵀ, B = U_r √(S_r/s),
        # W_res = W0 − s B A frozen. Our own SVD: signs may differ from
        # Go's, which leaves the training trajectory's losses unchanged.
        s = alpha / rank
        U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        root = torch.sqrt(S[:rank] / s)
        A = (root[:, None] * Vh[:rank]).float().requires_grad_()
        B = (U[:, :rank] * root[None, :]).float().requires_grad_()
        Wres = (W.double() - s * B.detach().double() @ A.detach().double()).float()
        return (lambda h: h @ Wres.T + b + s * (h @ A.T) @ B.T), [A, B]
    if method == "dora":
        # Liu et al. 2024: W' = m (W0 + sBA) / ‖W0 + sBA‖_row, m = ‖W0‖_row,
        # the norm detached.
        s = alpha / rank
        A = tensor(layer["A"], rank, inp).requires_grad_()
        B = torch.zeros(out, rank, requires_grad=True)
        m = W.norm(dim=1).clone().requires_grad_()

        def forward(h):
            Wp = W + s * B @ A
            n = Wp.norm(dim=1).detach()
            return h @ (Wp * (m / n)[:, None]).T + b

        return forward, [A, B, m]
    if method == "vera":
        # Kopiczko et al. 2023: ΔW = Λ_b B Λ_d A, A and B frozen random,
        # d = 0.1, b = 0.
        A = tensor(layer["VA"], rank, inp)
        Bm = tensor(layer["VB"], out, rank)
        d = torch.full((rank,), 0.1, requires_grad=True)
        bv = torch.zeros(out, requires_grad=True)
        return (lambda h: h @ W.T + b + (((h @ A.T) * d) @ Bm.T) * bv), [d, bv]
    raise ValueError(method)


def run(case):
    x = tensor(case["x"], case["batch"], case["layers"][0]["in"])
    y = torch.tensor(case["labels"])
    forwards, params = [], []
    for layer in case["layers"]:
        if layer.get("frozen"):
            W = tensor(layer["W"], layer["out"], layer["in"])
            b = tensor(layer["b"], layer["out"])
            forwards.append(lambda h, W=W, b=b: h @ W.T + b)
            continue
        f, ps = adapter(case["method"], layer, case["rank"], case["alpha"])
        forwards.append(f)
        params += ps
    opt = torch.optim.AdamW(params, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=case["weight_decay"])
    losses = []
    for _ in range(case["steps"]):
        h = x
        for i, f in enumerate(forwards):
            h = f(h)
            if i + 1 < len(forwards):
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    json.dump({c["method"]: run(c) for c in cases}, sys.stdout)


if __name__ == "__main__":
    main()
