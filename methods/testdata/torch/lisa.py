"""LISA (Pan et al. 2024) as LMFlow's DynamicLayerActivationCallback runs
it: full fine-tuning (weight with decay, bias without) where at the start
of every step t with t % lisa_interval_steps == 0 only the drawn layers
keep requires_grad; the others are frozen (grad None: no gradient, not in
the clip, skipped by AdamW). The MLP's targeted fc1 and fc2 are one layer
each. The draw is the method's random choice, exported from the Go side as
one flag per interval per layer ("active")."""
import torch


def build(o, layers, case, lib):
    out = []
    for L in layers:
        m, n = L["out"], L["in"]
        W, b = lib.tensor(L["W"], m, n), lib.tensor(L["b"], m)
        lay = lib.Layer(W, b)
        Wt = lay.add(W.clone())
        bt = lay.add(b.clone(), decay=False)
        lay.active = [v != 0 for v in L["init"]["active"]]
        lay.forward = lambda h, Wt=Wt, bt=bt: h @ Wt.T + bt
        out.append(lay)
    switch(o, out, 0)
    return out


def switch(o, lays, step):
    """on_step_begin: every lisa_interval_steps steps, freeze all layers but
    the drawn ones."""
    if step % o["lisa_interval_steps"]:
        return
    k = step // o["lisa_interval_steps"]
    for lay in lays:
        for t, _, _ in lay.params:
            t.requires_grad_(lay.active[k])
            if not lay.active[k]:
                t.grad = None  # torch 1.x zero_grad keeps zeroed grads


def after_step(o, lays, step):
    switch(o, lays, step + 1)
