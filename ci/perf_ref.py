#!/usr/bin/env python3
"""Reference timings for `bench perf`: numpy SGEMM and PyTorch CPU training steps.

Prints a JSON array of {"name", "value", "unit"} objects on stdout, named as
`bench perf` names its own figures with a "numpy/" or "torch/" prefix:

    numpy/sgemm/n=1024          GFLOP/s   C = A·B, float32, square
    numpy/sgemm/mlp/fc1         GFLOP/s   the reference models' shapes
    torch/step/mlp/lora         ms        median of timed steps
    torch/step/mlp/full         ms
    torch/step/transformer/lora ms
    torch/step/transformer/full ms
    torch/cpu/step/mlp/lora     ms        process CPU time per step (mean)

The models match package nn's reference setups: an MLP 784-256-256-10 (ReLU)
at batch 128 and a pre-norm GPT-style transformer (d=128, 2 blocks, 4 heads,
MLP ratio 4, GELU tanh, LayerNorm, vocab 64, untied LM head without bias) at
sequence 64, batch 16; LoRA r=16 on every linear layer (base frozen) or full
fine-tuning, cross-entropy loss, AdamW.

Usage: perf_ref.py [--threads N] [--quick] [--only numpy|torch]. The thread count (default: env
PEFTBENCH_THREADS, else the number of CPUs) applies to OpenBLAS and torch.

This machine's environment may set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE to
pin OpenBLAS to an older kernel; they are removed here, in this process only,
before numpy loads, so that numpy runs the kernel OpenBLAS would choose for
this CPU. Which BLAS numpy and torch use is written to stderr, since Debian's
numpy falls back to the reference BLAS (a few GFLOP/s) unless an optimised
libblas.so.3 such as libopenblas0-pthread is installed.
"""

import argparse
import json
import os
import statistics
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("PEFTBENCH_THREADS", "0")) or os.cpu_count())
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--only", choices=("numpy", "torch"), help="run one half only")
    ap.add_argument("--svd", default="",
                    help="comma-separated sizes n: time numpy.linalg.svd of an n×n float64 matrix (s)")
    return ap.parse_args()


ARGS = parse_args()
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(var, None)
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (after the environment is set)

RESULTS = []


def emit(name, value, unit):
    RESULTS.append({"name": name, "value": round(float(value), 4), "unit": unit})


def blas_info():
    try:
        import threadpoolctl
        return json.dumps(threadpoolctl.threadpool_info())
    except ImportError:
        pass
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower()})
        return ", ".join(libs) or "unknown"
    except OSError:
        return "unknown"


# Shapes as kernels.PerfShapes names them: (name, transA, transB, m, n, k).
MODEL_SHAPES = [
    ("mlp/fc1", False, True, 128, 256, 784),
    ("mlp/fc2", False, True, 128, 256, 256),
    ("mlp/fc2.dx", False, False, 128, 256, 256),
    ("mlp/fc1.dw", True, False, 256, 784, 128),
    ("mlp/lora.xa", False, True, 128, 16, 784),
    ("mlp/lora.b", False, True, 128, 256, 16),
    ("tf/qkv", False, True, 1024, 128, 128),
    ("tf/mlp.up", False, True, 1024, 512, 128),
    ("tf/mlp.down", False, True, 1024, 128, 512),
    ("tf/attn.scores", False, True, 64, 64, 32),
]


def time_gemm(ta, tb, m, n, k, min_time):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    a = a.T if ta else a
    b = b.T if tb else b
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    reps, best = 1, float("inf")
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        dt = time.perf_counter() - t0
        best = min(best, dt / reps)
        if dt >= min_time:
            break
        reps *= 2
    # Best of a few rounds, as the machine may be shared.
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        best = min(best, (time.perf_counter() - t0) / reps)
    return 2.0 * m * n * k / best / 1e9


def bench_numpy(min_time):
    for n in (128, 256, 512, 1024):
        emit(f"numpy/sgemm/n={n}", time_gemm(False, False, n, n, n, min_time), "GFLOP/s")
    for name, ta, tb, m, n, k in MODEL_SHAPES:
        emit(f"numpy/sgemm/{name}", time_gemm(ta, tb, m, n, k, min_time), "GFLOP/s")


