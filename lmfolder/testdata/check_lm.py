"""Independent check of a make-lm folder: tensor names, shapes and dtypes
against what the family's transformers modeling file creates, derived here
from config.json alone; the safetensors reader is written by hand.

usage: check_lm.py DIR...   prints one JSON line per folder; exit 1 on a mismatch
"""
import json, os, struct, sys

import torch

DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}
TORCH = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt, size = DTYPES[info["dtype"]]
        numel = 1
        for d in info["shape"]:
            numel *= d
        assert e - b == numel * size, name
        t = torch.frombuffer(bytearray(data[b:e]), dtype=dt).reshape(info["shape"]) if numel else torch.zeros(info["shape"], dtype=dt)
        out[name] = (info["dtype"], list(info["shape"]), t.float())
    return out


def read_folder(d):
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return read_safetensors(os.path.join(d, "model.safetensors"))
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    out = {}
    for shard in sorted(set(index["weight_map"].values())):
        part = read_safetensors(os.path.join(d, shard))
        for k in part:
            assert index["weight_map"][k] == shard, (k, shard)
        out.update(part)
    assert set(out) == set(index["weight_map"]), "index and shards disagree"
    total = sum(t.numel() * DTYPES[dt][1] for dt, _, t in out.values())
    assert index["metadata"]["total_size"] == total, ("total_size", index["metadata"]["total_size"], total)
    return out


def expected(c):
    """name -> shape, as GPT2LMHeadModel / GPTNeoXForCausalLM / LlamaForCausalLM /
    Qwen2ForCausalLM's state_dict has them (save_pretrained drops tied heads)."""
    mt = c["model_type"]
    e = {}
    if mt == "gpt2":
        d, L = c["n_embd"], c["n_layer"]
        f = c["n_inner"] or 4 * d
        e["transformer.wte.weight"] = [c["vocab_size"], d]
        e["transformer.wpe.weight"] = [c["n_positions"], d]
        for i in range(L):
            p = "transformer.h.%d." % i
            for ln in ("ln_1", "ln_2"):
                e[p + ln + ".weight"] = [d]; e[p + ln + ".bias"] = [d]
            # Conv1D stores [nx (in), nf (out)]
            e[p + "attn.c_attn.weight"] = [d, 3 * d]; e[p + "attn.c_attn.bias"] = [3 * d]
            e[p + "attn.c_proj.weight"] = [d, d]; e[p + "attn.c_proj.bias"] = [d]
            e[p + "mlp.c_fc.weight"] = [d, f]; e[p + "mlp.c_fc.bias"] = [f]
            e[p + "mlp.c_proj.weight"] = [f, d]; e[p + "mlp.c_proj.bias"] = [d]
        e["transformer.ln_f.weight"] = [d]; e["transformer.ln_f.bias"] = [d]
        if not c.get("tie_word_embeddings", True):
            e["lm_head.weight"] = [c["vocab_size"], d]
    elif mt == "gpt_neox":
        d, f, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
        e["gpt_neox.embed_in.weight"] = [c["vocab_size"], d]
        for i in range(L):
            p = "gpt_neox.layers.%d." % i
            for ln in ("input_layernorm", "post_attention_layernorm"):
                e[p + ln + ".weight"] = [d]; e[p + ln + ".bias"] = [d]
            e[p + "attention.query_key_value.weight"] = [3 * d, d]; e[p + "attention.query_key_value.bias"] = [3 * d]
            e[p + "attention.dense.weight"] = [d, d]; e[p + "attention.dense.bias"] = [d]
            e[p + "mlp.dense_h_to_4h.weight"] = [f, d]; e[p + "mlp.dense_h_to_4h.bias"] = [f]
            e[p + "mlp.dense_4h_to_h.weight"] = [d, f]; e[p + "mlp.dense_4h_to_h.bias"] = [d]
        e["gpt_neox.final_layer_norm.weight"] = [d]; e["gpt_neox.final_layer_norm.bias"] = [d]
        if not c.get("tie_word_embeddings", False):
            e["embed_out.weight"] = [c["vocab_size"], d]
    elif mt in ("llama", "qwen2"):
        d, f, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
        h, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
        hd = c.get("head_dim") or d // h
        bias = mt == "qwen2" or c.get("attention_bias", False)
        e["model.embed_tokens.weight"] = [c["vocab_size"], d]
        for i in range(L):
            p = "model.layers.%d." % i
            for n, o in (("q_proj", h * hd), ("k_proj", kv * hd), ("v_proj", kv * hd)):
                e[p + "self_attn." + n + ".weight"] = [o, d]
                if bias:
                    e[p + "self_attn." + n + ".bias"] = [o]
            e[p + "self_attn.o_proj.weight"] = [d, h * hd]
            e[p + "mlp.gate_proj.weight"] = [f, d]; e[p + "mlp.up_proj.weight"] = [f, d]
            e[p + "mlp.down_proj.weight"] = [d, f]
            e[p + "input_layernorm.weight"] = [d]; e[p + "post_attention_layernorm.weight"] = [d]
        e["model.norm.weight"] = [d]
        if not c.get("tie_word_embeddings", False):
            e["lm_head.weight"] = [c["vocab_size"], d]
    else:
        raise SystemExit("unknown model_type " + mt)
    return e


def check(d):
    c = json.load(open(os.path.join(d, "config.json")))
    got = read_folder(d)
    want = expected(c)
    errs = []
    for k in sorted(set(want) | set(got)):
        if k not in got:
            errs.append("missing " + k)
        elif k not in want:
            errs.append("unexpected " + k)
        elif got[k][1] != want[k]:
            errs.append("%s: shape %s, want %s" % (k, got[k][1], want[k]))
    dt = TORCH[c.get("torch_dtype") or c.get("dtype")]
    for k, (kd, _, t) in got.items():
        if kd != dt:
            errs.append("%s: dtype %s, config says %s" % (k, kd, dt))
        if not torch.isfinite(t).all():
            errs.append(k + ": not finite")
    # Weight matrices: std near initializer_range (GPT-2's c_proj smaller).
    stds = {k: float(t.std()) for k, (_, s, t) in got.items() if len(s) == 2}
    tok = json.load(open(os.path.join(d, "tokenizer.json")))
    ids = set(tok["model"]["vocab"].values()) | {a["id"] for a in tok["added_tokens"]}
    rows = c["vocab_size"]
    if max(ids) + 1 != len(ids):
        errs.append("tokenizer ids not dense 0..%d" % (len(ids) - 1))
    if mt_pad(c) and not len(ids) < rows:
        errs.append("neox: tokenizer %d ids, rows %d: want padding" % (len(ids), rows))
    if not mt_pad(c) and len(ids) != rows:
        errs.append("tokenizer %d ids, embedding rows %d" % (len(ids), rows))
    return {"dir": d, "tensors": len(got), "errors": errs, "max_std": max(stds.values()), "min_std": min(stds.values())}


def mt_pad(c):
    return c["model_type"] == "gpt_neox"


bad = False
for d in sys.argv[1:]:
    r = check(d)
    bad = bad or bool(r["errors"])
    print(json.dumps(r))
sys.exit(1 if bad else 0)
