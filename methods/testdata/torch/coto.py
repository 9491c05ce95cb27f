"""CoTo (Zhuang et al., ICML 2025) as the authors' CoToSchedulerCallback
(github.com/zwebzone/coto) trains LoRA: before each optimiser step t, every
adapter group draws u ~ U[0, 1) and is switched off (cotodrop: the layer
returns its base output, no rescaling) when u > p(t), redrawing until at
least one group is on (generate_random_tensor); p(0) = initial_p and
on_step_end sets p(t) = min(final_p, initial_p + (final_p - initial_p) *
t / ceil(T * stage1_ratio)) for the next step t = global_step. The adapter
is LoRA: h W0^T + b + (alpha/r) (h A^T) B^T, A exported, B = 0.

Shared inputs from the Go side: A, and the uniforms of the trial's mask
stream ("coto_u", in the order they are drawn; the callback uses torch's
global generator). The reference MLP's two targeted layers (fc1, fc2) have
no layer index in their names, so each is a group of its own under both
group settings."""
import math


class State:
    def __init__(self, o, total, u):
        self.o, self.total, self.u, self.i = o, total, u, 0
        self.p = o["initial_p"]
        self.off = None

    def mask(self, n):
        if self.off is None:
            while True:
                off = []
                for _ in range(n):
                    off.append(self.u[self.i] > self.p)
                    self.i += 1
                if not all(off):
                    break
            self.off = off
        return self.off

    def next_step(self, t):
        o = self.o
        end = math.ceil(self.total * o["stage1_ratio"])
        p = o["final_p"] if end <= 0 else o["initial_p"] + (o["final_p"] - o["initial_p"]) * t / end
        self.p = min(o["final_p"], p)
        self.off = None


def build(o, layers, case, lib):
    if o["dropout"]:
        raise ValueError("coto cross-check: dropout must be 0")
    r, s = o["rank"], o["alpha"] / o["rank"]
    st = State(o, case["steps"], layers[0]["init"]["coto_u"])
    n = len(layers)
    out = []
    for k, L in enumerate(layers):
        m, d = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, d), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A = lay.add(lib.tensor(L["init"]["lora_A"], r, d))
        B = lay.add(lib.tensor([0.0] * (m * r), m, r))
        lay.coto, lay.k, lay.AB = st, k, (A, B)

        def fwd(h, W=W, b=b, A=A, B=B, k=k):
            y = h @ W.T + b
            if st.mask(n)[k]:
                return y
            return y + s * (h @ A.T) @ B.T

        lay.forward = fwd
        out.append(lay)
    return out


def before_step(o, lays, step):
    """A switched-off adapter took no part in the forward pass: under the
    authors' HF Trainer (torch >= 2, zero_grad(set_to_none=True)) its
    grads are None and AdamW skips it (no moments, no decay, no step).
    The harness zeroes grads instead (torch 1.x default), so set them to
    None here."""
    st = lays[0].coto
    for lay in lays:
        if st.off is not None and st.off[lay.k]:
            for p in lay.AB:
                p.grad = None


def after_step(o, lays, step):
    lays[0].coto.next_step(step + 1)
