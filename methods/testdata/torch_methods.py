"""Re-implements peftbench's methods in PyTorch from the papers, HF
PEFT's source and the authors' code, and trains each on the case that
peftbench's methods test writes, printing the task loss before each AdamW
step as JSON: {"case name": [loss, ...]}.

What comes from the Go side is only the shared input: the base MLP's
weights, the batch, the options, and the random initial factors that a
method draws from the trial's own random stream (LoRA's Kaiming A, LoRA-XS's
R₀, AdaLoRA's P₀ and Q₀). Everything a method derives is computed here:
VeRA's projections from torch.Generator(projection_prng_key) as HF PEFT
draws them, the SVD / QR of W0 (PiSSA, OLoRA, LoRA-XS), the gradient
estimate and its SVD (LoRA-GA), the preconditioner (LoRA-FA), the importance
scores, budget schedule and orthogonality penalty (AdaLoRA). Decompositions
use the sign rule the Go side documents (methods.svd: each left singular
vector's largest-magnitude entry positive).

The loop is HF's Trainer order: loss (+ regulariser), backward, clip the
raw gradient, optimiser step (LoRA-FA preconditions inside it), then
AdaLoRA's update_and_allocate.

Methods added since the first twelve each have their own module,
testdata/torch/<method>.py (hyphens as underscores), loaded by name. A
module defines build(o, layers, case, lib) -> [Layer] (lib is this module:
tensor, Layer, canonical_svd, case_loss, layer_inputs, F64), and may define
the hooks regularizer(o, lays) -> loss term, before_step(o, lays, step) (after
clipping, before the optimiser step) and after_step(o, lays, step) (after
it), and make_optimizer(o, lays, groups, case) -> a torch optimiser to
step in AdamW's place (methods that replace the update: GaLore, Flora;
groups are AdamW's param groups, betas (0.9, 0.999), eps 1e-8, with each
group's lr and weight_decay). A layer dict's "init" holds the random tensors the Go side exported for
that method (its torchSpec.export).

Usage: python3 torch_methods.py CASES.json
"""
import importlib.util
import json
import math
import os
import sys

import torch

F64 = torch.float64


def tensor(values, *shape):
    return torch.tensor(values, dtype=torch.float32).reshape(*shape)


def canonical_svd(W):
    """Thin SVD in float64 with each u_i's largest-|.| entry positive."""
    U, S, Vh = torch.linalg.svd(W.to(F64), full_matrices=False)
    idx = U.abs().argmax(dim=0)
    sign = torch.sign(U[idx, torch.arange(U.shape[1])])
    sign[sign == 0] = 1
    return U * sign[None, :], S, Vh * sign[:, None]


