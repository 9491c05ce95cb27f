"""AFLoRA (Liu et al., ACL 2024) as the authors' code trains it
(github.com/zeyuliu1037/AFLoRA, glue/): the peft fork's "elora" Linear,
result = base(x) + lora_db * lora_B(lora_d * lora_A(x)) (no scaling),
lora_A and lora_B Kaiming-uniform (exported from the Go side), lora_d =
d_initial and lora_db = 0 (d_init_type 94); and utils.Pruner (PLATON):
per element of each still-trainable lora_A / lora_B, ipt is the running
mean over a window of deltaT steps of |sign(p) * p.grad|; at a window's
first step exp_avg_ipt and exp_avg_unc take the previous window's ipt;
schedule_threshold_comb gives the kept fraction (cubic), and on masking
steps every trainable projection whose mean of exp_avg_ipt * exp_avg_unc
is below the kthvalue(all scores, int(N * (1 - threshold))) freezes.

peftbench's conventions (see methods/aflora.go): tinit/tfinal are
fractions of the run rounded half up to steps (the code counts epochs);
the scores see the clipped gradient (before_step, after clipping; the
code's training_step hook runs before clipping) and a projection frozen at
step t keeps that step's update (as in the glue code), so it is frozen in
after_step. Frozen projections get grad None so that AdamW skips them, as
the authors' torch >= 2 zero_grad(set_to_none=True) leaves them."""
import math

import torch


class Pruner:
    def __init__(self, o, total):
        self.o, self.total = o, total
        self.tinit = math.floor(o["tinit"] * total + 0.5)
        self.tfinal = math.floor(o["tfinal"] * total + 0.5)
        self.ipt, self.exp_ipt, self.exp_unc = {}, {}, {}
        self.pending = []

    def threshold(self, t):
        if t <= self.tinit:
            return 1.0, False
        if t > self.total - self.tfinal:
            return 0.0, True
        mul = 1 - (t - self.tinit) / (self.total - (self.tinit + self.tfinal))
        return mul ** 3, t % self.o["delta_t"] == 0

    def update(self, ps, t):
        b1, b2, dt = self.o["beta1"], self.o["beta2"], self.o["delta_t"]
        local = t % dt
        with torch.no_grad():
            for p in ps:
                k = id(p)
                if k not in self.ipt:
                    self.ipt[k] = torch.zeros_like(p)
                    self.exp_ipt[k] = torch.zeros_like(p)
                    self.exp_unc[k] = torch.zeros_like(p)
                cur = (torch.sign(p) * p.grad).abs()
                if local == 0:
                    self.exp_ipt[k] = b1 * self.exp_ipt[k] + (1 - b1) * self.ipt[k]
                    self.exp_unc[k] = b2 * self.exp_unc[k] + (1 - b2) * (self.ipt[k] - self.exp_ipt[k]).abs()
                    self.ipt[k] = cur
                else:
                    self.ipt[k] = (self.ipt[k] * local + cur) / (local + 1)

    def step(self, ps, t):
        ps = [p for p in ps if p.requires_grad]
        if not ps:
            return
        self.update(ps, t)
        thr, mask = self.threshold(t)
        if not mask:
            return
        score = {id(p): self.exp_ipt[id(p)] * self.exp_unc[id(p)] for p in ps}
        all_is = torch.cat([score[id(p)].view(-1) for p in ps])
        k = int(all_is.shape[0] * (1 - thr))
        if k < 1:
            return
        cut = torch.kthvalue(all_is, k)[0].item()
        self.pending = [p for p in ps if torch.mean(score[id(p)]) < cut]


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("aflora cross-check: dropout must be 0")
    r = o["rank"]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A = lay.add(lib.tensor(L["init"]["lora_A"], r, n))
        B = lay.add(lib.tensor(L["init"]["lora_B"], m, r))
        d = lay.add(torch.full((r,), float(o["d_initial"])))
        db = lay.add(torch.zeros(m))
        lay.AB = (A, B)

        def fwd(h, W=W, b=b, A=A, B=B, d=d, db=db):
            return h @ W.T + b + db * ((d * (h @ A.T)) @ B.T)

        lay.forward = fwd
        out.append(lay)
    out[0].pruner = Pruner(o, case["steps"])
    return out


def before_step(o, lays, step):
    lays[0].pruner.step([p for lay in lays for p in lay.AB], step)


def after_step(o, lays, step):
    pr = lays[0].pruner
    for p in pr.pending:
        p.requires_grad_(False)
        p.grad = None
    pr.pending = []
