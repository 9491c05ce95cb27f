"""LoKr (LyCORIS, Yeh et al. 2023) as HF PEFT's peft.tuners.lokr computes it
for a Linear layer: (a, b) = factorization(out), (c, d) = factorization(in);
w1 (a x c) full unless decompose_both and r < max(a, c)/2 (then w1_a @ w1_b),
w2 (b x d) = w2_a @ w2_b when r < max(b, d)/2, else full;
delta = torch.kron(w1, w2) * alpha / r, added as F.linear(x, delta).
Init: init_weights "true" zeros w1 (or w1_a), "lycoris" zeros w2 (or w2_b),
"false" zeros nothing; every other tensor is the Go side's Kaiming draw
(exported by HF's parameter name)."""
import torch
import torch.nn.functional as F


def factorization(dimension, factor=-1):
    """HF PEFT peft.tuners.lokr.layer.factorization."""
    if factor > 0 and (dimension % factor) == 0:
        return factor, dimension // factor
    if factor == -1:
        factor = dimension
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = m + 1
        while dimension % new_m != 0:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    if m > n:
        n, m = m, n
    return m, n


def build(o, layers, case, lib):
    if o["rank_dropout"] or o["module_dropout"]:
        raise ValueError("lokr cross-check: rank_dropout and module_dropout must be 0")
    r = o["rank"]
    scale = o["alpha"] / r
    zero = {"true": ("lokr_w1", "lokr_w1_a"), "lycoris": ("lokr_w2", "lokr_w2_b"), "false": ()}[o["init_weights"]]
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        in_m, in_n = factorization(n, o["decompose_factor"])
        out_l, out_k = factorization(m, o["decompose_factor"])
        use_w1 = not (o["decompose_both"] and r < max(out_l, in_m) / 2)
        use_w2 = not (r < max(out_k, in_n) / 2)
        if use_w1:
            shapes = {"lokr_w1": (out_l, in_m)}
        else:
            shapes = {"lokr_w1_a": (out_l, r), "lokr_w1_b": (r, in_m)}
        if use_w2:
            shapes["lokr_w2"] = (out_k, in_n)
        else:
            shapes.update({"lokr_w2_a": (out_k, r), "lokr_w2_b": (r, in_n)})
        t = {}
        for name, shape in shapes.items():
            if name in zero:
                t[name] = lay.add(torch.zeros(*shape))
            else:
                t[name] = lay.add(lib.tensor(L["init"][name], *shape))
        if set(L["init"]) != set(shapes) - set(zero):
            raise ValueError("lokr: Go exported %s, want %s" % (sorted(L["init"]), sorted(set(shapes) - set(zero))))

        def fwd(h, W=W, b=b, t=t):
            w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
            w2 = t["lokr_w2"] if "lokr_w2" in t else t["lokr_w2_a"] @ t["lokr_w2_b"]
            delta = torch.kron(w1, w2) * scale
            return F.linear(h, W, b) + F.linear(h, delta)

        lay.forward = fwd
        out.append(lay)
    return out
