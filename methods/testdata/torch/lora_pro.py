"""LoRA-Pro (Wang et al. 2024) as the authors' lorapro_full_adjustment
(mrflogs/LoRA-Pro, DeepSpeed-0.15.1/.../zero/stage_1_and_2.py) computes it,
re-derived here in float64 from the paper's formulas. The adapter is plain
LoRA (A Kaiming or Gaussian, exported; B = 0). The optimiser, per pair:
  1. adjusted gradients  gA~ = (1/s^2) (B^T B)^-1 gA,
     gB~ = (1/s^2) (I - B (B^T B)^-1 B^T) gB (A A^T)^-1, and the equivalent
     gradient G = s (B gA~ + gB~ A);
  2. Adam on G (full-size moments; t from 1, as torch's Adam);
  3. gA' = s B^T g^, gB' = s g^ A^T, adjusted as in 1 plus X: gA~ + X A,
     gB~ - B X, X solving B^T B X + X A A^T = -(1/s^2) (B^T B)^-1 gA' A^T
     (here by its Kronecker form, an (r*r)x(r*r) linear solve), or X = 0;
  4. p <- p (1 - lr wd) - lr g~ (AdamW's decoupled decay).
Inverses are pinv(M + 1e-8 I)."""
import torch

F64 = torch.float64


def build(o, layers, case, lib):
    r, s = o["rank"], o["alpha"] / o["rank"]
    if o["dropout"]:
        raise ValueError("lora-pro cross-check: dropout must be 0")
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        A = lay.add(lib.tensor(L["init"]["lora_A"], r, n))
        B = lay.add(torch.zeros(m, r))
        lay.A, lay.B, lay.s = A, B, s
        lay.forward = lambda h, W=W, b=b, A=A, B=B: h @ W.T + b + s * (h @ A.T) @ B.T
        out.append(lay)
    return out


def adjust(A, B, s, gA, gB, X=None):
    r = A.shape[0]
    eye = torch.eye(r, dtype=F64)
    pB = torch.linalg.pinv(B.T @ B + 1e-8 * eye)
    pA = torch.linalg.pinv(A @ A.T + 1e-8 * eye)
    proj = torch.eye(B.shape[0], dtype=F64) - B @ pB @ B.T
    nA = pB @ gA / s ** 2
    nB = proj @ gB @ pA / s ** 2
    if X is not None:
        nA = nA + X @ A
        nB = nB - B @ X
    return nA, nB


def sylvester(A, B, s, gA):
    """X with B^T B X + X A A^T = C, by (I (x) B^T B + (A A^T)^T (x) I) vec(X) = vec(C)
    (column-major vec)."""
    r = A.shape[0]
    eye = torch.eye(r, dtype=F64)
    P, Q = B.T @ B, A @ A.T
    C = -torch.linalg.pinv(P + 1e-8 * eye) @ gA @ A.T / s ** 2
    K = torch.kron(eye, P.contiguous()) + torch.kron(Q.T.contiguous(), eye)
    x = torch.linalg.solve(K, C.T.contiguous().reshape(-1, 1))
    return x.reshape(r, r).T.contiguous()


class LoRAPro(torch.optim.Optimizer):
    def __init__(self, o, lays, groups):
        super().__init__(groups, {"lr": 0.0, "weight_decay": 0.0})
        self.o, self.lays = o, lays
        self.group_of = {id(g["params"][0]): g for g in self.param_groups}
        self.adam = {}

    @torch.no_grad()
    def step(self):
        b1, b2, eps = 0.9, 0.999, 1e-8
        for lay in self.lays:
            A, B, s = lay.A.detach().double(), lay.B.detach().double(), lay.s
            gA, gB = adjust(A, B, s, lay.A.grad.double(), lay.B.grad.double())
            G = (s * (B @ gA + gB @ A)).float()
            st = self.adam.setdefault(id(lay), {"m": torch.zeros_like(G), "v": torch.zeros_like(G), "t": 0})
            st["t"] += 1
            t = st["t"]
            st["m"].mul_(b1).add_(G, alpha=1 - b1)
            st["v"].mul_(b2).addcmul_(G, G, value=1 - b2)
            ghat = (st["m"].double() / (1 - b1 ** t)) / (st["v"].double().sqrt() / (1 - b2 ** t) ** 0.5 + eps)
            hA, hB = s * B.T @ ghat, s * ghat @ A.T
            X = sylvester(A, B, s, hA) if self.o["lorapro_x"] == "sylvester" else None
            fA, fB = adjust(A, B, s, hA, hB, X)
            for p, g in ((lay.A, fA), (lay.B, fB)):
                grp = self.group_of[id(p)]
                lr, wd = grp["lr"], grp["weight_decay"]
                p.copy_((p.double() * (1 - lr * wd) - lr * g).float())


def make_optimizer(o, lays, groups, case):
    return LoRAPro(o, lays, groups)
