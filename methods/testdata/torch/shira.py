"""SHiRA (Bhardwaj et al. 2024, arXiv 2406.13175) as HF PEFT's
peft.tuners.shira computes it: a mask of r·(out+in) positions per layer —
HF's random_mask (the first K of torch.randperm(out·in) from a fresh
torch.Generator().manual_seed(random_seed)), or the paper's weight-magnitude
mask (the K largest |W0|, ties to the lower index) — shira_indices from
torch.where(mask == 1), shira_weight zeros (init_weights) or randn
(exported), and the forward
    new_weight = W.clone(); new_weight += sparse_coo_tensor(indices, weight)
    y = F.linear(x, new_weight, bias).
"""
import torch
import torch.nn.functional as F


def mask_for(o, W, r):
    out_f, in_f = W.shape
    k = r * (out_f + in_f)
    if o["mask_type"] == "random":
        gen = torch.Generator()
        gen.manual_seed(o["random_seed"])
        idx = torch.randperm(out_f * in_f, generator=gen)[:k]
    else:
        idx = torch.sort(W.abs().flatten(), descending=True, stable=True).indices[:k]
    mask = torch.zeros(1, out_f * in_f, dtype=torch.bool)
    mask = mask.scatter_(1, idx.unsqueeze(0), torch.ones(1, k, dtype=torch.bool)).view(out_f, in_f)
    return mask


def build(o, layers, case, lib):
    r = o["rank"]
    out = []
    for L in layers:
        out_f, in_f = L["out"], L["in"]
        W, b = lib.tensor(L["W"], out_f, in_f), lib.tensor(L["b"], out_f)
        lay = lib.Layer(W, b)
        mask = mask_for(o, W, r)
        mi = torch.where(mask)
        indices = torch.cat([mi[0].unsqueeze(0), mi[1].unsqueeze(0)], 0)
        k = r * (out_f + in_f)
        assert indices.shape[1] == k
        if o["init_weights"]:
            vals = torch.zeros(k)
        else:
            vals = lib.tensor(L["init"]["shira_weight"], k)
        vals = lay.add(vals)
        lay.mask = mask

        def fwd(h, W=W, b=b, vals=vals, indices=indices):
            # HF: new_weight += sparse_coo_tensor(...); torch 1.13's autograd
            # rejects the sparse gradient of that in-place add, so densify.
            new_weight = W.clone()
            new_weight = new_weight + torch.sparse_coo_tensor(indices, vals, W.shape).to_dense()
            return F.linear(h, new_weight, b)

        lay.forward = fwd
        out.append(lay)
    return out
