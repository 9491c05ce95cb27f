"""(IA)^3 (Liu et al. 2022) as HF PEFT's peft.tuners.ia3.layer.Linear
computes it: non-feedforward layers scale the base output (bias included),
result * ia3_l; feedforward layers scale the input, base_layer(x * ia3_l).
ia3_l starts at 1 (init_ia3_weights=True) or is the N(0, 1) draw from the
trial's stream, which comes from Go.

Which layers are feedforward is decided here from feedforward_modules and
the MLP's layer names (nn.NewMLP names its layers fc1, fc2, ...; the last,
frozen, is the head), matched as peftbench matches target names: a plain
name matches the name or a dotted suffix, "re:" a regular expression
searched in the name, and * ? [..] globs over the whole name.
"""
import re

import torch


def pattern_regex(p):
    if p == "all-linear":
        return re.compile("")
    if p.startswith("re:"):
        return re.compile(p[3:])
    if any(c in p for c in "*?["):
        out, i = "^", 0
        while i < len(p):
            c = p[i]
            if c == "*":
                if p[i + 1:i + 2] == "*":
                    out += ".*"
                    i += 1
                else:
                    out += "[^.]*"
            elif c == "?":
                out += "[^.]"
            elif c == "[":
                j = p.index("]", i)
                cls = p[i + 1:j]
                out += "[" + ("^" + cls[1:] if cls.startswith("!") else cls) + "]"
                i = j
            else:
                out += re.escape(c)
            i += 1
        return re.compile(out + "$")
    return re.compile(r"(^|\.)" + re.escape(p) + "$")


def is_feedforward(patterns, name):
    return any(pattern_regex(p).search(name) for p in patterns)


def build(o, layers, case, lib):
    spec = o["feedforward_modules"].strip()
    patterns = [p.strip() for p in spec.split(",")] if spec else []
    out = []
    for i, L in enumerate(layers):
        name = "fc%d" % (i + 1)
        ff = is_feedforward(patterns, name)
        W, b = lib.tensor(L["W"], L["out"], L["in"]), lib.tensor(L["b"], L["out"])
        lay = lib.Layer(W, b)
        n = L["in"] if ff else L["out"]
        if o["init_ia3_weights"]:
            l = torch.ones(n)
        else:
            l = lib.tensor(L["init"]["ia3_l"], n)
        l = lay.add(l)
        if ff:
            lay.forward = lambda h, W=W, b=b, l=l: (h * l) @ W.T + b
        else:
            lay.forward = lambda h, W=W, b=b, l=l: (h @ W.T + b) * l
        out.append(lay)
    return out
