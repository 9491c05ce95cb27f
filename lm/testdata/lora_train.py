"""Independent reference for lm's LoRA training test (acceptance 1 of issue 24, second half).

Usage: lora_train.py FOLDER OUTDIR

FOLDER is a tiny F32 checkpoint (config.json + model.safetensors) of one
family. This script writes the shared inputs into OUTDIR first:

  setup.json        rank, alpha, lr, betas, eps, weight_decay, max_norm,
                    steps, batch, seq, the token batches and labels (-100
                    ignored), and the targeted module names;
  init.safetensors  the initial LoRA factors <module>.lora_A.weight [r, in]
                    and .lora_B.weight [out, r], both drawn here (seeded),
                    B non-zero so that A has a gradient from step 1;

then trains them and writes what it got:

  result.json       the loss of every step (before its update) and the
                    global gradient norm before clipping;
  final.safetensors the LoRA factors after the last step.

Training is written from the published formulas, in fp32 with torch only:
the model forward is parity.py's (GPT-2, GPT-NeoX, Llama, Qwen2); LoRA adds
(alpha/r)·B·A to each targeted weight W [out, in] (HF PEFT's scaling; for
GPT-2's Conv1D weight [in, out] the transpose, HF's fan_in_fan_out), which
is W·x + (alpha/r)·B·(A·x); the loss is the shifted causal-LM
cross-entropy; then torch.nn.utils.clip_grad_norm_ over all factors and one
torch.optim.AdamW step. Nothing the Go code computed is read. Exit status 3
when torch is missing.
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402  (exits 3 without torch)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

RANK, ALPHA = 4, 8.0
LR, BETAS, EPS, WD = 5e-3, (0.9, 0.999), 1e-8, 0.01
STEPS, BATCH, SEQ = 20, 2, 12

TARGETS = {
    "gpt2": ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"],
    "gpt_neox": ["attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"],
    "llama": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
              "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"],
}
TARGETS["qwen2"] = TARGETS["llama"]
LAYER_PREFIX = {"gpt2": "transformer.h.{}.", "gpt_neox": "gpt_neox.layers.{}.", "llama": "model.layers.{}.",
                "qwen2": "model.layers.{}."}


def read_safetensors(path):
    """A hand-written reader: 8-byte little-endian header length, JSON header, raw data (F32 only)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name}: dtype {info['dtype']}, this reader wants F32")
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[base + a:base + b]), dtype=torch.float32)
        out[name] = t.reshape(info["shape"]) if info["shape"] else t.reshape(())
    return out


def main(folder, out):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    fam = cfg["model_type"]
    w = read_safetensors(os.path.join(folder, "model.safetensors"))
    w = {k: v.double() for k, v in w.items()}  # the reference runs in float64
    if fam == "gpt2":  # parity.py's forward uses the unprefixed names
        w = {k.removeprefix("transformer."): v for k, v in w.items()}
    layers = cfg["n_layer"] if fam == "gpt2" else cfg["num_hidden_layers"]
    vocab = cfg["vocab_size"]
    names = [LAYER_PREFIX[fam].format(i) + t for i in range(layers) for t in TARGETS[fam]]

    def base_key(name):  # the key of the module's weight in w
        return name.removeprefix("transformer.") + ".weight"

    torch.manual_seed(20240)
    factors = {}
    for name in names:
        W = w[base_key(name)]
        out_f, in_f = (W.shape[1], W.shape[0]) if fam == "gpt2" else tuple(W.shape)
        # drawn in float32 (the shared input's precision), trained in float64
        factors[name] = ((torch.randn(RANK, in_f) * 0.3).double(), (torch.randn(out_f, RANK) * 0.05).double())
    ids = torch.randint(0, vocab, (STEPS, BATCH, SEQ))
    labels = ids.clone()
    labels[:, 0, 3] = -100  # a few ignored targets
    labels[:, 1, SEQ - 2] = -100

    params = []
    for name in names:
        A, B = factors[name]
        A.requires_grad_(True)
        B.requires_grad_(True)
        params += [A, B]

    parity.B, parity.T = BATCH, SEQ
    scale = ALPHA / RANK

    def loss_of(step):
        wl = dict(w)
        for name in names:
            A, B = factors[name]
            d = scale * (B @ A)  # [out, in]
            k = base_key(name)
            wl[k] = w[k] + (d.t() if fam == "gpt2" else d)
        x = ids[step]
        if fam == "gpt2":
            logits = parity.gpt2_forward(cfg, wl, x)
        elif fam == "gpt_neox":
            logits = parity.neox_forward(cfg, wl, x)
        else:
            logits = parity.llama_forward(cfg, wl, x)
        v = logits.shape[-1]
        return F.cross_entropy(logits[:, :-1].reshape(-1, v), labels[step][:, 1:].reshape(-1), ignore_index=-100)

    # A dry run without clipping (on copies) fixes max_norm at the median
    # of its gradient norms, so that clipping acts on some steps and not on
    # others.
    saved = {n: (A.detach().clone(), B.detach().clone()) for n, (A, B) in factors.items()}
    dry = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    dry_norms = []
    for step in range(STEPS):
        dry.zero_grad()
        loss_of(step).backward()
        dry_norms.append(float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params))))
        dry.step()
    max_norm = sorted(dry_norms)[STEPS // 2]
    with torch.no_grad():
        for n, (A, B) in factors.items():
            A.copy_(saved[n][0])
            B.copy_(saved[n][1])
            A.grad = B.grad = None

    init = {}
    for name in names:
        A, B = factors[name]
        init[name + ".lora_A.weight"] = (A.detach().clone(), "F32")
        init[name + ".lora_B.weight"] = (B.detach().clone(), "F32")
    os.makedirs(out, exist_ok=True)
    parity.write_safetensors(os.path.join(out, "init.safetensors"), init)
    with open(os.path.join(out, "setup.json"), "w") as f:
        json.dump({"rank": RANK, "alpha": ALPHA, "lr": LR, "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS,
                   "weight_decay": WD, "max_norm": max_norm, "steps": STEPS, "batch": BATCH, "seq": SEQ,
                   "ids": ids.reshape(STEPS, -1).tolist(), "labels": labels.reshape(STEPS, -1).tolist(),
                   "targets": names}, f)

    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD)
    losses, norms = [], []
    for step in range(STEPS):
        opt.zero_grad()
        loss = loss_of(step)
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        opt.step()
        losses.append(float(loss))
    final = {}
    for name in names:
        A, B = factors[name]
        final[name + ".lora_A.weight"] = (A.detach(), "F32")
        final[name + ".lora_B.weight"] = (B.detach(), "F32")
    parity.write_safetensors(os.path.join(out, "final.safetensors"), final)
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({"losses": losses, "grad_norms": norms, "clipped": sum(n > max_norm for n in norms)}, f)
    print(fam, "loss", losses[0], "->", losses[-1], "clipped", sum(n > max_norm for n in norms), "of", STEPS)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