class Layer:
    """One targeted linear layer: forward(h) and its trainable tensors."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.params = []  # (tensor, lr multiplier, weight decay?)

    def add(self, t, lr_mul=1.0, decay=True):
        t.requires_grad_()
        self.params.append((t, lr_mul, decay))
        return t


def lora_scale(o):
    return o["alpha"] / math.sqrt(o["rank"]) if o["method"] == "rslora" else o["alpha"] / o["rank"]


def build(o, layers, case):
    """Attaches case["method"] to every layer dict in layers and returns
    the Layer objects (with .forward) and any method-wide state."""
    method, r = o["method"], o.get("rank", 0)
    out = []
    if method == "vera":
        # Kopiczko et al. 2023 / HF PEFT VeraModel: ONE pair shared by all
        # targeted layers, sized to the largest in and out dimensions, drawn A
        # then B from torch.Generator().manual_seed(projection_prng_key) with
        # Kaiming-uniform gain √2: bound √3·√2/√fan_in; layers use slices.
        max_in = max(L["in"] for L in layers)
        max_out = max(L["out"] for L in layers)
        gen = torch.Generator().manual_seed(o["projection_seed"])

        def kaiming(shape):
            bound = math.sqrt(3.0) * math.sqrt(2) / math.sqrt(shape[1])
            return torch.empty(shape).uniform_(-bound, bound, generator=gen)

        vera_A = kaiming((r, max_in))
        vera_B = kaiming((max_out, r))
    for L in layers:
        out_f, in_f = L["out"], L["in"]
        W, b = tensor(L["W"], out_f, in_f), tensor(L["b"], out_f)
        lay = Layer(W, b)
        if method == "full":
            Wt = lay.add(W.clone())
            bt = lay.add(b.clone(), decay=False)
            lay.forward = lambda h, Wt=Wt, bt=bt: h @ Wt.T + bt
        elif method in ("lora", "rslora", "loraplus", "lora-fa", "dora"):
            # Hu et al. 2021: h W0ᵀ + s (h Aᵀ) Bᵀ, A Kaiming (exported), B = 0.
            s = lora_scale(o)
            A = tensor(L["A"], r, in_f)
            if method != "lora-fa":  # LoRA-FA: A frozen
                lay.add(A)
            B = lay.add(torch.zeros(out_f, r), lr_mul=o.get("lr_ratio", 1.0))
            lay.A, lay.B, lay.s = A, B, s
            if method == "dora":
                # Liu et al. 2024 / HF PEFT: W' = m (W0 + sBA)/‖W0 + sBA‖_row,
                # m starts at ‖W0‖_row, the norm detached.
                m = lay.add(W.norm(dim=1))

                def fwd(h, W=W, b=b, A=A, B=B, s=s, m=m):
                    Wp = W + s * B @ A
                    n = Wp.norm(dim=1).detach()
                    return h @ (Wp * (m / n)[:, None]).T + b

                lay.forward = fwd
            else:
                lay.forward = lambda h, W=W, b=b, A=A, B=B, s=s: h @ W.T + b + s * (h @ A.T) @ B.T
        elif method in ("pissa", "olora"):
            s = o["alpha"] / r
            if method == "pissa":
                # Meng et al. 2024: A = √(S_r/s) V_rᵀ, B = U_r √(S_r/s).
                U, S, Vh = canonical_svd(W)
                root = torch.sqrt(S[:r] / s)
                A0, B0 = root[:, None] * Vh[:r], U[:, :r] * root[None, :]
            else:
                # Büyükakyüz 2024 / HF PEFT olora_init: W0 = QR, B = Q[:, :r], A = R[:r].
                Q, R = torch.linalg.qr(W.to(F64))
                A0, B0 = R[:r], Q[:, :r]
            Wres = (W.to(F64) - s * B0 @ A0).float()
            A, B = lay.add(A0.float()), lay.add(B0.float())
            lay.forward = lambda h, Wres=Wres, b=b, A=A, B=B, s=s: h @ Wres.T + b + s * (h @ A.T) @ B.T
        elif method == "vera":
            d = lay.add(torch.full((r,), o["d_initial"]))
            bv = lay.add(torch.zeros(out_f))
            sA, sB = vera_A[:, :in_f], vera_B[:out_f, :]
            lay.forward = lambda h, W=W, b=b, sA=sA, sB=sB, d=d, bv=bv: h @ W.T + b + bv * ((d * (h @ sA.T)) @ sB.T)
        elif method == "lora-xs":
            # Authors' code (utils/initialization_utils.py): SVD of W0ᵀ,
            # encoder U'Σ → lora_A = Σ_r V_rᵀ, decoder → lora_B = U_r (in W0's
            # SVD), latent R (r×r) between them: ΔW = s·U_r R Σ_r V_rᵀ.
            s = o["alpha"] / r
            U, S, Vh = canonical_svd(W)
            P = U[:, :r].float()
            Qm = (S[:r, None] * Vh[:r]).float()
            R = lay.add(tensor(L["R0"], r, r))
            lay.forward = lambda h, W=W, b=b, P=P, Qm=Qm, R=R, s=s: h @ W.T + b + s * ((h @ Qm.T) @ R.T) @ P.T
        elif method == "adalora":
            # Zhang et al. 2023 / HF PEFT AdaLoRA: ΔW = P diag(E) Q · α/(r₀+1e-5),
            # P, Q ~ N(0, 0.02²) (exported), E = 0.
            r0 = adalora_r0(o)
            s = o["alpha"] / (r0 + 1e-5)
            Qa = lay.add(tensor(L["Q0"], r0, in_f))  # lora_A
            E = lay.add(torch.zeros(r0))  # lora_E
            Pb = lay.add(tensor(L["P0"], out_f, r0))  # lora_B
            lay.Q, lay.E, lay.P = Qa, E, Pb
            lay.forward = lambda h, W=W, b=b, Qa=Qa, E=E, Pb=Pb, s=s: h @ W.T + b + s * ((h @ Qa.T) * E) @ Pb.T
        elif method == "lora-ga":
            lay.pending = True  # initialised from the gradient below
        else:
            raise ValueError(method)
        out.append(lay)
    if method == "lora-ga":
        loraga_init(o, out, case)
    return out


def loraga_init(o, lays, case):
    """Wang, Yu and Li 2024 (authors' code): G = mean over grad_batches of
    dL/dW0 with the adapters off; G = U S Vᵀ; direction ArB2r: A = V[:, :r]ᵀ,
    B = U[:, r:2r]; stable scale: both × out^{1/4}/√γ; W_res = W0 − s·B·A."""
    r, s = o["rank"], o["alpha"] / o["rank"]
    Ws = [lay.W.clone().requires_grad_() for lay in lays]
    fwd = [lambda h, W=W, lay=lay: h @ W.T + lay.b for W, lay in zip(Ws, lays)]
    grads = [torch.zeros_like(W) for W in Ws]
    for _ in range(o["grad_batches"]):
        loss = case_loss(case, fwd)
        gs = torch.autograd.grad(loss, Ws)
        for acc, g in zip(grads, gs):
            acc += g
    for lay, G in zip(lays, grads):
        G = G / o["grad_batches"]
        U, S, Vh = canonical_svd(G)
        out_f = lay.W.shape[0]
        c = out_f ** 0.25 / math.sqrt(o["stable_gamma"])
        A0 = c * Vh[:r]
        B0 = c * U[:, r:2 * r]
        Wres = (lay.W.to(F64) - s * B0 @ A0).float()
        A, B = lay.add(A0.float()), lay.add(B0.float())
        lay.forward = lambda h, Wres=Wres, b=lay.b, A=A, B=B: h @ Wres.T + b + s * (h @ A.T) @ B.T


def layer_inputs(case):
    """The inputs each targeted layer of the case's MLP sees on its batch,
    every adapter off (the calibration of EVA and CorDA)."""
    h = tensor(case["x"], case["batch"], case["layers"][0]["in"])
    out = []
    n = len(case["layers"])
    for i, L in enumerate(case["layers"]):
        if not L.get("frozen"):
            out.append(h.clone())
        h = h @ tensor(L["W"], L["out"], L["in"]).T + tensor(L["b"], L["out"])
        if i + 1 < n:
            h = torch.relu(h)
    return out


def case_loss(case, targeted):
    """Cross-entropy of the MLP on the case's batch, with targeted[i] as
    the forward of the i-th targeted layer."""
    h = tensor(case["x"], case["batch"], case["layers"][0]["in"])
    ti = 0
    n = len(case["layers"])
    for i, L in enumerate(case["layers"]):
        if L.get("frozen"):
            h = h @ tensor(L["W"], L["out"], L["in"]).T + tensor(L["b"], L["out"])
        else:
            h = targeted[ti](h)
            ti += 1
        if i + 1 < n:
            h = torch.relu(h)
    return torch.nn.functional.cross_entropy(h, torch.tensor(case["labels"]))


def adalora_r0(o):
    """AdaLoRA's initial rank: init_rank, or ⌈1.5·r⌉ when it is 0."""
    return o["init_rank"] or (3 * o["rank"] + 1) // 2


class AdaLoRA:
    """HF PEFT's RankAllocator and orthogonality penalty, with peftbench's
    conventions: tinit/tfinal are fractions of the run rounded half up to
    steps, and t counts optimiser steps from 1."""

    def __init__(self, o, lays, total):
        self.o, self.lays, self.total = o, lays, total
        self.tinit = math.floor(o["tinit"] * total + 0.5)
        self.tfinal = math.floor(o["tfinal"] * total + 0.5)
        self.init_bgt = adalora_r0(o) * len(lays)
        self.target_bgt = o["rank"] * len(lays)
        self.ipt, self.unc = {}, {}
        self.pattern = None

    def regularizer(self):
        reg, n = 0.0, 0
        for lay in self.lays:
            for p, cov in ((lay.Q, lay.Q @ lay.Q.T), (lay.P, lay.P.T @ lay.P)):
                reg = reg + torch.norm(cov - torch.eye(cov.shape[0]), p="fro")
                n += 1
        return self.o["orth_reg"] * reg / n

    def budget(self, t):
        if t <= self.tinit:
            return self.init_bgt, False
        if t > self.total - self.tfinal:
            return self.target_bgt, True
        mul = 1 - (t - self.tinit) / (self.total - self.tfinal - self.tinit)
        b = int((self.init_bgt - self.target_bgt) * mul ** 3 + self.target_bgt)
        return b, t % self.o["delta_t"] == 0

    def update_ipt(self):
        b1, b2 = self.o["beta1"], self.o["beta2"]
        with torch.no_grad():
            for lay in self.lays:
                for p in (lay.Q, lay.E, lay.P):
                    key = id(p)
                    if key not in self.ipt:
                        self.ipt[key] = torch.zeros_like(p)
                        self.unc[key] = torch.zeros_like(p)
                    cur = (p * p.grad).abs()
                    self.ipt[key] = b1 * self.ipt[key] + (1 - b1) * cur
                    self.unc[key] = b2 * self.unc[key] + (1 - b2) * (cur - self.ipt[key]).abs()

    def score(self, p):
        return self.ipt[id(p)] * self.unc[id(p)]

    def mask_to_budget(self, budget):
        scores = []
        for lay in self.lays:
            # triplet i: E_i's score + mean over Q's row i + mean over P's column i
            scores.append(self.score(lay.E) + self.score(lay.Q).mean(dim=1) + self.score(lay.P).mean(dim=0))
        k = self.init_bgt - budget
        if k <= 0:
            return
        threshold = torch.kthvalue(torch.cat(scores), k)[0].item()
        self.pattern = [sc > threshold for sc in scores]
        self.apply_pattern()

    def apply_pattern(self):
        with torch.no_grad():
            for lay, keep in zip(self.lays, self.pattern):
                lay.E.masked_fill_(~keep, 0.0)

    def update_and_allocate(self, t):
        if t < self.total - self.tfinal:
            self.update_ipt()
            b, mask = self.budget(t)
            if mask:
                self.mask_to_budget(b)
        elif t == self.total - self.tfinal:
            b, _ = self.budget(t)
            self.mask_to_budget(b)
        elif self.pattern is not None:
            self.apply_pattern()


def lorafa_precondition(o, lays):
    """HF PEFT's LoraFAOptimizer: g_B ← (1/s²)·g_B·pinv(AAᵀ + 1e-8·I)."""
    with torch.no_grad():
        for lay in lays:
            AAt = lay.A @ lay.A.T
            inv = torch.linalg.pinv(AAt + 1e-8 * torch.eye(AAt.shape[0]))
            lay.B.grad = (1 / lay.s ** 2) * (lay.B.grad @ inv)


def plugin(method):
    """The method's own module testdata/torch/<method>.py, or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch", method.replace("-", "_") + ".py")
    if not os.path.exists(path):
        return None
    spec = importlib.util.spec_from_file_location("peftbench_torch_" + method.replace("-", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(case):
    o = case["options"]
    targeted = [L for L in case["layers"] if not L.get("frozen")]
    mod = plugin(o["method"])
    lib = sys.modules[__name__]
    lays = mod.build(o, targeted, case, lib) if mod else build(o, targeted, case)
    groups = []
    for lay in lays:
        for t, mul, decay in lay.params:
            groups.append({"params": [t], "lr": case["lr"] * mul,
                           "weight_decay": case["weight_decay"] if decay else 0.0})
    params = [g["params"][0] for g in groups]
    if mod and hasattr(mod, "make_optimizer"):
        opt = mod.make_optimizer(o, lays, groups, case)
    else:
        opt = torch.optim.AdamW(groups, lr=case["lr"], betas=(0.9, 0.999), eps=1e-8)
    ada = AdaLoRA(o, lays, case["steps"]) if o["method"] == "adalora" else None
    losses = []
    for step in range(case["steps"]):
        opt.zero_grad()
        loss = case_loss(case, [lay.forward for lay in lays])
        losses.append(loss.item())
        if ada is not None and o["orth_reg"] > 0:
            loss = loss + ada.regularizer()
        if mod and hasattr(mod, "regularizer"):
            reg = mod.regularizer(o, lays)
            if reg is not None:
                loss = loss + reg
        loss.backward()
        if case["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, case["clip"])
        if o["method"] == "lora-fa" and o["precondition"]:
            lorafa_precondition(o, lays)
        if mod and hasattr(mod, "before_step"):
            mod.before_step(o, lays, step)
        opt.step()
        if mod and hasattr(mod, "after_step"):
            mod.after_step(o, lays, step)
        if ada is not None:
            ada.update_and_allocate(step + 1)
    return losses


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    json.dump({c["name"]: run(c) for c in cases}, sys.stdout)


if __name__ == "__main__":
    main()
