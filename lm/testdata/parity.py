"""Independent reference for lm's parity test (acceptance 1 of issue 24, first half).

Usage: parity.py OUTDIR

Writes one tiny random Hugging Face checkpoint folder per case under OUTDIR
(config.json + model.safetensors, or an index and shards), written by a
hand-made safetensors writer (8-byte little-endian header length, JSON
header, raw little-endian data), plus ids.json (the token ids) and
logits.f32 (little-endian float32, batch*seq*vocab) computed by the forward
passes below, with labels and the shifted causal-LM loss in ids.json. They are written from the published architectures (GPT-2,
GPT-NeoX/Pythia, Llama, Qwen2), in fp32 on the weights as stored (F16/BF16
rounded), with torch only: transformers is not used and nothing computed by
the Go code is read. Exit status 3 when torch is missing.
"""
import json
import math
import os
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch is not importable", file=sys.stderr)
    sys.exit(3)

B, T, TOKENS = 2, 7, 64  # batch, sequence, token ids drawn below TOKENS


# --- safetensors writer -------------------------------------------------------

def tensor_bytes(t, dtype):
    if dtype == "F32":
        return t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.to(torch.float16).contiguous().numpy().astype("<f2").tobytes()
    if dtype == "BF16":
        return t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "BOOL":
        return t.to(torch.uint8).contiguous().numpy().tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors):
    """tensors: name -> (tensor, dtype)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t, dtype = tensors[name]
        b = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def stored(t, dtype):
    """The fp32 value a reader gets back from t stored as dtype."""
    if dtype == "F16":
        return t.to(torch.float16).to(torch.float32)
    if dtype == "BF16":
        return t.to(torch.bfloat16).to(torch.float32)
    return t.to(torch.float32)


# --- shared pieces ------------------------------------------------------------

def causal_attention(q, k, v, scale):
    """q [B,H,T,hd], k/v [B,KV,T,hd]; kv head j serves q heads j*rep..(j+1)*rep-1."""
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    n = q.shape[2]
    s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def llama3_scaled(inv_freq, sc):
    """Llama 3.1's frequency scaling, from Meta's reference apply_scaling
    (llama-models, llama3/model.py), per frequency, in float32: wavelengths
    above original/low are slowed by factor, those below original/high
    kept, the band between interpolated linearly in original/wavelength."""
    factor, low, high = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"]
    old = sc["original_max_position_embeddings"]
    out = []
    for f in inv_freq.tolist():
        f = torch.tensor(f, dtype=torch.float32)
        wavelen = torch.tensor(2 * math.pi, dtype=torch.float32) / f
        if wavelen < torch.tensor(old / high, dtype=torch.float32):
            out.append(f)
        elif wavelen > torch.tensor(old / low, dtype=torch.float32):
            out.append(f / factor)
        else:
            smooth = (torch.tensor(old, dtype=torch.float32) / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.stack(out).float()


def rope_tables(dim, theta, n, scaling=None):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if scaling is not None:
        inv_freq = llama3_scaled(inv_freq, scaling)
    freqs = torch.outer(torch.arange(n, dtype=torch.int64).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin, rd):
    xr, xp = x[..., :rd], x[..., rd:]
    return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)


def heads(x, n, hd):  # [B,T,n*hd] -> [B,n,T,hd]
    return x.view(B, T, n, hd).transpose(1, 2)


def merge(x):  # [B,H,T,hd] -> [B,T,H*hd]
    return x.transpose(1, 2).reshape(B, T, -1)


def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


# --- families -----------------------------------------------------------------

def gpt2_forward(c, w, ids):
    d, h = c["n_embd"], c["n_head"]
    hd = d // h
    x = w["wte.weight"][ids] + w["wpe.weight"][torch.arange(T)]
    for i in range(c["n_layer"]):
        p = f"h.{i}."
        a = F.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], c["layer_norm_epsilon"])
        qkv = torch.addmm(w[p + "attn.c_attn.bias"], a.view(-1, d), w[p + "attn.c_attn.weight"]).view(B, T, 3 * d)
        q, k, v = qkv.split(d, dim=-1)
        o = causal_attention(heads(q, h, hd), heads(k, h, hd), heads(v, h, hd), 1.0 / math.sqrt(hd))
        o = torch.addmm(w[p + "attn.c_proj.bias"], merge(o).view(-1, d), w[p + "attn.c_proj.weight"]).view(B, T, d)
        x = x + o
        m = F.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], c["layer_norm_epsilon"])
        m = gelu_new(torch.addmm(w[p + "mlp.c_fc.bias"], m.view(-1, d), w[p + "mlp.c_fc.weight"]))
        m = torch.addmm(w[p + "mlp.c_proj.bias"], m, w[p + "mlp.c_proj.weight"]).view(B, T, d)
        x = x + m
    x = F.layer_norm(x, (d,), w["ln_f.weight"], w["ln_f.bias"], c["layer_norm_epsilon"])
    return x @ w["wte.weight"].t()


def neox_rope(c):
    if "rope_parameters" in c:
        return c["rope_parameters"]["rope_theta"], c["rope_parameters"]["partial_rotary_factor"]
    return c["rotary_emb_base"], c["rotary_pct"]


def neox_forward(c, w, ids):
    d, h = c["hidden_size"], c["num_attention_heads"]
    hd = d // h
    theta, pct = neox_rope(c)
    rd = int(hd * pct)
    cos, sin = rope_tables(rd, theta, T)
    eps = c["layer_norm_eps"]
    x = w["gpt_neox.embed_in.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        a = F.layer_norm(x, (d,), w[p + "input_layernorm.weight"], w[p + "input_layernorm.bias"], eps)
        qkv = F.linear(a, w[p + "attention.query_key_value.weight"], w[p + "attention.query_key_value.bias"])
        qkv = qkv.view(B, T, h, 3 * hd).transpose(1, 2)  # per head: [q | k | v]
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        q, k = apply_rope(q, cos, sin, rd), apply_rope(k, cos, sin, rd)
        o = causal_attention(q, k, v, hd ** -0.5)
        o = F.linear(merge(o), w[p + "attention.dense.weight"], w[p + "attention.dense.bias"])

        def mlp(z):
            z = F.layer_norm(z, (d,), w[p + "post_attention_layernorm.weight"], w[p + "post_attention_layernorm.bias"], eps)
            z = F.gelu(F.linear(z, w[p + "mlp.dense_h_to_4h.weight"], w[p + "mlp.dense_h_to_4h.bias"]))
            return F.linear(z, w[p + "mlp.dense_4h_to_h.weight"], w[p + "mlp.dense_4h_to_h.bias"])

        if c["use_parallel_residual"]:
            x = mlp(x) + o + x
        else:
            x = o + x
            x = mlp(x) + x
    x = F.layer_norm(x, (d,), w["gpt_neox.final_layer_norm.weight"], w["gpt_neox.final_layer_norm.bias"], eps)
    return F.linear(x, w["embed_out.weight"])


def llama_forward(c, w, ids):
    d, h = c["hidden_size"], c["num_attention_heads"]
    kv = c["num_key_value_heads"]
    hd = c.get("head_dim") or d // h
    theta = c["rope_parameters"]["rope_theta"] if "rope_parameters" in c else c["rope_theta"]
    scaling = c.get("rope_scaling") or None
    cos, sin = rope_tables(hd, theta, T, scaling)
    eps = c["rms_norm_eps"]
    x = w["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        lin = lambda z, n: F.linear(z, w[p + n + ".weight"], w.get(p + n + ".bias"))
        q = heads(lin(a, "self_attn.q_proj"), h, hd)
        k = heads(lin(a, "self_attn.k_proj"), kv, hd)
        v = heads(lin(a, "self_attn.v_proj"), kv, hd)
        q, k = apply_rope(q, cos, sin, hd), apply_rope(k, cos, sin, hd)
        o = lin(merge(causal_attention(q, k, v, hd ** -0.5)), "self_attn.o_proj")
        x = x + o
        m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        m = lin(F.silu(lin(m, "mlp.gate_proj")) * lin(m, "mlp.up_proj"), "mlp.down_proj")
        x = x + m
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return F.linear(x, head)


# --- random weights shaped like each family -----------------------------------

def rnd(*shape, std=0.2):
    return torch.randn(*shape) * std


def norm_w(d):
    return 1 + rnd(d, std=0.1)


def gpt2_weights(c):
    d, f, v, n = c["n_embd"], c["n_inner"] or 4 * c["n_embd"], c["vocab_size"], c["n_positions"]
    w = {"wte.weight": rnd(v, d, std=0.5), "wpe.weight": rnd(n, d, std=0.3), "ln_f.weight": norm_w(d), "ln_f.bias": rnd(d, std=0.1)}
    for i in range(c["n_layer"]):
        p = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = norm_w(d), rnd(d, std=0.1)
        for name, i_, o_ in (("attn.c_attn", d, 3 * d), ("attn.c_proj", d, d), ("mlp.c_fc", d, f), ("mlp.c_proj", f, d)):
            w[p + name + ".weight"] = rnd(i_, o_)  # Conv1D: [in, out]
            w[p + name + ".bias"] = rnd(o_, std=0.1)
    return w


def neox_weights(c):
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    w = {"gpt_neox.embed_in.weight": rnd(v, d, std=0.5), "embed_out.weight": rnd(v, d),
         "gpt_neox.final_layer_norm.weight": norm_w(d), "gpt_neox.final_layer_norm.bias": rnd(d, std=0.1)}
    for i in range(c["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        for ln in ("input_layernorm", "post_attention_layernorm"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = norm_w(d), rnd(d, std=0.1)
        for name, i_, o_ in (("attention.query_key_value", d, 3 * d), ("attention.dense", d, d),
                             ("mlp.dense_h_to_4h", d, f), ("mlp.dense_4h_to_h", f, d)):
            w[p + name + ".weight"] = rnd(o_, i_)
            w[p + name + ".bias"] = rnd(o_, std=0.1)
    return w


def llama_weights(c, qkv_bias):
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    h, kv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim") or d // h
    w = {"model.embed_tokens.weight": rnd(v, d, std=0.5), "model.norm.weight": norm_w(d)}
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = rnd(v, d)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm_w(d)
        w[p + "post_attention_layernorm.weight"] = norm_w(d)
        for name, i_, o_ in (("self_attn.q_proj", d, h * hd), ("self_attn.k_proj", d, kv * hd), ("self_attn.v_proj", d, kv * hd),
                             ("self_attn.o_proj", h * hd, d), ("mlp.gate_proj", d, f), ("mlp.up_proj", d, f), ("mlp.down_proj", f, d)):
            w[p + name + ".weight"] = rnd(o_, i_)
        if qkv_bias:
            for name, o_ in (("self_attn.q_proj", h * hd), ("self_attn.k_proj", kv * hd), ("self_attn.v_proj", kv * hd)):
                w[p + name + ".bias"] = rnd(o_, std=0.3)
    return w


# --- cases --------------------------------------------------------------------

GPT2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 67, "n_embd": 24, "n_layer": 2,
        "n_head": 3, "n_positions": 16, "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
        "scale_attn_weights": True, "tie_word_embeddings": True, "bos_token_id": 66, "eos_token_id": 66}
NEOX = {"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "vocab_size": 72, "hidden_size": 32,
        "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128, "hidden_act": "gelu",
        "rotary_pct": 0.25, "rotary_emb_base": 10000, "max_position_embeddings": 16, "layer_norm_eps": 1e-5,
        "use_parallel_residual": True, "tie_word_embeddings": False, "torch_dtype": "float16"}
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 64, "hidden_size": 32,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 48,
         "hidden_act": "silu", "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
         "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False}
QWEN2 = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 80, "hidden_size": 32,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
         "hidden_act": "silu", "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
         "use_sliding_window": False, "sliding_window": 32, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def cases():
    """(name, config, dtype, key prefix / sharding / extras)."""
    neox_seq = dict(NEOX, hidden_size=32, num_attention_heads=4, use_parallel_residual=False, torch_dtype="float32")
    del neox_seq["rotary_pct"], neox_seq["rotary_emb_base"]
    neox_seq["rope_parameters"] = {"rope_type": "default", "rope_theta": 20000.0, "partial_rotary_factor": 0.5}
    llama_tied = dict(LLAMA, tie_word_embeddings=True, head_dim=12)
    del llama_tied["rope_theta"], llama_tied["rope_scaling"]
    llama_tied["rope_parameters"] = {"rope_type": "default", "rope_theta": 100000.0}
    # Llama 3.2's rope_scaling with the original context shrunk to 256 so
    # that the 4 frequencies of a head of 8 fall in all three bands (kept,
    # interpolated, slowed), and a rope_theta whose second frequency sits
    # in the interpolated band.
    llama3 = dict(LLAMA, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 256})
    return [
        ("gpt2", GPT2, "F32", {"prefix": "transformer.", "buffers": True}),
        ("gpt2-bare", dict(GPT2, n_inner=40), "F32", {"prefix": "", "head_copy": True}),
        ("neox", NEOX, "F16", {"buffers": True}),
        ("neox-sequential", neox_seq, "F32", {}),
        ("llama", LLAMA, "F32", {}),
        ("llama-tied-sharded", llama_tied, "F32", {"shards": 2}),
        ("llama3-scaled", llama3, "F32", {}),
        ("qwen2", QWEN2, "BF16", {}),
    ]


def main(out):
    for seed, (name, cfg, dtype, opt) in enumerate(cases()):
        torch.manual_seed(1000 + seed)
        fam = cfg["model_type"]
        if fam == "gpt2":
            w = gpt2_weights(cfg)
        elif fam == "gpt_neox":
            w = neox_weights(cfg)
        else:
            w = llama_weights(cfg, fam == "qwen2")
        w = {k: stored(v, dtype) for k, v in w.items()}
        ids = torch.randint(0, TOKENS, (B, T))
        with torch.no_grad():
            if fam == "gpt2":
                logits = gpt2_forward(cfg, w, ids)
            elif fam == "gpt_neox":
                logits = neox_forward(cfg, w, ids)
            else:
                logits = llama_forward(cfg, w, ids)
        # The causal-LM loss as transformers defines it: shift inside,
        # ignore_index -100, mean over the batch's non-ignored targets.
        labels = ids.clone()
        labels[0, 2] = -100
        labels[1, 5] = -100
        v = logits.shape[-1]
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, v), labels[:, 1:].reshape(-1), ignore_index=-100)
        files = {}
        prefix = opt.get("prefix", "")
        for k, v in w.items():
            files[prefix + k] = (v, dtype)
        if opt.get("head_copy"):
            files["lm_head.weight"] = (w["wte.weight"], dtype)
        if opt.get("buffers") and fam == "gpt2":
            n = cfg["n_positions"]
            for i in range(cfg["n_layer"]):
                files[f"{prefix}h.{i}.attn.bias"] = (torch.tril(torch.ones(n, n)).view(1, 1, n, n), "F32")
                files[f"{prefix}h.{i}.attn.masked_bias"] = (torch.tensor(-1e4), "F32")
        if opt.get("buffers") and fam == "gpt_neox":
            n = cfg["max_position_embeddings"]
            for i in range(cfg["num_hidden_layers"]):
                p = f"gpt_neox.layers.{i}.attention."
                files[p + "bias"] = (torch.tril(torch.ones(n, n, dtype=torch.bool)).view(1, 1, n, n), "BOOL")
                files[p + "masked_bias"] = (torch.tensor(-1e9), "F32")
                files[p + "rotary_emb.inv_freq"] = (torch.ones(2), "F32")
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        shards = opt.get("shards", 0)
        if shards:
            names = sorted(files)
            wmap, total = {}, 0
            for s in range(shards):
                fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
                part = {k: files[k] for k in names[s::shards]}
                write_safetensors(os.path.join(d, fn), part)
                for k, (v, dt) in part.items():
                    wmap[k] = fn
                    total += len(tensor_bytes(v, dt))
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": total}, "weight_map": wmap}, f, indent=2)
        else:
            write_safetensors(os.path.join(d, "model.safetensors"), files)
        with open(os.path.join(d, "ids.json"), "w") as f:
            json.dump({"batch": B, "seq": T, "ids": ids.flatten().tolist(),
                       "labels": labels.flatten().tolist(), "loss": float(loss)}, f)
        with open(os.path.join(d, "logits.f32"), "wb") as f:
            f.write(logits.contiguous().numpy().astype("<f4").tobytes())
        print(name, tuple(logits.shape), float(logits.abs().max()))


if __name__ == "__main__":
    main(sys.argv[1])
