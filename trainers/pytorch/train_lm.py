#!/usr/bin/env python3
"""GPU trainer for peftbench's lm task: transformers + HF PEFT, protocol v1.

The runner starts it with the trial file at $PEFTBENCH_TRIAL and the trial's
folder at $PEFTBENCH_OUT ([trainer] kind = "command"). It asks `bench export`
for the trial (export.json with arch kind "hf-causal-lm"): the checkpoint
folder, the targeted module names, the method's resolved options and its
initial tensors, and the token rows the builtin trainer would train and
evaluate on (data.safetensors). It never tokenises nor draws a batch: the
rows, their order and the labels (already shifted, -100 ignored) are the
builtin's, so its metrics can sit beside the builtin engine's row for row.

  model     AutoModelForCausalLM.from_pretrained(folder), float32, eager
            attention, every dropout of the checkpoint off (TF32 off on CUDA)
  method    peft.get_peft_model with the config PEFT_METHODS (train.py) maps
            the method and its options to; target_modules = the targeted
            module names (the checkpoint's own); full fine-tuning: no PEFT,
            the targeted layers train. Where the builtin's initial tensors
            map onto PEFT's parameters exactly (INIT_METHODS) they are
            loaded, so the two start from the same point; other methods
            start from PEFT's own initialisation (comparable statistically).
  recipe    the builtin's: AdamW (betas, eps, decoupled weight decay) or SGD,
            the exported learning rate of every step (warmup + schedule),
            clipping of the global gradient norm (float64, clip/(norm+1e-6)),
            evaluation every eval_every steps and at the end.
  metrics   the builtin lm task's names (summary): target_loss, target_metric,
            *_before, retain_loss_after, retain_metric_after, val_loss,
            val_metric, forgetting (KL(base ‖ tuned) per retain token),
            forgetting_ce, perplexity, tokens_per_s, examples_per_s,
            ms_per_step, trainable_params, total_params, steps,
            peak_mem_bytes, train_seconds.

Usage: train_lm.py [--bench PATH] [--data DIR] [--keep-data] [--cpu]
See README.md in this folder ("The GPU path for the lm task").
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as pt  # noqa: E402  (emit, metric, Fail, safetensors, PEFT_METHODS)

Fail = pt.Fail

# Methods whose builtin initial tensors are loaded into PEFT's parameters:
# the builtin and HF PEFT compute the same function of them (package methods'
# formulas are HF PEFT's), so both trainers start from the same point.
# Others (PiSSA/OLoRA change the base weight; VeRA, FourierFT, … draw from
# their own generators) start from PEFT's own initialisation.
INIT_METHODS = ("lora", "rslora", "dora", "loraplus", "lora-fa", "ia3")

# A builtin tensor name's suffix after "<layer>." → HF PEFT's, after
# "base_model.model.<layer>.".
INIT_SUFFIX = {
    "lora_A.weight": "lora_A.default.weight",
    "lora_B.weight": "lora_B.default.weight",
    "lora_magnitude_vector": "lora_magnitude_vector.default.weight",
    "ia3_l": "ia3_l.default",
}

# Configs with a fan_in_fan_out field: GPT-2's Conv1D layers hold W as
# [in, out]; HF PEFT wants the flag set (it sets it itself with a warning).
FAN_IN_FAN_OUT = ("LoraConfig", "AdaLoraConfig", "IA3Config", "VeraConfig", "FourierFTConfig", "RandLoraConfig")


def plan(man):
    """What the trainer will build, without torch, transformers or peft:
    {"config": HF config class name or None (full), "kwargs": its arguments
    incl. target_modules, "trainer": options applied by the trainer,
    "init": {builtin tensor: HF parameter name} (empty when PEFT
    initialises)}. Raises Fail on a method PEFT_METHODS refuses."""
    if man["arch"].get("kind") != "hf-causal-lm":
        raise Fail("export kind %r is not hf-causal-lm: use train.py" % man["arch"].get("kind"))
    method, o = man["method"], man["method_options"] or {}
    targets = [L["name"] for L in man["layers"] if L["targeted"]]
    cls, kwargs, own = pt.peft_config_args(method, o, man["train"]["steps"])
    if method == "c3a":
        pt.c3a_block_size(kwargs, man, targets)
    kwargs = dict({"target_modules": targets}, **kwargs)  # ln-tuning's own target_modules wins
    if cls in FAN_IN_FAN_OUT and man["arch"].get("model_type") == "gpt2":
        kwargs["fan_in_fan_out"] = True
    init = {}
    if method in INIT_METHODS and not man.get("data_only"):
        layers = sorted((L["name"] for L in man["layers"]), key=len, reverse=True)
        for p in man["params"]:
            hf = None
            for L in layers:
                if p["name"].startswith(L + "."):
                    suffix = INIT_SUFFIX.get(p["name"][len(L) + 1:])
                    if suffix:
                        hf = "base_model.model.%s.%s" % (L, suffix)
                    break
            if hf is None:
                init = {}  # one unknown tensor: PEFT initialises them all
                break
            init[p["name"]] = hf
    return {"config": cls, "kwargs": kwargs, "trainer": own, "init": init}


def load_export(data_dir, torch):
    with open(os.path.join(data_dir, "export.json")) as f:
        man = json.load(f)
    if man.get("format") != 1:
        raise Fail("%s: export format %r, want 1" % (data_dir, man.get("format")))
    data = pt.read_safetensors(os.path.join(data_dir, "data.safetensors"), torch)
    data = {k: v.to(torch.int64) for k, v in data.items()}
    init = {}
    if not man.get("data_only") and os.path.exists(os.path.join(data_dir, "init.safetensors")):
        init = pt.read_safetensors(os.path.join(data_dir, "init.safetensors"), torch)
    return man, init, data


def load_model(folder, torch, device):
    """The checkpoint as transformers builds it: float32, eager attention,
    every dropout probability of the config and every Dropout module 0."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(folder)
    for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "attention_dropout", "hidden_dropout",
              "summary_first_dropout", "dropout"):
        if isinstance(getattr(cfg, k, None), float):
            setattr(cfg, k, 0.0)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    model = AutoModelForCausalLM.from_pretrained(folder, config=cfg, attn_implementation="eager",
                                                 **{dtype_kw: torch.float32})
    model = model.float()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model.to(device)


