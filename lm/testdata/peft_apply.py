"""Independent reader of a Hugging Face PEFT LoRA folder (acceptance 3 of issue 24).

Usage: peft_apply.py CHECKPOINT ADAPTER IDS_JSON OUT_LOGITS

Reads the base checkpoint (config.json + model.safetensors, F32) and the
adapter folder (adapter_config.json + adapter_model.safetensors) with a
hand-written safetensors reader, checks the folder against what HF PEFT
writes and loads:

  - adapter_config.json: peft_type LORA, task_type CAUSAL_LM, bias none, no
    DoRA, inference_mode, r and lora_alpha numbers, fan_in_fan_out true
    exactly for GPT-2 (Conv1D), base_model_name_or_path the checkpoint;
  - every key is base_model.model.<module>.lora_A.weight [r, in] or
    .lora_B.weight [out, r], r from rank_pattern or r, in/out from the base
    weight (Conv1D stored [in, out]); each module has both factors; the
    modules are exactly the checkpoint's modules target_modules selects
    (PEFT's rule: the whole name or a dotted suffix);

then merges W' = W + s·B·A (transposed for fan_in_fan_out), s = alpha/r
(alpha/sqrt(r) with use_rslora; alpha_pattern and rank_pattern matched as
PEFT's get_pattern_key), in float64, runs parity.py's forward on the token
ids (IDS_JSON: {"batch", "seq", "ids"}) and writes the logits as
little-endian float32. Nothing the Go code computed is read but the folder
under test. Exit status 3 when torch is missing; 1 with a message on a
failed check.
"""
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402
import torch  # noqa: E402
from lora_train import read_safetensors  # noqa: E402


def fail(msg):
    print("peft_apply.py:", msg, file=sys.stderr)
    sys.exit(1)


def pattern_value(patterns, name, default):
    """PEFT's get_pattern_key: an exact key, else the first key whose regex (.*\\.)?key$ matches."""
    if name in patterns:
        return patterns[name]
    for k, v in patterns.items():
        if re.match(r"(.*\.)?(" + k + r")$", name):
            return v
    return default


def main(ckpt, adapter, ids_path, out_path):
    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = json.load(f)
    fam = cfg["model_type"]
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        ac = json.load(f)
    for k, want in (("peft_type", "LORA"), ("task_type", "CAUSAL_LM"), ("bias", "none"), ("use_dora", False),
                    ("inference_mode", True), ("fan_in_fan_out", fam == "gpt2")):
        if ac.get(k) != want:
            fail(f"adapter_config.json: {k} = {ac.get(k)!r}, want {want!r}")
    if os.path.realpath(ac.get("base_model_name_or_path") or "") != os.path.realpath(ckpt):
        fail(f"adapter_config.json: base_model_name_or_path {ac.get('base_model_name_or_path')!r}, want {ckpt}")
    if not isinstance(ac.get("r"), int) or not isinstance(ac.get("lora_alpha"), (int, float)):
        fail(f"adapter_config.json: r {ac.get('r')!r}, lora_alpha {ac.get('lora_alpha')!r}")
    targets = ac["target_modules"]
    if not isinstance(targets, list) or not targets:
        fail(f"adapter_config.json: target_modules {targets!r}, want a list")
    rank_p, alpha_p = ac.get("rank_pattern") or {}, ac.get("alpha_pattern") or {}

    w = {k: v.double() for k, v in read_safetensors(os.path.join(ckpt, "model.safetensors")).items()}
    ad = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))
    factors = {}
    for key, t in ad.items():
        m = re.fullmatch(r"base_model\.model\.(.+)\.lora_([AB])\.weight", key)
        if not m:
            fail(f"adapter_model.safetensors: key {key!r} is not base_model.model.<module>.lora_A/B.weight")
        factors.setdefault(m.group(1), {})[m.group(2)] = t.double()
    linears = sorted(k[:-len(".weight")] for k, v in w.items() if k.endswith(".weight") and v.dim() == 2)
    selected = [n for n in linears if any(n == t or n.endswith("." + t) for t in targets)]
    if sorted(factors) != selected:
        fail(f"adapted modules {sorted(factors)} != the checkpoint's modules target_modules {targets} selects {selected}")
    for name, f in factors.items():
        if set(f) != {"A", "B"}:
            fail(f"{name}: factors {sorted(f)}, want A and B")
        W = w[name + ".weight"]
        out_f, in_f = (W.shape[1], W.shape[0]) if ac["fan_in_fan_out"] else tuple(W.shape)
        r = pattern_value(rank_p, name, ac["r"])
        if tuple(f["A"].shape) != (r, in_f) or tuple(f["B"].shape) != (out_f, r):
            fail(f"{name}: lora_A {tuple(f['A'].shape)}, lora_B {tuple(f['B'].shape)}, want ({r}, {in_f}) and ({out_f}, {r})")
        alpha = pattern_value(alpha_p, name, ac["lora_alpha"])
        s = alpha / math.sqrt(r) if ac.get("use_rslora") else alpha / r
        d = s * (f["B"] @ f["A"])
        w[name + ".weight"] = W + (d.t() if ac["fan_in_fan_out"] else d)

    if fam == "gpt2":
        w = {k.removeprefix("transformer."): v for k, v in w.items()}
    with open(ids_path) as f:
        inp = json.load(f)
    parity.B, parity.T = inp["batch"], inp["seq"]
    ids = torch.tensor(inp["ids"]).reshape(parity.B, parity.T)
    with torch.no_grad():
        if fam == "gpt2":
            logits = parity.gpt2_forward(cfg, w, ids)
        elif fam == "gpt_neox":
            logits = parity.neox_forward(cfg, w, ids)
        else:
            logits = parity.llama_forward(cfg, w, ids)
    with open(out_path, "wb") as f:
        f.write(logits.float().contiguous().numpy().astype("<f4").tobytes())
    print(fam, len(factors), "modules, targets", targets, "rank_pattern", rank_p, "alpha_pattern", alpha_p)


if __name__ == "__main__":
    main(*sys.argv[1:5])
