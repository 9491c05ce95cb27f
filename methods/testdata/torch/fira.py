"""Fira (Chen et al. 2024, arXiv 2410.01623): GaLore's projected Adam plus
the norm-scaled, growth-limited residual gradient; the update rule is in
galore.py's ProjectedAdam (fira=True), re-implemented from the paper and
the authors' fira_adamw."""


def _galore(lib):
    return lib.plugin("galore")


_mod = None


def build(o, layers, case, lib):
    global _mod
    _mod = _galore(lib)
    return _mod.build(o, layers, case, lib)


def make_optimizer(o, lays, groups, case):
    return _mod.ProjectedAdam(groups, o, _mod.LIB, fira=True)