class LMPeft(pt.PEFT):
    """An HF causal LM wrapped by peft.get_peft_model; the hooks (LoRA-FA's
    preconditioner, AdaLoRA's penalty and budget schedule, LoRA+'s ratio)
    are train.py's PEFT class's."""

    def __init__(self, man, init, device, torch):
        import peft

        self.torch = torch
        p = plan(man)
        folder = man["arch"]["model"]
        self.base_model = load_model(folder, torch, device).eval()
        for q in self.base_model.parameters():
            q.requires_grad_(False)
        model = load_model(folder, torch, device)
        for q in model.parameters():
            q.requires_grad_(False)
        method = man["method"]
        self.targets = p["kwargs"]["target_modules"] if method != "ln-tuning" else []
        self.lr_ratio = float(p["trainer"].get("lr_ratio", 1.0)) if method == "loraplus" else 1.0
        self.lorafa = {"precondition": bool(p["trainer"]["precondition"])} if method == "lora-fa" else None
        self.adalora = {"orth_reg_weight": p["kwargs"]["orth_reg_weight"]} if method == "adalora" else None
        if p["config"] is None:  # full fine-tuning
            for n in self.targets:
                for q in model.get_submodule(n).parameters():
                    q.requires_grad_(True)
            self.model = model
        else:
            self.model = peft.get_peft_model(model, getattr(peft, p["config"])(**p["kwargs"]))
        if self.lorafa is not None:
            for name, q in self.model.named_parameters():
                if "lora_A" in name:
                    q.requires_grad_(False)
        self.loaded_init = self.load_init(p["init"], init, man)
        meta = {q["name"]: q for q in man.get("params", [])}
        hf_to_ours = {v: k for k, v in p["init"].items()}
        self.params = []
        for name, q in self.model.named_parameters():
            if q.requires_grad:
                ours = meta.get(hf_to_ours.get(name))
                mul = ours["lr_mul"] if ours else (self.lr_ratio if "lora_B" in name else 1.0)
                decay = ours["decay"] if ours else not name.endswith(".bias")
                self.params.append(({"name": name, "lr_mul": mul, "decay": decay}, q))
        self.training = False

    def load_init(self, names, init, man):
        """Copies the builtin's initial tensors into PEFT's parameters;
        False (PEFT's own initialisation kept) when there is nothing to
        load or a shape disagrees."""
        if not names:
            return False
        torch = self.torch
        params = dict(self.model.named_parameters())
        for ours, hf in names.items():
            if ours not in init or hf not in params or params[hf].numel() != init[ours].numel():
                pt.log("init: %s has no PEFT counterpart %s of its size; PEFT's own initialisation kept" % (ours, hf))
                return False
        with torch.no_grad():
            for ours, hf in names.items():
                params[hf].copy_(init[ours].reshape(params[hf].shape))
        return True

    def total_params(self):
        return sum(q.numel() for n, q in self.model.named_parameters()
                   if q.requires_grad or ".default" not in n)

    def forward(self, ids):
        self.model.train(self.training)
        return self.model(input_ids=ids).logits

    def base_forward(self, ids):
        return self.base_model(input_ids=ids).logits

    def merged(self):
        """{layer: (W0, W)} for every targeted layer, [out, in] as the
        builtin saves them (GPT-2's Conv1D weights transposed back)."""
        import copy
        torch = self.torch
        out = {}
        with torch.no_grad():
            m = self.model
            if hasattr(m, "merge_and_unload"):
                m = copy.deepcopy(m).merge_and_unload()
            for n in self.targets:
                b, t = self.base_model.get_submodule(n), m.get_submodule(n)
                w0, w = b.weight.detach(), t.weight.detach()
                if type(b).__name__ == "Conv1D":
                    w0, w = w0.t(), w.t()
                out[n] = (w0.clone(), w.clone())
        return out


