"""RoAd (Liao et al. 2024) as HF PEFT's peft.tuners.road.layer computes
it: the base output (bias included) goes through _apply_road, with
_prepare_cols turning road_theta and road_alpha into the two per-feature
coefficient columns for variant road_1, road_2 or road_4.

Init: theta = 0, alpha = 1 (init_weights=True), or the N(0, 0.5^2) and
N(1, 0.5^2) draws from the trial's stream, which come from Go.
"""
import torch


def prepare_cols(variant, group_size, road_theta, road_alpha):
    """HF's _prepare_cols."""
    if variant == "road_1":
        road_theta = road_theta.reshape(-1, group_size // 2).repeat_interleave(2, dim=0).flatten()
        road_alpha = road_alpha.reshape(-1, group_size // 2).repeat_interleave(2, dim=0).flatten()
        return road_alpha * road_theta.cos(), road_alpha * road_theta.sin()
    if variant == "road_2":
        return road_alpha * road_theta.cos(), road_alpha * road_theta.sin()
    if variant == "road_4":
        road_theta = road_theta.reshape(-1, 2, group_size)
        road_alpha = road_alpha.reshape(-1, 2, group_size)
        first = road_alpha[:, 0, :].flatten() * road_theta[:, 0, :].cos().flatten()
        second = road_alpha[:, 1, :].flatten() * road_theta[:, 1, :].sin().flatten()
        return first, second
    raise ValueError(variant)


def apply_road(variant, group_size, road_theta, road_alpha, x):
    """HF's _apply_road."""
    first_col, second_col = prepare_cols(variant, group_size, road_theta, road_alpha)
    x_grouped = x.reshape(-1, 2, group_size // 2)
    x1 = x_grouped[:, 0, :]
    x2 = x_grouped[:, 1, :]
    rotate_half_x = torch.stack((-x2, x1), dim=1).reshape(x.shape)
    return x * first_col + rotate_half_x * second_col


def build(o, layers, case, lib):
    variant, gs = o["variant"], o["group_size"]
    size = {"road_1": lambda n: n // 2, "road_2": lambda n: n, "road_4": lambda n: 2 * n}[variant]
    out = []
    for L in layers:
        assert L["out"] % gs == 0, "HF raises: out_features must be divisible by group_size"
        W, b = lib.tensor(L["W"], L["out"], L["in"]), lib.tensor(L["b"], L["out"])
        lay = lib.Layer(W, b)
        n = size(L["out"])
        if o["init_weights"]:
            theta, alpha = torch.zeros(n), torch.ones(n)
        else:
            theta, alpha = lib.tensor(L["init"]["road_theta"], n), lib.tensor(L["init"]["road_alpha"], n)
        theta, alpha = lay.add(theta), lay.add(alpha)
        lay.forward = lambda h, W=W, b=b, t=theta, a=alpha: apply_road(variant, gs, t, a, h @ W.T + b)
        out.append(lay)
    return out