def bench_svd(sizes):
    """numpy's full SVD (vectors included), the reference bench perf names
    for its intruder analysis, which needs all left singular vectors of W0;
    and the same analysis done with numpy (Shuttleworth et al. 2024,
    Algorithm 1: SVD of W0 and of W, max |U0ᵀ·u| over the top 10 u), whole
    and with W0's decomposition already known, as bench perf's cached
    figure. Pair as in bench perf: a Gaussian W0 plus a rank-8 update.
    Median of 3 runs up to n = 1024, one run above (18 s each at 4096)."""
    rng = np.random.default_rng(0)
    for n in sizes:
        w0 = rng.standard_normal((n, n)) / np.sqrt(n)
        w = w0 + (rng.standard_normal((n, 8)) / np.sqrt(n)) @ rng.standard_normal((8, n))
        reps = 3 if n <= 1024 else 1
        u0 = None

        def svd():
            np.linalg.svd(w0, full_matrices=False)

        def analysis(cached):
            nonlocal u0
            if not cached or u0 is None:
                u0 = np.linalg.svd(w0, full_matrices=False)[0]
            u = np.linalg.svd(w, full_matrices=False)[0][:, :10]
            np.abs(u0.T @ u).max(axis=0)

        for name, f in ((f"numpy/svd/n={n}", svd),
                        (f"numpy/intruders/n={n}", lambda: analysis(False)),
                        (f"numpy/intruders/n={n}/cached", lambda: analysis(True))):
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                f()
                times.append(time.perf_counter() - t0)
            emit(name, statistics.median(times), "s")


def bench_torch(steps):
    try:
        import torch
    except ImportError as e:
        print(f"perf_ref: torch unavailable ({e}); no torch/step figures", file=sys.stderr)
        return
    import math
    import torch.nn as tnn
    import torch.nn.functional as F

    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(0)

    class LoRALinear(tnn.Module):
        def __init__(self, base, r, alpha):
            super().__init__()
            self.base = base
            self.A = tnn.Parameter(torch.empty(r, base.in_features))
            self.B = tnn.Parameter(torch.zeros(base.out_features, r))
            tnn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
            self.scale = alpha / r

        def forward(self, x):
            return self.base(x) + self.scale * F.linear(F.linear(x, self.A), self.B)

    def mlp():
        return tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 256),
                              tnn.ReLU(), tnn.Linear(256, 10))

    class Block(tnn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
            self.q, self.k, self.v, self.o = (tnn.Linear(d, d) for _ in range(4))
            self.up, self.down = tnn.Linear(d, 4 * d), tnn.Linear(4 * d, d)

        def forward(self, x):
            b, t, d = x.shape
            h = self.ln1(x)
            split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)
            q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
            s = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            a = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
            x = x + self.o(a.transpose(1, 2).reshape(b, t, d))
            return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))

    class GPT(tnn.Module):
        def __init__(self, vocab=64, d=128, blocks=2, heads=4, seq=64):
            super().__init__()
            self.tok, self.pos = tnn.Embedding(vocab, d), tnn.Embedding(seq, d)
            self.blocks = tnn.ModuleList(Block(d, heads) for _ in range(blocks))
            self.ln_f = tnn.LayerNorm(d)
            self.head = tnn.Linear(d, vocab, bias=False)

        def forward(self, ids):
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln_f(x))

    def lora(model, r=16):
        for p in model.parameters():
            p.requires_grad_(False)
        for mod in list(model.modules()):
            for name, child in list(mod.named_children()):
                if isinstance(child, tnn.Linear):
                    setattr(mod, name, LoRALinear(child, r, 2 * r))
        return model

    def time_steps(model, batch):
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
        x, y = batch

        def step():
            opt.zero_grad(set_to_none=False)
            out = model(x)
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
            loss.backward()
            opt.step()

        for _ in range(5):
            step()
        times = []
        c0 = time.process_time()
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / steps
        return statistics.median(times) * 1e3, cpu * 1e3

    g = torch.Generator().manual_seed(1)
    mlp_batch = (torch.randn(128, 784, generator=g), torch.randint(0, 10, (128,), generator=g))
    tf_batch = (torch.randint(0, 64, (16, 64), generator=g), torch.randint(0, 64, (16, 64), generator=g))
    for name, model, batch in (("mlp/lora", lora(mlp()), mlp_batch), ("mlp/full", mlp(), mlp_batch),
                               ("transformer/lora", lora(GPT()), tf_batch),
                               ("transformer/full", GPT(), tf_batch)):
        wall, cpu = time_steps(model, batch)
        emit(f"torch/step/{name}", wall, "ms")
        emit(f"torch/cpu/step/{name}", cpu, "ms")


def main():
    if ARGS.only != "torch":
        bench_numpy(0.05 if ARGS.quick else 0.2)
        if ARGS.svd:
            bench_svd([int(n) for n in ARGS.svd.split(",")])
        print(f"perf_ref: threads={ARGS.threads} numpy={np.__version__} blas: {blas_info()}", file=sys.stderr)
    if ARGS.only != "numpy":
        bench_torch(10 if ARGS.quick else 50)
    json.dump(RESULTS, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
