#!/usr/bin/env python3
"""Reference PyTorch trainer for peftbench, protocol v1 (docs/trainer-protocol.md).

The runner starts it with the trial file at $PEFTBENCH_TRIAL and the trial's
folder at $PEFTBENCH_OUT. It asks `bench export` for the trial's data (base
weights, the exact training batches, evaluation sets, initial adapter
tensors, learning rate per step), trains with plain PyTorch, and prints one
JSON object per line on stdout: step metrics, a summary with the same names
the builtin engine reports, and a weights artifact in the builtin format.

Backends:
  native  lora, rslora, dora and full (and the other plain reparametrisations
          `bench export` describes: loraplus, pissa, olora, lora-ga), from the
          exported initial tensors: agrees with the builtin engine.
  peft    HF PEFT (`peft.get_peft_model`) when peft is importable: lora,
          rslora, dora, pissa, olora, loraplus, lora-fa, vera, adalora by
          our method name, every option mapped by PEFT_METHODS, or any PEFT
          type by name with --peft-type.
  auto    native when the export describes the method, else peft.

Usage: train.py [--bench PATH] [--data DIR] [--backend auto|native|peft]
                [--peft-type NAME] [--keep-data]
See README.md in this folder.
"""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

PROTOCOL = 1


def emit(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
    sys.stdout.flush()


def num(v):
    """A JSON-safe number: NaN and infinities as the strings the protocol allows."""
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return v


def log(msg):
    emit({"type": "log", "msg": msg})


def metric(step, split, name, value):
    emit({"type": "metric", "step": step, "split": split, "name": name, "value": num(value)})


class Fail(Exception):
    pass


# ---------------------------------------------------------------- safetensors

def read_safetensors(path, torch):
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise Fail("%s: too short for a safetensors file" % path)
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        raise Fail("%s: header length %d exceeds the file" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buf = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = dtypes.get(info["dtype"])
        if dt is None:
            raise Fail("%s: tensor %s: dtype %s is not a float type" % (path, name, info["dtype"]))
        lo, hi = info["data_offsets"]
        if hi > lo:
            t = torch.frombuffer(bytearray(buf[lo:hi]), dtype=dt)
        else:
            t = torch.empty(0, dtype=dt)
        out[name] = t.reshape(info["shape"]).to(torch.float32)
    return out


def write_safetensors(path, tensors, metadata):
    """Writes F32 tensors in the safetensors format (no safetensors package
    needed): 8-byte header length, JSON header padded with spaces to a
    multiple of 8, then the data; written to a temporary name and renamed."""
    header = {"__metadata__": dict(metadata)}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").float().contiguous()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---------------------------------------------------------------- data

def export(args, trial_path, out):
    """Runs `bench export` for the trial and returns the data folder."""
    if args.data:
        return args.data
    bench = args.bench or os.environ.get("PEFTBENCH_BENCH") or shutil.which("bench")
    if not bench:
        raise Fail("no bench binary: pass --bench, set PEFTBENCH_BENCH (e.g. in the sweep's [trainer] env) or put bench on PATH")
    data = os.path.join(out, "data")
    cmd = [bench, "export", "--trial", trial_path, "--out", data]
    if args.backend == "peft":
        cmd.append("--data-only")
    # bench's own output goes to stderr: stdout carries the protocol.
    r = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if r.returncode != 0 and args.backend == "auto":
        log("bench export could not describe the method; exporting the data only, for PEFT")
        r = subprocess.run(cmd + ["--data-only"], stdout=sys.stderr, stderr=sys.stderr)
    if r.returncode != 0:
        raise Fail("%s exited with status %d" % (" ".join(cmd), r.returncode))
    return data


def load(data_dir, torch):
    with open(os.path.join(data_dir, "export.json")) as f:
        man = json.load(f)
    if man.get("format") != 1:
        raise Fail("%s: export format %r, want 1" % (data_dir, man.get("format")))
    if man["arch"]["kind"] != "mlp":
        raise Fail("architecture %r is not supported" % man["arch"]["kind"])
    base = read_safetensors(os.path.join(data_dir, "base.safetensors"), torch)
    init = {}
    if not man.get("data_only"):
        init = read_safetensors(os.path.join(data_dir, "init.safetensors"), torch)
    data = read_safetensors(os.path.join(data_dir, "data.safetensors"), torch)
    for k in list(data):
        if k.endswith(".labels"):
            data[k] = data[k].to(torch.int64)
    return man, base, init, data


# ---------------------------------------------------------------- native model

class Native:
    """The exported MLP with the exported adapters, in plain PyTorch. Every
    formula follows the builtin engine's (package methods) in float32."""

    def __init__(self, man, base, init, device, torch):
        self.torch = torch
        self.act = man["arch"]["act"]
        self.layers = []
        self.base = []
        tensors = {}
        for L in man["layers"]:
            W = base[L["name"] + ".weight"].to(device)
            b = base[L["name"] + ".bias"].to(device) if L["bias"] else None
            self.base.append((L["name"], W, b))
            layer = {"name": L["name"], "W": W, "b": b, "ad": L.get("adapter")}
            ad = layer["ad"]
            if ad is not None:
                n = L["name"]
                if ad["kind"] == "full":
                    layer["W"] = init[n + ".weight"].to(device).clone().requires_grad_()
                    tensors[n + ".weight"] = layer["W"]
                    if L["bias"]:
                        layer["b"] = init[n + ".bias"].to(device).clone().requires_grad_()
                        tensors[n + ".bias"] = layer["b"]
                elif ad["kind"] in ("lora", "dora"):
                    layer["A"] = init[n + ".lora_A.weight"].to(device).clone().requires_grad_(not ad.get("frozen_a", False))
                    layer["B"] = init[n + ".lora_B.weight"].to(device).clone().requires_grad_()
                    tensors[n + ".lora_A.weight"] = layer["A"]
                    tensors[n + ".lora_B.weight"] = layer["B"]
                    if ad.get("residual"):
                        layer["A0"] = init[n + ".lora_A0"].to(device)
                        layer["B0"] = init[n + ".lora_B0"].to(device)
                    if ad["kind"] == "dora":
                        layer["M"] = init[n + ".lora_magnitude_vector"].to(device).clone().requires_grad_()
                        tensors[n + ".lora_magnitude_vector"] = layer["M"]
                else:
                    raise Fail("layer %s: adapter kind %r is not supported" % (n, ad["kind"]))
            self.layers.append(layer)
        self.params = []
        for p in man["params"]:
            if p["name"] not in tensors:
                raise Fail("trainable tensor %s has no place in the model" % p["name"])
            self.params.append((p, tensors[p["name"]]))
        self.training = False

    def trainable(self):
        return [t for _, t in self.params]

    def linear(self, L, x):
        torch = self.torch
        W, b, ad = L["W"], L["b"], L["ad"]
        y = x @ W.t()
        if b is not None:
            y = y + b
        if ad is None or ad["kind"] == "full":
            return y
        s = ad["scale"]
        p = ad.get("dropout", 0.0)
        xd = torch.nn.functional.dropout(x, p) if (self.training and p > 0) else x
        lora = ((xd @ L["A"].t()) @ L["B"].t())
        if ad["kind"] == "lora":
            if ad.get("residual"):
                lora = lora - (x @ L["A0"].t()) @ L["B0"].t()
            return y + s * lora
        # DoRA: m ⊙ (W0 + sBA)/‖W0 + sBA‖_row, the norm detached.
        with torch.no_grad():
            merged = (W.double() + s * (L["B"].double() @ L["A"].double())).float()
            inv = 1.0 / merged.double().norm(dim=1).float()
        scale = L["M"] * inv
        if xd is x:
            z = (x @ W.t() + s * lora) * scale
            return z + b if b is not None else z
        return y + ((xd @ W.t()) * (scale - 1) + (s * lora) * scale)

    def forward(self, x):
        last = len(self.layers) - 1
        for i, L in enumerate(self.layers):
            x = self.linear(L, x)
            if i < last:
                x = activate(self.torch, self.act, x)
        return x

    def base_forward(self, x):
        last = len(self.base) - 1
        for i, (_, W, b) in enumerate(self.base):
            x = x @ W.t()
            if b is not None:
                x = x + b
            if i < last:
                x = activate(self.torch, self.act, x)
        return x

    def merged(self):
        """{layer: (W0, W0 + ΔW)} for the targeted layers."""
        torch = self.torch
        out = {}
        with torch.no_grad():
            for (name, W0, _), L in zip(self.base, self.layers):
                ad = L["ad"]
                if ad is None:
                    continue
                if ad["kind"] == "full":
                    out[name] = (W0, L["W"].detach().clone())
                    continue
                s = ad["scale"]
                w = W0.double() + s * (L["B"].double() @ L["A"].double())
                if ad.get("residual"):
                    w = w - s * (L["B0"].double() @ L["A0"].double())
                w = w.float()
                if ad["kind"] == "dora":
                    n = w.double().norm(dim=1).float()
                    w = w * (L["M"].detach() / n)[:, None]
                out[name] = (W0, w)
        return out


def activate(torch, act, x):
    if act == "relu":
        return torch.relu(x)
    if act == "gelu":
        return torch.nn.functional.gelu(x, approximate="tanh")
    if act == "tanh":
        return torch.tanh(x)
    if act == "":
        return x
    raise Fail("unknown activation %r" % act)


# ---------------------------------------------------------------- HF PEFT model

# How each of our methods' resolved options (the export's method_options,
# every option of the method, defaults filled in; see `bench methods`)
# reach HF PEFT. Every option of every method is listed: an option that
# maps to a config field (Field), one this trainer applies itself (Trainer),
# or one with no HF PEFT counterpart (NotMapped, only in methods the peft
# backend refuses). peft_config_args refuses any option not listed, so an
# option added to a method in Go fails here (and in the Go test
# TestPEFTOptionTable) instead of silently taking HF's default.


class Field:
    """An option that becomes the HF config field name, through
    convert(value, options, total_steps)."""

    def __init__(self, name, convert):
        self.name, self.convert = name, convert


class Trainer:
    """An option this trainer applies itself, outside the HF config."""

    def __init__(self, why):
        self.why = why


class NotMapped:
    """An option with no HF PEFT counterpart here (its method is refused)."""

    def __init__(self, why):
        self.why = why


def round_half_away(x):
    """Go's math.Round for x ≥ 0 (halves away from zero), unlike Python's
    round (halves to even): floor(x) + 1 when the fraction is ≥ 0.5."""
    f = math.floor(x)
    return int(f + 1 if x - f >= 0.5 else f)


def as_int(v, o, steps):
    if isinstance(v, bool) or float(v) != int(v):
        raise Fail("want an integer, got %r" % (v,))
    return int(v)


def as_float(v, o, steps):
    if isinstance(v, bool):
        raise Fail("want a number, got %r" % (v,))
    return float(v)


def as_bool(v, o, steps):
    if not isinstance(v, bool):
        raise Fail("want true or false, got %r" % (v,))
    return v


def lora_init(v, o, steps):
    """Our init choices as LoraConfig.init_lora_weights: kaiming is HF's
    default (True: A Kaiming-uniform, B = 0)."""
    m = {"kaiming": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora"}
    if v not in m:
        raise Fail("init %r has no LoraConfig.init_lora_weights counterpart (known: %s)" % (v, ", ".join(sorted(m))))
    return m[v]


def adalora_init(v, o, steps):
    """AdaLoRA's only init, P, Q ~ N(0, 0.02²) and λ = 0, is what HF's
    AdaLoRA layers do with init_lora_weights=True."""
    if v != "gaussian":
        raise Fail("adalora init %r has no AdaLoraConfig counterpart (only gaussian)" % (v,))
    return True


def adalora_init_r(v, o, steps):
    """init_rank 0 means ⌈1.5·r⌉ (methods/adalora.go initRank)."""
    r0 = as_int(v, o, steps)
    if r0 > 0:
        return r0
    return (3 * as_int(o["rank"], o, steps) + 1) // 2


def fraction_to_steps(v, o, steps):
    """tinit and tfinal are fractions of the run's steps in our AdaLoRA and
    steps in HF's, rounded as methods/adalora.go does (math.Round)."""
    return round_half_away(as_float(v, o, steps) * steps)


def as_str(v, o, steps):
    if not isinstance(v, str):
        raise Fail("want a string, got %r" % (v,))
    return v


def ia3_feedforward(v, o, steps):
    """Our feedforward_modules (comma-separated target patterns, matched as
    sweeps.MatchTarget matches targets: a plain name or dotted suffix, a glob
    over the whole name, "re:" searched) as IA3Config.feedforward_modules: a
    regular expression HF fullmatches against each module name, or [] for
    none."""
    import re as _re
    pats = [p.strip() for p in as_str(v, o, steps).split(",")] if v.strip() else []
    alts = []
    for p in pats:
        if not p:
            raise Fail("empty pattern in %r" % (v,))
        if p == "all-linear":
            alts.append(".*")
        elif p.startswith("re:"):
            alts.append(".*(?:%s).*" % p[3:])
        elif any(c in p for c in "*?["):
            out, i = "", 0
            while i < len(p):
                c = p[i]
                if c == "*" and p[i + 1:i + 2] == "*":
                    out, i = out + ".*", i + 1
                elif c == "*":
                    out += "[^.]*"
                elif c == "?":
                    out += "[^.]"
                elif c == "[":
                    j = p.index("]", i)
                    cls = p[i + 1:j]
                    out, i = out + "[" + ("^" + cls[1:] if cls.startswith("!") else cls) + "]", j
                else:
                    out += _re.escape(c)
                i += 1
            alts.append(out)
        else:
            alts.append(r"(?:.*\.)?" + _re.escape(p))
    if not alts:
        return []
    return "|".join("(?:%s)" % a for a in alts)


def lokr_init(v, o, steps):
    """LoKrConfig.init_weights: True, False or "lycoris" (our string choices)."""
    m = {"true": True, "false": False, "lycoris": "lycoris"}
    if v not in m:
        raise Fail("init_weights %r has no LoKrConfig counterpart (known: %s)" % (v, ", ".join(sorted(m))))
    return m[v]


def hira_init(v, o, steps):
    """HiraConfig.init_weights: True, False or "gaussian" (our string choices)."""
    m = {"true": True, "false": False, "gaussian": "gaussian"}
    if v not in m:
        raise Fail("init_weights %r has no HiraConfig counterpart (known: %s)" % (v, ", ".join(sorted(m))))
    return m[v]


def c3a_init(v, o, steps):
    """Our C3A init_weights choices as C3AConfig.init_weights: zeros is HF's
    True (HF's False means xavier_uniform, our default)."""
    m = {"xavier_uniform": "xavier_uniform", "kaiming_uniform": "kaiming_uniform", "gaussian": "gaussian", "zeros": True}
    if v not in m:
        raise Fail("init_weights %r has no C3AConfig counterpart (known: %s)" % (v, ", ".join(sorted(m))))
    return m[v]


def c3a_block_size(kwargs, man, targets):
    """block_size 0 (methods/c3a.go's default) is the gcd of the targeted
    layers' in and out sizes, HF's own advice; HF needs the number."""
    if kwargs.get("block_size") == 0:
        g = 0
        for L in man["layers"]:
            if L["name"] in targets:
                g = math.gcd(math.gcd(g, L["out"]), L["in"])
        kwargs["block_size"] = g


def miss_init(v, o, steps):
    """MissConfig.init_weights is True (balance), False (balance, D
    Kaiming-uniform), "bat" or "mini"; our option spells the booleans."""
    m = {"true": True, "false": False, "bat": "bat", "mini": "mini"}
    if v not in m:
        raise Fail("init_weights %r has no MissConfig counterpart (known: %s)" % (v, ", ".join(sorted(m))))
    return m[v]


def shira_mask_type(v, o, steps):
    """ShiraConfig has one built-in mask, random; the magnitude mask is a
    custom mask_fn in HF PEFT, which this backend does not set."""
    if v != "random":
        raise Fail("mask_type %r has no ShiraConfig counterpart (HF PEFT builds only the random mask; "
                   "others need a custom mask_fn): use the native backend" % (v,))
    return v


def ln_target_modules(v, o, steps):
    """LN tuning's norm pattern: "" is HF's per-architecture default (None)."""
    return None if v == "" else str(v)


LORA_OPTIONS = {
    "rank": Field("r", as_int),
    "alpha": Field("lora_alpha", as_float),
    "dropout": Field("lora_dropout", as_float),
    "init": Field("init_lora_weights", lora_init),
}


def lora_family(fixed, **extra):
    return {"config": "LoraConfig", "fixed": fixed, "options": dict(LORA_OPTIONS, **extra)}


def not_mapped(why, options):
    return {"config": None, "refused": why, "options": {k: NotMapped(why) for k in options}}


PEFT_METHODS = {
    "lora": lora_family({}),
    "rslora": lora_family({"use_rslora": True}),
    "dora": lora_family({"use_dora": True}),
    "pissa": lora_family({}),
    "olora": lora_family({}),
    "loraplus": lora_family({}, lr_ratio=Trainer(
        "lora_B's learning rate is lr × lr_ratio through the optimiser's parameter groups "
        "(as peft.optimizers.create_loraplus_optimizer's loraplus_lr_ratio)")),
    "lora-fa": lora_family({}, precondition=Trainer(
        "lora_A is frozen; with precondition, B's clipped gradient becomes (1/s²)·g_B·(A·Aᵀ + 1e-8·I)⁻¹ "
        "before each step (as peft.optimizers.create_lorafa_optimizer)")),
    "adalora": {"config": "AdaLoraConfig", "fixed": {}, "total_step": True, "options": {
        "rank": Field("target_r", as_int),
        "init_rank": Field("init_r", adalora_init_r),
        "alpha": Field("lora_alpha", as_float),
        "dropout": Field("lora_dropout", as_float),
        "init": Field("init_lora_weights", adalora_init),
        "tinit": Field("tinit", fraction_to_steps),
        "tfinal": Field("tfinal", fraction_to_steps),
        "delta_t": Field("deltaT", as_int),
        "beta1": Field("beta1", as_float),
        "beta2": Field("beta2", as_float),
        # HF adds the regulariser only to outputs that carry a .loss; our
        # MLP returns logits, so the trainer adds it (PEFT.regularizer).
        "orth_reg": Field("orth_reg_weight", as_float),
    }},
    "vera": {"config": "VeraConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "d_initial": Field("d_initial", as_float),
        "projection_seed": Field("projection_prng_key", as_int),
        "dropout": Field("vera_dropout", as_float),
    }},
    "hra": {"config": "HRAConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "apply_GS": Field("apply_GS", as_bool),
        "init_weights": Field("init_weights", as_bool),
    }},
    # group_size: a layer whose out it does not divide uses a smaller even
    # divisor in methods/road.go; HF's RoadConfig has one group_size and
    # raises on such a layer.
    "road": {"config": "RoadConfig", "fixed": {}, "options": {
        "variant": Field("variant", as_str),
        "group_size": Field("group_size", as_int),
        "init_weights": Field("init_weights", as_bool),
    }},
    "ia3": {"config": "IA3Config", "fixed": {}, "options": {
        "feedforward_modules": Field("feedforward_modules", ia3_feedforward),
        "init_ia3_weights": Field("init_ia3_weights", as_bool),
    }},
    # OFT: the rank axis is oft_block_size; HF's r stays 0 (inferred as
    # in_features / block size, which HF adjusts to a divisor per layer).
    "oft": {"config": "OFTConfig", "fixed": {"r": 0}, "options": {
        "oft_block_size": Field("oft_block_size", as_int),
        "use_cayley_neumann": Field("use_cayley_neumann", as_bool),
        "num_cayley_neumann_terms": Field("num_cayley_neumann_terms", as_int),
        "block_share": Field("block_share", as_bool),
        "coft": Field("coft", as_bool),
        "eps": Field("eps", as_float),
        "init_weights": Field("init_weights", as_bool),
    }},
    # BOFT: HF computes boft_n_butterfly_factor > 1 only with its CUDA
    # extension and silently uses 1 without it (methods/boft.go).
    "boft": {"config": "BOFTConfig", "fixed": {}, "options": {
        "boft_block_size": Field("boft_block_size", as_int),
        "boft_block_num": Field("boft_block_num", as_int),
        "boft_n_butterfly_factor": Field("boft_n_butterfly_factor", as_int),
        "boft_dropout": Field("boft_dropout", as_float),
        "init_weights": Field("init_weights", as_bool),
    }},
    "fourierft": {"config": "FourierFTConfig", "fixed": {}, "options": {
        "n_frequency": Field("n_frequency", as_int),
        "scaling": Field("scaling", as_float),
        "random_loc_seed": Field("random_loc_seed", as_int),
        "init_weights": Field("init_weights", as_bool),
    }},
    # HF's BlockCircularConvolution.backward gets the input gradient wrong
    # for block_size > 2 (methods/c3a.go): runs here train layers below a C3A
    # layer with that gradient, unlike the native backend.
    "c3a": {"config": "C3AConfig", "fixed": {}, "options": {
        "block_size": Field("block_size", as_int),  # 0: see c3a_block_size
        "init_weights": Field("init_weights", c3a_init),
    }},
    "miss": {"config": "MissConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "mini_r": Field("mini_r", as_int),
        "miss_dropout": Field("miss_dropout", as_float),
        "init_weights": Field("init_weights", miss_init),
    }},
    "shira": {"config": "ShiraConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "mask_type": Field("mask_type", shira_mask_type),
        "random_seed": Field("random_seed", as_int),
        "init_weights": Field("init_weights", as_bool),
    }},
    "delora": {"config": "DeloraConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "delora_lambda": Field("delora_lambda", as_float),
        "module_dropout": Field("module_dropout", as_float),
        "init_weights": Field("init_weights", as_bool),
    }},
    "vblora": {"config": "VBLoRAConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "num_vectors": Field("num_vectors", as_int),
        "vector_length": Field("vector_length", as_int),
        "topk": Field("topk", as_int),
        "dropout": Field("vblora_dropout", as_float),
        "init_vector_bank_bound": Field("init_vector_bank_bound", as_float),
        "init_logits_std": Field("init_logits_std", as_float),
    }},
    "randlora": {"config": "RandLoraConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "alpha": Field("randlora_alpha", as_float),
        "projection_prng_key": Field("projection_prng_key", as_int),
        "sparse": Field("sparse", as_bool),
        "very_sparse": Field("very_sparse", as_bool),
        "dropout": Field("randlora_dropout", as_float),
        "init_weights": Field("init_weights", as_bool),
    }},
    "gralora": {"config": "GraloraConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "alpha": Field("alpha", as_float),
        "gralora_k": Field("gralora_k", as_int),
        "hybrid_r": Field("hybrid_r", as_int),
        "dropout": Field("gralora_dropout", as_float),
        "init_weights": Field("init_weights", as_bool),
    }},
    # LN tuning targets norm layers: our target_modules is LNTuningConfig's
    # (a regex fullmatched against module names; "" = HF's per-architecture
    # default, None), and replaces the targeted linear layers. The MLPs this
    # trainer builds have no norms, so the builtin sweep loader refuses
    # ln-tuning on their tasks before a trial gets here.
    "ln-tuning": {"config": "LNTuningConfig", "fixed": {}, "options": {
        "target_modules": Field("target_modules", ln_target_modules),
    }},
    # Full fine-tuning has no PEFT config: the trainer trains the targeted
    # layers' weights and biases.
    "full": {"config": None, "fixed": {}, "options": {}},
    "lora-ga": not_mapped(
        "lora-ga follows the paper (methods/loraga.go), not HF PEFT's LoRA-GA, and needs a gradient-estimation "
        "pass this backend does not run; use the native backend",
        ["rank", "alpha", "dropout", "init", "direction", "scale", "stable_gamma", "grad_batches"]),
    "lora-xs": not_mapped(
        "lora-xs has no HF PEFT config (HF PEFT has no LoRA-XS)",
        ["rank", "alpha", "dropout", "init"]),
    # Batch B (issue 20): none has an HF PEFT tuner this backend can build
    # (EVA and CorDA need peft's calibration passes, the Riemannian
    # preconditioner is a peft optimizer); the builtin engine runs them.
    "mora": not_mapped(
        "mora has no HF PEFT counterpart; use the native backend",
        ["rank", "mora_type", "dropout"]),
    "tied-lora": not_mapped(
        "tied-lora has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "train_a", "train_uv", "dropout"]),
    "singlora": not_mapped(
        "singlora has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "ramp", "dropout"]),
    "nola": not_mapped(
        "nola has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "num_basis", "num_basis_b", "basis_seed", "dropout"]),
    "dylora": not_mapped(
        "dylora has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "r_min", "frozen"]),
    "melora": not_mapped(
        "melora has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "n_split"]),
    "moslora": not_mapped(
        "moslora has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "init", "mixer_init"]),
    "kradapter": not_mapped(
        "kradapter has no HF PEFT counterpart; use the native backend",
        ["scaling"]),
    "loldu": not_mapped(
        "loldu has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "train_scale"]),
    "svfit": not_mapped(
        "svfit has no HF PEFT counterpart; use the native backend",
        ["rank"]),
    "salt": not_mapped(
        "salt has no HF PEFT counterpart; use the native backend",
        ["rank", "lora_rank", "relu"]),
    "lori": not_mapped(
        "lori has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "sparsity", "mask_scope", "dense_fraction", "reset_b", "init_a"]),
    "eva": not_mapped(
        "eva: HF PEFT's EVA (init_lora_weights=\"eva\") runs its incremental PCA inside peft's initialize_lora_eva_weights on a dataloader; this backend has no calibration pass, and methods/eva.go uses an exact PCA of fixed batches; use the native backend",
        ["rank", "alpha", "dropout", "rho", "whiten", "adjust_scaling_factors", "calib_batches"]),
    "corda": not_mapped(
        "corda: HF PEFT's CorDA needs preprocess_corda's covariance pass over calibration data, which this backend does not run; use the native backend",
        ["rank", "alpha", "dropout", "corda_method", "calib_batches"]),
    "lora-one": not_mapped(
        "lora-one has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "dropout", "use_rslora", "scale", "stable_gamma", "grad_batches", "residual"]),
    "lora-sb": not_mapped(
        "lora-sb has no HF PEFT counterpart; use the native backend",
        ["rank", "dropout", "update", "init_lr", "grad_batches", "residual"]),
    "galore": not_mapped(
        "galore has no HF PEFT counterpart; use the native backend",
        ["rank", "update_proj_gap", "scale"]),
    "flora": not_mapped(
        "flora has no HF PEFT counterpart; use the native backend",
        ["rank", "kappa", "projection_seed", "clip_threshold"]),
    "fira": not_mapped(
        "fira has no HF PEFT counterpart; use the native backend",
        ["rank", "update_proj_gap", "scale"]),
    "riemannian": not_mapped(
        "riemannian: HF PEFT's Riemannian preconditioner is an optimizer (peft.optimizers), which this backend does not build; use the native backend",
        ["rank", "alpha", "dropout", "init", "reg"]),
    "lora-pro": not_mapped(
        "lora-pro has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "dropout", "init", "lorapro_x"]),
    "cola": not_mapped(
        "cola has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "dropout", "init", "cola_chain"]),
    "lisa": not_mapped(
        "lisa has no HF PEFT counterpart; use the native backend",
        ["lisa_activated_layers", "lisa_interval_steps"]),
    "aflora": not_mapped(
        "aflora has no HF PEFT counterpart; use the native backend",
        ["rank", "d_initial", "dropout", "tinit", "tfinal", "delta_t", "beta1", "beta2"]),
    "coto": not_mapped(
        "coto has no HF PEFT counterpart; use the native backend",
        ["rank", "alpha", "dropout", "init", "initial_p", "final_p", "stage1_ratio", "group"]),
    "allora": not_mapped(
        "allora has no HF PEFT counterpart; use the native backend",
        ["rank", "eta", "apply", "norm"]),
    "loha": {"config": "LoHaConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "alpha": Field("alpha", as_float),
        "rank_dropout": Field("rank_dropout", as_float),
        "module_dropout": Field("module_dropout", as_float),
        "init_weights": Field("init_weights", as_bool),
    }},
    "lokr": {"config": "LoKrConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "alpha": Field("alpha", as_float),
        "rank_dropout": Field("rank_dropout", as_float),
        "module_dropout": Field("module_dropout", as_float),
        "decompose_both": Field("decompose_both", as_bool),
        "decompose_factor": Field("decompose_factor", as_int),
        "rank_dropout_scale": Field("rank_dropout_scale", as_bool),
        "init_weights": Field("init_weights", lokr_init),
    }},
    "hira": {"config": "HiraConfig", "fixed": {}, "options": {
        "rank": Field("r", as_int),
        "hira_dropout": Field("hira_dropout", as_float),
        "init_weights": Field("init_weights", hira_init),
    }},
}


def peft_config_args(method, options, total_steps):
    """Maps a method and its resolved options to (HF config class name or
    None for full fine-tuning, config kwargs without target_modules, the
    options the trainer applies itself). Needs no peft: only the caller
    builds the config. Raises Fail on a method or option not in
    PEFT_METHODS."""
    spec = PEFT_METHODS.get(method)
    if spec is None:
        raise Fail("method %s has no HF PEFT mapping in trainers/pytorch/train.py (PEFT_METHODS); pass --peft-type" % method)
    if spec.get("refused"):
        raise Fail("method %s cannot run on the peft backend: %s" % (method, spec["refused"]))
    table = spec["options"]
    unknown = sorted(set(options) - set(table))
    if unknown:
        raise Fail("method %s: option%s %s not mapped to HF PEFT in trainers/pytorch/train.py (PEFT_METHODS): "
                   "map each to a config field or mark it as the trainer's" %
                   (method, "s" if len(unknown) > 1 else "", ", ".join(unknown)))
    kwargs, trainer = dict(spec["fixed"]), {}
    if spec.get("total_step"):
        kwargs["total_step"] = int(total_steps)
    for name in sorted(options):
        rule, v = table[name], options[name]
        if isinstance(rule, Field):
            try:
                kwargs[rule.name] = rule.convert(v, options, total_steps)
            except (Fail, KeyError, TypeError, ValueError) as e:
                raise Fail("method %s option %s = %r: %s" % (method, name, v, e))
        else:
            trainer[name] = v
    return spec["config"], kwargs, trainer


def peft_table():
    """PEFT_METHODS as plain JSON: {method: {"config", "refused", "options":
    {option: "field NAME" | "trainer" | "not mapped"}}}, for the Go test."""
    out = {}
    for m, spec in PEFT_METHODS.items():
        opts = {}
        for k, rule in spec["options"].items():
            if isinstance(rule, Field):
                opts[k] = "field " + rule.name
            elif isinstance(rule, Trainer):
                opts[k] = "trainer"
            else:
                opts[k] = "not mapped"
        out[m] = {"config": spec["config"], "refused": spec.get("refused", ""), "options": opts}
    return out


class PEFT:
    """The exported MLP as a torch.nn.Module wrapped by peft.get_peft_model."""

    def __init__(self, man, base, device, torch, peft_type, total_steps):
        import peft  # noqa: only on machines that have it

        self.torch = torch
        act = man["arch"]["act"]
        names = [L["name"] for L in man["layers"]]

        class MLP(torch.nn.Module):
            def __init__(self):
                super().__init__()
                for L in man["layers"]:
                    lin = torch.nn.Linear(L["in"], L["out"], bias=L["bias"])
                    with torch.no_grad():
                        lin.weight.copy_(base[L["name"] + ".weight"])
                        if L["bias"]:
                            lin.bias.copy_(base[L["name"] + ".bias"])
                    setattr(self, L["name"], lin)

            def forward(self, x):
                for i, n in enumerate(names):
                    x = getattr(self, n)(x)
                    if i + 1 < len(names):
                        x = activate(torch, act, x)
                return x

        self.base_model = MLP().to(device).eval()
        for p in self.base_model.parameters():
            p.requires_grad_(False)
        model = MLP().to(device)
        targets = [L["name"] for L in man["layers"] if L["targeted"]]
        method, o = man["method"], man["method_options"]
        self.lr_ratio = 1.0
        self.adalora = None
        self.lorafa = None
        if peft_type:
            cfg = {"peft_type": peft_type.upper(), "target_modules": targets}
            for k, v in o.items():
                cfg.setdefault({"rank": "r", "alpha": "lora_alpha", "dropout": "lora_dropout"}.get(k, k), v)
            config = peft.get_peft_config(cfg)
        else:
            cls, kwargs, own = peft_config_args(method, o, total_steps)
            if method == "c3a":
                c3a_block_size(kwargs, man, targets)
            # A method's own target_modules (LN tuning's norms) replaces the
            # targeted linear layers.
            config = None if cls is None else getattr(peft, cls)(**dict({"target_modules": targets}, **kwargs))
            if method == "loraplus":
                self.lr_ratio = float(own["lr_ratio"])
            if method == "lora-fa":
                self.lorafa = {"precondition": bool(own["precondition"])}
            if method == "adalora":
                self.adalora = {"orth_reg_weight": kwargs["orth_reg_weight"]}
        for p in model.parameters():
            p.requires_grad_(False)
        if config is None:
            for n in targets:
                for p in getattr(model, n).parameters():
                    p.requires_grad_(True)
            self.model = model
        else:
            self.model = peft.get_peft_model(model, config)
        self.targets = targets
        if self.lorafa is not None:
            for name, p in self.model.named_parameters():
                if "lora_A" in name:
                    p.requires_grad_(False)
        self.params = []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                mul = self.lr_ratio if "lora_B" in name else 1.0
                decay = not name.endswith(".bias")
                self.params.append(({"name": name, "lr_mul": mul, "decay": decay}, p))
        self.training = False

    def trainable(self):
        return [t for _, t in self.params]

    def total_params(self):
        """Base tensors plus trainable adapter tensors (nn.TotalParams):
        frozen adapter parameters (LoRA-FA's A; named ".default" by HF PEFT)
        are left out, as the builtin leaves them out."""
        return sum(p.numel() for n, p in self.model.named_parameters()
                   if p.requires_grad or ".default" not in n)

    def forward(self, x):
        self.model.train(self.training)
        return self.model(x)

    def base_forward(self, x):
        return self.base_model(x)

    def regularizer(self):
        """AdaLoRA's orthogonality penalty, which HF adds only to outputs
        carrying a .loss (our MLP returns logits): orth_reg_weight times the
        mean over lora_A and lora_B of ‖AAᵀ − I‖_F and ‖BᵀB − I‖_F, as
        AdaLoraModel.forward computes it."""
        if self.adalora is None:
            return None
        torch = self.torch
        total, n = 0.0, 0
        for name, p in self.model.named_parameters():
            if ("lora_A" in name or "lora_B" in name) and p.requires_grad:
                cov = p @ p.t() if "lora_A" in name else p.t() @ p
                eye = torch.eye(*cov.shape, device=cov.device, dtype=cov.dtype)
                total = total + torch.linalg.norm(cov - eye, ord="fro")
                n += 1
        if n == 0:
            return None
        return self.adalora["orth_reg_weight"] * total / n

    def before_step(self):
        """LoRA-FA's preconditioner on the clipped gradient of B:
        g_B ← (1/s²)·g_B·(A·Aᵀ + 1e-8·I)⁻¹ (methods/lorafa.go)."""
        if self.lorafa is None or not self.lorafa["precondition"]:
            return
        torch = self.torch
        for m in self.model.modules():
            A, B = getattr(m, "lora_A", None), getattr(m, "lora_B", None)
            if not isinstance(A, torch.nn.ModuleDict) or "default" not in A:
                continue
            a, b = A["default"].weight, B["default"].weight
            if b.grad is None:
                continue
            s = float(m.scaling["default"])
            a64 = a.detach().double()
            gram = a64 @ a64.t() + 1e-8 * torch.eye(a64.shape[0], dtype=torch.float64, device=a64.device)
            b.grad = ((b.grad.double() @ torch.linalg.inv(gram)) / (s * s)).to(b.grad.dtype)

    def after_step(self, step):
        """step counts from 0; AdaLoRA's schedule counts from 1, as the
        builtin engine's (methods/adalora.go AfterStep)."""
        if self.adalora is not None:
            self.model.base_model.update_and_allocate(step + 1)

    def merged(self):
        torch = self.torch
        out = {}
        with torch.no_grad():
            m = self.model
            if hasattr(m, "merge_and_unload"):
                import copy
                m = copy.deepcopy(m).merge_and_unload()
            for n in self.targets:
                out[n] = (getattr(self.base_model, n).weight.detach().clone(), getattr(m, n).weight.detach().clone())
        return out


# ---------------------------------------------------------------- training

def restrict(torch, lg, y, classes):
    """The logit columns classes of lg and each label's position among them
    (tasks.Batch.Classes: task-incremental scoring); all columns when
    classes is None. A label outside classes is an error, as in Go."""
    if classes is None:
        return lg, y
    cols = torch.tensor(classes, device=lg.device)
    pos = torch.full((lg.shape[1],), -1, dtype=torch.long, device=lg.device)
    pos[cols] = torch.arange(len(classes), device=lg.device)
    y = pos[y]
    if (y < 0).any():
        raise Fail("a label is not among the set's classes %s" % classes)
    return lg[:, cols], y


def evaluate(torch, fwd, x, labels, classes=None, bs=1024):
    """Mean cross-entropy and argmax accuracy over rows with label ≥ 0,
    among the logit columns classes (all when None), accumulated in float64
    as tasks.Evaluate does."""
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for lo in range(0, x.shape[0], bs):
            lg = fwd(x[lo:lo + bs]).double()
            y = labels[lo:lo + bs]
            keep = y >= 0
            lg, y = restrict(torch, lg[keep], y[keep], classes)
            lse = torch.logsumexp(lg, dim=1)
            loss += (lse - lg.gather(1, y[:, None])[:, 0]).sum().item()
            correct += (lg.argmax(dim=1) == y).sum().item()
            n += y.numel()
    if n == 0:
        return 0.0, 0.0
    return loss / n, correct / n


def forgetting(torch, tuned, base, x, labels, classes=None, bs=1024):
    """KL(p_base ‖ p_tuned) and cross-entropy of tuned against base's
    predictions, mean over rows with label ≥ 0, both distributions over the
    logit columns classes (all when None) (tasks.Forgetting)."""
    kl, ce, n = 0.0, 0.0, 0
    cols = slice(None) if classes is None else torch.tensor(classes, device=x.device)
    with torch.no_grad():
        for lo in range(0, x.shape[0], bs):
            keep = labels[lo:lo + bs] >= 0
            lb = torch.log_softmax(base(x[lo:lo + bs]).double()[:, cols], dim=1)[keep]
            lt = torch.log_softmax(tuned(x[lo:lo + bs]).double()[:, cols], dim=1)[keep]
            pb = lb.exp()
            kl += (pb * (lb - lt)).sum().item()
            ce += -(pb * lt).sum().item()
            n += lb.shape[0]
    if n == 0:
        return 0.0, 0.0
    return kl / n, ce / n


def optimizer(torch, man, model):
    t = man["train"]
    groups = []
    for p, tensor in model.params:
        wd = t["weight_decay"] if p["decay"] else 0.0
        groups.append({"params": [tensor], "lr": 0.0, "lr_mul": p["lr_mul"], "weight_decay": wd})
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=0.0, momentum=t["momentum"])
    return torch.optim.AdamW(groups, lr=0.0, betas=(t["beta1"], t["beta2"]), eps=t["eps"])


def train(torch, man, data, model, device, out):
    t = man["train"]
    steps, clip = t["steps"], t["grad_clip"]
    X, Y = data["train.x"].to(device), data["train.labels"].to(device)
    # val: the validation set, absent from exports made before it existed.
    splits = [s for s in ("val", "target", "retain") if s + ".x" in data]
    sets = {s: (data[s + ".x"].to(device), data[s + ".labels"].to(device)) for s in splits}
    opt = optimizer(torch, man, model)
    params = model.trainable()
    names = [p["name"] for p, _ in model.params]
    start = time.time()

    def report_eval(step):
        model.training = False
        for split in splits:
            loss, acc = evaluate(torch, model.forward, *sets[split], classes=man.get(split + "_classes"))
            metric(step, split, "loss", loss)
            metric(step, split, "accuracy", acc)

    for i in range(steps):
        model.training = True
        logits = model.forward(X[i])
        loss = torch.nn.functional.cross_entropy(logits, Y[i], ignore_index=-1)
        lv = loss.item()  # reported without the regulariser, as the builtin engine does
        reg = model.regularizer() if hasattr(model, "regularizer") else None
        if reg is not None:
            loss = loss + reg
        if not math.isfinite(lv):
            emit({"type": "diverged", "step": i, "tensor": "loss"})
            return None
        for p in params:
            p.grad = None
        loss.backward()
        sq = 0.0
        for name, p in zip(names, params):
            if p.grad is None:
                continue
            g = p.grad.double()
            if not bool(torch.isfinite(g).all()):
                emit({"type": "diverged", "step": i, "tensor": "gradient of " + name})
                return None
            sq += (g * g).sum().item()
        gnorm = math.sqrt(sq)
        if clip > 0:
            c = clip / (gnorm + 1e-6)
            if c < 1:
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(c)
        if hasattr(model, "before_step"):
            model.before_step()
        lr = t["lr"][i]
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mul"]
        opt.step()
        if hasattr(model, "after_step"):
            model.after_step(i)
        if i % t["log_every"] == 0 or i == steps - 1:
            metric(i, "train", "loss", lv)
            metric(i, "train", "grad_norm", gnorm)
            metric(i, "train", "lr", lr)
        if t["eval_every"] > 0 and (i + 1) % t["eval_every"] == 0 and i != steps - 1:
            report_eval(i + 1)
    report_eval(steps)
    model.training = False
    return time.time() - start


def peak_mem(torch, device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except Exception:
        return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", help="the bench binary (default $PEFTBENCH_BENCH, else bench on PATH)")
    ap.add_argument("--data", help="an existing `bench export` folder instead of exporting the trial")
    ap.add_argument("--backend", choices=("auto", "native", "peft"), default="auto")
    ap.add_argument("--peft-type", help="any HF PEFT type (LORA, IA3, LOHA, …); the trial's method options become its config")
    ap.add_argument("--keep-data", action="store_true", help="keep the exported data under $PEFTBENCH_OUT/data")
    args = ap.parse_args()
    if args.peft_type:
        args.backend = "peft"

    if os.environ.get("PEFTBENCH_PROTOCOL", str(PROTOCOL)) != str(PROTOCOL):
        raise Fail("runner speaks protocol %s, this trainer %d" % (os.environ["PEFTBENCH_PROTOCOL"], PROTOCOL))
    trial_path = os.environ.get("PEFTBENCH_TRIAL")
    out = os.environ.get("PEFTBENCH_OUT")
    if not trial_path or not out:
        raise Fail("PEFTBENCH_TRIAL and PEFTBENCH_OUT must be set (run me through bench run)")
    with open(trial_path) as f:
        spec = json.load(f)
    if spec.get("protocol") != PROTOCOL:
        raise Fail("trial file protocol %r, want %d" % (spec.get("protocol"), PROTOCOL))

    import torch

    threads = int(os.environ.get("PEFTBENCH_THREADS", "1"))
    torch.set_num_threads(max(1, threads))
    if torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES", "") not in ("", "-1"):
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:
        device = torch.device("cpu")
    torch.manual_seed(spec["trial"]["seed"])  # dropout only; data and init come from the export

    data_dir = export(args, trial_path, out)
    man, base, init, data = load(data_dir, torch)
    backend = args.backend
    if backend == "auto":
        backend = "peft" if man.get("data_only") else "native"
    if backend == "native":
        if man.get("data_only"):
            raise Fail("the export has no method description (data only); use --backend peft")
        model = Native(man, base, init, device, torch)
    else:
        try:
            import peft  # noqa: F401
        except ImportError:
            raise Fail("method %s needs HF PEFT, which is not importable here" % man["method"])
        model = PEFT(man, base, device, torch, args.peft_type, man["train"]["steps"])
    log("torch %s on %s, backend %s, %s on %s" % (torch.__version__, device, backend, man["method"], man["task"]))

    trainable = sum(t.numel() for t in model.trainable())
    if backend == "native" and trainable != man["trainable_params"]:
        raise Fail("%d trainable parameters, the export says %d" % (trainable, man["trainable_params"]))
    # Base tensors + trainable adapter tensors, as the builtin's
    # nn.TotalParams counts them (buffers such as VeRA's projections are not
    # parameters).
    total = man["total_params"] if backend == "native" else model.total_params()

    wall = train(torch, man, data, model, device, out)
    if wall is None:
        return

    summary = {"trainable_params": trainable, "total_params": total, "steps": man["train"]["steps"]}
    for split, after in (("target", "target"), ("retain", "retain")):
        x, y = data[split + ".x"].to(device), data[split + ".labels"].to(device)
        classes = man.get(split + "_classes")
        l1, a1 = evaluate(torch, model.forward, x, y, classes)
        l0, a0 = evaluate(torch, model.base_forward, x, y, classes)
        if split == "target":
            summary.update(target_loss=l1, target_metric=a1, target_loss_before=l0, target_metric_before=a0)
        else:
            summary.update(retain_loss_after=l1, retain_metric_after=a1, retain_loss_before=l0, retain_metric_before=a0)
    if "val.x" in data:  # exports before the validation split lack it
        x, y = data["val.x"].to(device), data["val.labels"].to(device)
        summary["val_loss"], summary["val_metric"] = evaluate(torch, model.forward, x, y, man.get("val_classes"))
    x, y = data["retain.x"].to(device), data["retain.labels"].to(device)
    summary["forgetting"], summary["forgetting_ce"] = forgetting(torch, model.forward, model.base_forward, x, y,
                                                                 man.get("retain_classes"))
    summary["peak_mem_bytes"] = peak_mem(torch, device)
    summary["train_seconds"] = wall

    weights = {}
    for name, (w0, w) in model.merged().items():
        weights[name + ".base"] = w0
        weights[name + ".tuned"] = w
    write_safetensors(os.path.join(out, "weights.safetensors"), weights,
                      {"method": man["method"], "task": man["task"], "trainer": "trainers/pytorch", "backend": backend})
    emit({"type": "artifact", "name": "weights", "path": "weights.safetensors"})
    if backend == "peft" and hasattr(model.model, "save_pretrained"):
        model.model.save_pretrained(os.path.join(out, "adapter"))
        emit({"type": "artifact", "name": "adapter", "path": "adapter"})
    if not args.keep_data and not args.data:
        shutil.rmtree(data_dir, ignore_errors=True)
    emit({"type": "summary", "metrics": {k: num(v) for k, v in sorted(summary.items())}})


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print("train.py: %s" % e, file=sys.stderr)
        sys.exit(2)
