"""OFT (OFTv2) as HF PEFT's peft.tuners.oft computes it, for the
cross-check (see torch_methods.py): the input is rotated block by block,
x ↦ einsum("...rk,rkc->...rc", x reshaped (…, r, b), R), then the frozen
layer; R_j = Cayley(Q_j), Q_j skew from b(b−1)/2 upper-triangle numbers
(torch.triu_indices order), by the Cayley–Neumann loop of _cayley_batch or
exactly by torch.linalg.solve(I + Q, I − Q, left=False); coft projects the
numbers in place (no grad) before every forward as _project_batch does;
block sizes are adjusted with adjust_oft_parameters. init_weights false
takes the N(0, 0.1²) numbers the Go side drew (layer["init"]["oft_R"])."""
import torch


def adjust(in_features, params):
    # OFTLayer.adjust_oft_parameters
    if params < in_features:
        higher = params
        while higher <= in_features and in_features % higher != 0:
            higher += 1
    else:
        return in_features
    lower = params
    while lower > 1 and in_features % lower != 0:
        lower -= 1
    return lower if (params - lower) <= (higher - params) else higher


class Rotation:
    def __init__(self, weight, b, in_features, o):
        self.weight, self.b, self.in_features, self.o = weight, b, in_features, o
        self.rows, self.cols = torch.triu_indices(b, b, 1)

    def skew(self, vec):
        m = torch.zeros(vec.shape[0], self.b, self.b, dtype=vec.dtype)
        m[:, self.rows, self.cols] = vec
        return m - m.transpose(-2, -1)

    def cayley(self, Q):
        n = Q.shape[0]
        Qs = self.skew(Q)
        if self.o["use_cayley_neumann"]:
            terms = self.o["num_cayley_neumann_terms"]
            R = torch.eye(self.b).repeat(n, 1, 1)
            if terms > 1:
                R = R + 2.0 * Qs
                if terms > 2:
                    Q2 = torch.bmm(Qs, Qs)
                    R = R + 2.0 * Q2
                    P = Q2
                    for _ in range(3, terms - 1):
                        P = torch.bmm(P, Qs)
                        R = R + 2.0 * P
                    P = torch.bmm(P, Qs)
                    R = R + P
            return R
        eye = torch.eye(self.b).unsqueeze(0).expand(n, self.b, self.b)
        return torch.linalg.solve(eye + Qs, eye - Qs, left=False)

    def project(self):
        with torch.no_grad():
            R = self.skew(self.weight)
            eps = self.o["eps"] / torch.sqrt(torch.tensor(R.shape[0]))
            norm = torch.norm(R, dim=(1, 2), keepdim=True)
            out = torch.where(norm <= eps, R, eps * (R / norm))
            self.weight.copy_(out[:, self.rows, self.cols])

    def __call__(self, x):
        if self.o["coft"]:
            self.project()
        R = self.cayley(self.weight)
        k = self.in_features // self.b
        if self.o["block_share"]:
            R = R.repeat(k, 1, 1)
        xr = x.reshape(*x.shape[:-1], k, self.b)
        return torch.einsum("...rk,rkc->...rc", xr, R).reshape(x.shape)


def build(o, layers, case, lib):
    out = []
    for L in layers:
        W, bias = lib.tensor(L["W"], L["out"], L["in"]), lib.tensor(L["b"], L["out"])
        lay = lib.Layer(W, bias)
        b = o["oft_block_size"]
        if L["in"] % b != 0 or b > L["in"]:
            b = adjust(L["in"], b)
        rows = 1 if o["block_share"] else L["in"] // b
        n = b * (b - 1) // 2
        if o["init_weights"]:
            w0 = torch.zeros(rows, n)
        else:
            w0 = lib.tensor(L["init"]["oft_R"], rows, n)
        rot = Rotation(lay.add(w0), b, L["in"], o)
        lay.forward = lambda h, rot=rot, W=W, bias=bias: torch.nn.functional.linear(rot(h), W, bias)
        out.append(lay)
    return out