def rows_per_batch(seq, vocab):
    """Evaluation rows per forward, as tasks.evalBatchRows bounds them."""
    return max(1, min(16, (1 << 24) // max(1, seq * vocab)))


def evaluate(torch, fwd, ids, labels, bs):
    """Mean token cross-entropy and argmax accuracy over labels ≥ 0, in
    float64 (tasks.Evaluate)."""
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for lo in range(0, ids.shape[0], bs):
            lg = fwd(ids[lo:lo + bs]).double()
            lg, y = lg.reshape(-1, lg.shape[-1]), labels[lo:lo + bs].reshape(-1)
            keep = y >= 0
            lg, y = lg[keep], y[keep]
            lse = torch.logsumexp(lg, dim=1)
            loss += (lse - lg.gather(1, y[:, None])[:, 0]).sum().item()
            correct += (lg.argmax(dim=1) == y).sum().item()
            n += y.numel()
    return (0.0, 0.0) if n == 0 else (loss / n, correct / n)


def forgetting(torch, tuned, base, ids, labels, bs):
    """KL(p_base ‖ p_tuned) and the cross-entropy of tuned against base's
    next-token distributions, mean over retain tokens with label ≥ 0
    (tasks.Forgetting)."""
    kl, ce, n = 0.0, 0.0, 0
    with torch.no_grad():
        for lo in range(0, ids.shape[0], bs):
            keep = labels[lo:lo + bs].reshape(-1) >= 0
            lb = torch.log_softmax(base(ids[lo:lo + bs]).double(), dim=-1)
            lt = torch.log_softmax(tuned(ids[lo:lo + bs]).double(), dim=-1)
            lb, lt = lb.reshape(-1, lb.shape[-1])[keep], lt.reshape(-1, lt.shape[-1])[keep]
            pb = lb.exp()
            kl += (pb * (lb - lt)).sum().item()
            ce += -(pb * lt).sum().item()
            n += lb.shape[0]
    return (0.0, 0.0) if n == 0 else (kl / n, ce / n)


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(torch, man, data, model, device, bs):
    """The builtin's loop (train/train.go run.train) on the exported rows.
    Returns (wall seconds, step seconds) or None when the run diverged."""
    t = man["train"]
    steps, clip = t["steps"], t["grad_clip"]
    X, Y = data["train.ids"].to(device), data["train.labels"].to(device)
    sets = {s: (data[s + ".ids"].to(device), data[s + ".labels"].to(device)) for s in ("val", "target", "retain")}
    opt = pt.optimizer(torch, man, model)
    params = model.trainable()
    names = [p["name"] for p, _ in model.params]
    start, step_time, init_loss = time.time(), 0.0, None

    def report_eval(step):
        model.training = False
        for split in ("val", "target", "retain"):
            loss, acc = evaluate(torch, model.forward, *sets[split], bs)
            pt.metric(step, split, "loss", loss)
            pt.metric(step, split, "accuracy", acc)

    for i in range(steps):
        sync(torch, device)
        t0 = time.time()
        model.training = True
        lg = model.forward(X[i])
        loss = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), Y[i].reshape(-1), ignore_index=-100)
        lv = loss.item()
        reg = model.regularizer()
        if reg is not None:
            loss = loss + reg
        if not math.isfinite(lv):
            pt.emit({"type": "diverged", "step": i, "tensor": "loss"})
            return None
        init_loss = lv if init_loss is None else init_loss
        for p in params:
            p.grad = None
        loss.backward()
        sq = 0.0
        for name, p in zip(names, params):
            if p.grad is None:
                continue
            g = p.grad.double()
            if not bool(torch.isfinite(g).all()):
                pt.emit({"type": "diverged", "step": i, "tensor": "gradient of " + name})
                return None
            sq += (g * g).sum().item()
        gnorm = math.sqrt(sq)
        if clip > 0:
            c = clip / (gnorm + 1e-6)
            if c < 1:
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(c)
        model.before_step()
        lr = t["lr"][i]
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_mul"]
        opt.step()
        model.after_step(i)
        sync(torch, device)
        step_time += time.time() - t0
        if i % t["log_every"] == 0 or i == steps - 1:
            pt.metric(i, "train", "loss", lv)
            pt.metric(i, "train", "grad_norm", gnorm)
            pt.metric(i, "train", "lr", lr)
        if t["eval_every"] > 0 and (i + 1) % t["eval_every"] == 0 and i != steps - 1:
            report_eval(i + 1)
    report_eval(steps)
    model.training = False
    return time.time() - start, step_time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", help="the bench binary (default $PEFTBENCH_BENCH, else bench on PATH)")
    ap.add_argument("--data", help="an existing `bench export` folder instead of exporting the trial")
    ap.add_argument("--keep-data", action="store_true", help="keep the exported data under $PEFTBENCH_OUT/data")
    ap.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is visible")
    args = ap.parse_args()
    args.backend = "auto"  # pt.export: the full export (init tensors), data only if that fails

    if os.environ.get("PEFTBENCH_PROTOCOL", str(pt.PROTOCOL)) != str(pt.PROTOCOL):
        raise Fail("runner speaks protocol %s, this trainer %d" % (os.environ["PEFTBENCH_PROTOCOL"], pt.PROTOCOL))
    trial_path, out = os.environ.get("PEFTBENCH_TRIAL"), os.environ.get("PEFTBENCH_OUT")
    if not trial_path or not out:
        raise Fail("PEFTBENCH_TRIAL and PEFTBENCH_OUT must be set (run me through bench run)")
    with open(trial_path) as f:
        spec = json.load(f)
    if spec.get("protocol") != pt.PROTOCOL:
        raise Fail("trial file protocol %r, want %d" % (spec.get("protocol"), pt.PROTOCOL))

    import torch

    torch.set_num_threads(max(1, int(os.environ.get("PEFTBENCH_THREADS", "1"))))
    if not args.cpu and torch.cuda.is_available() and os.environ.get("CUDA_VISIBLE_DEVICES", "") not in ("", "-1"):
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:
        device = torch.device("cpu")
    torch.manual_seed(spec["trial"]["seed"])  # PEFT's own initialisation and dropout only

    data_dir = pt.export(args, trial_path, out)
    man, init, data = load_export(data_dir, torch)
    plan(man)  # refuses a method PEFT cannot run before loading anything
    try:
        import peft
        import transformers
    except ImportError as e:
        raise Fail("the lm trainer needs transformers and peft (the export in %s is ready): %s" % (data_dir, e))
    model = LMPeft(man, init, device, torch)
    pt.log("torch %s, transformers %s, peft %s on %s: %s on %s (%s), initial tensors %s" % (
        torch.__version__, transformers.__version__, peft.__version__, device, man["method"],
        man["arch"]["model"], man["arch"]["model_type"], "the builtin's" if model.loaded_init else "PEFT's own"))
    trainable = sum(q.numel() for q in model.trainable())
    if man.get("trainable_params") and trainable != man["trainable_params"]:
        pt.log("PEFT trains %d parameters, the builtin %d" % (trainable, man["trainable_params"]))

    bs = rows_per_batch(man["arch"]["seq"], man["arch"]["vocab"])
    r = train(torch, man, data, model, device, bs)
    if r is None:
        return
    wall, step_time = r
    t = man["train"]
    summary = {"trainable_params": trainable, "total_params": model.total_params(), "steps": t["steps"]}
    for split in ("target", "retain"):
        ids, y = data[split + ".ids"].to(device), data[split + ".labels"].to(device)
        l1, a1 = evaluate(torch, model.forward, ids, y, bs)
        l0, a0 = evaluate(torch, model.base_forward, ids, y, bs)
        if split == "target":
            summary.update(target_loss=l1, target_metric=a1, target_loss_before=l0, target_metric_before=a0)
        else:
            summary.update(retain_loss_after=l1, retain_metric_after=a1, retain_loss_before=l0, retain_metric_before=a0)
    ids, y = data["val.ids"].to(device), data["val.labels"].to(device)
    summary["val_loss"], summary["val_metric"] = evaluate(torch, model.forward, ids, y, bs)
    ids, y = data["retain.ids"].to(device), data["retain.labels"].to(device)
    summary["forgetting"], summary["forgetting_ce"] = forgetting(torch, model.forward, model.base_forward, ids, y, bs)
    summary["perplexity"] = math.exp(summary["target_loss"]) if summary["target_loss"] < 700 else float("inf")
    if step_time > 0 and t["steps"] > 0:
        summary["tokens_per_s"] = t["steps"] * t["batch"] * man["arch"]["seq"] / step_time
        summary["examples_per_s"] = t["steps"] * t["batch"] / step_time
        summary["ms_per_step"] = 1e3 * step_time / t["steps"]
    summary["peak_mem_bytes"] = pt.peak_mem(torch, device)
    summary["train_seconds"] = wall

    try:
        weights = {}
        for name, (w0, w) in model.merged().items():
            weights[name + ".base"], weights[name + ".tuned"] = w0, w
        pt.write_safetensors(os.path.join(out, "weights.safetensors"), weights,
                             {"method": man["method"], "task": man["task"], "trainer": "trainers/pytorch/train_lm.py"})
        pt.emit({"type": "artifact", "name": "weights", "path": "weights.safetensors"})
    except Exception as e:  # a tuner PEFT cannot merge: no spectra, the metrics stand
        pt.log("no weights artifact: merging %s failed: %s" % (man["method"], e))
    if hasattr(model.model, "save_pretrained") and hasattr(model.model, "peft_config"):
        model.model.save_pretrained(os.path.join(out, "adapter"))
        pt.emit({"type": "artifact", "name": "adapter", "path": "adapter"})
    if not args.keep_data and not args.data:
        shutil.rmtree(data_dir, ignore_errors=True)
    pt.emit({"type": "summary", "metrics": {k: pt.num(v) for k, v in sorted(summary.items())}})


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print("train_lm.py: %s" % e, file=sys.stderr)
        sys.exit(2)
